"""An independent verifier for the tests, written from the specifications, not from the hub's
code: RFC 9162 §2.1 (Merkle tree hash, §2.1.3.2 inclusion and §2.1.4.2 consistency
verification, step by step as the RFC words them) and C2SP signed-note / tlog-checkpoint
(Ed25519 via ``cryptography``). Nothing here imports ``hub``.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(entries: list[bytes]) -> bytes:
    """MTH(D[n]) by the RFC's recursive definition."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf(entries[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node(mth(entries[:k]), mth(entries[k:]))


def inclusion_ok(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: list[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2, numbered steps."""
    if leaf_index >= tree_size:  # 1
        return False
    fn, sn = leaf_index, tree_size - 1  # 2
    r = leaf_hash  # 3
    for p in path:  # 4
        if sn == 0:  # 4.a
            return False
        if fn % 2 == 1 or fn == sn:  # 4.b
            r = node(p, r)  # 4.b.i
            if fn % 2 == 0:  # 4.b.ii
                while not (fn % 2 == 1 or fn == 0):
                    fn //= 2
                    sn //= 2
        else:  # 4.c
            r = node(r, p)
        fn //= 2  # 4.d
        sn //= 2
    return sn == 0 and r == root  # 5


def consistency_ok(
    first: int, second: int, path: list[bytes], first_hash: bytes, second_hash: bytes
) -> bool:
    """RFC 9162 §2.1.4.2, numbered steps (plus the trivial cases of §2.1.4)."""
    if first == second:
        return not path and first_hash == second_hash
    if first == 0:
        return not path
    if first > second:
        return False
    if first & (first - 1) == 0:  # 2: first is an exact power of two
        path = [first_hash, *path]
    if not path:  # 1
        return False
    fn, sn = first - 1, second - 1  # 3
    while fn % 2 == 1:  # 4
        fn //= 2
        sn //= 2
    fr = sr = path[0]  # 5
    for c in path[1:]:  # 6
        if sn == 0:  # 6.a
            return False
        if fn % 2 == 1 or fn == sn:  # 6.b
            fr = node(c, fr)  # 6.b.i
            sr = node(c, sr)
            if fn % 2 == 0:  # 6.b.ii
                while not (fn % 2 == 1 or fn == 0):
                    fn //= 2
                    sn //= 2
        else:  # 6.c
            sr = node(sr, c)
        fn //= 2  # 6.d
        sn //= 2
    return fr == first_hash and sr == second_hash and sn == 0  # 7


def open_signed_note(note: str, verifier_key: str) -> str:
    """The text of a C2SP signed note whose signature by ``verifier_key`` verifies; raises
    AssertionError otherwise. Verifier key: ``<name>+<hex id>+<base64(0x01 ‖ key)>``."""
    name, hex_id, b64 = verifier_key.split("+", 2)
    raw = base64.b64decode(b64)
    assert raw[0] == 0x01 and len(raw) == 33, "not an Ed25519 verifier key"
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    assert key_id.hex() == hex_id, "key id does not match"
    cut = note.rindex("\n\n")
    text, signatures = note[: cut + 1], note[cut + 2 :]
    for line in signatures.splitlines():
        assert line.startswith("\u2014 "), line
        signer, sig_b64 = line[2:].split(" ")
        sig = base64.b64decode(sig_b64)
        if signer == name and sig[:4] == key_id:
            Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], text.encode())
            return text
    raise AssertionError("no signature by the verifier key")


def read_checkpoint(text: str) -> tuple[str, int, bytes]:
    """(origin, tree size, root hash) of a C2SP checkpoint body."""
    origin, size, root_b64 = text.split("\n")[:3]
    root = base64.b64decode(root_b64)
    assert len(root) == 32
    return origin, int(size), root
