"""RFC 9162 §2.1 Merkle tree hashing, proofs and their verification. Pure: no I/O.

Leaf hash ``SHA-256(0x00 ‖ entry)``, node hash ``SHA-256(0x01 ‖ left ‖ right)``; the tree of
``n`` leaves splits at the largest power of two below ``n``. Every hash a proof needs is the
hash of a range of leaves ``[lo, hi)``, and every such range is a run of *complete* subtrees
(``2**level`` leaves starting at ``idx * 2**level``), which is what the database stores
(``hub.audit.tree``): a proof names its ranges, the store reads their subtrees in one query.
The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 and are what ``hub audit verify-proof``
runs offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]  # leaves [lo, hi)
Node = tuple[int, int]  # (level, idx): leaves [idx * 2**level, (idx + 1) * 2**level)


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The ranges whose hashes form the inclusion proof of leaf ``index`` in the tree of
    ``size`` leaves, in RFC 9162 order (from the leaf's sibling up)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    out: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old: int, new: int) -> list[Range]:
    """The ranges whose hashes form the consistency proof from the tree of ``old`` leaves to
    the tree of ``new`` leaves (RFC 9162 §2.1.4.1 SUBPROOF), in RFC order."""
    if not 0 <= old <= new:
        raise ValueError(f"no consistency proof from {old} to {new}")
    if old == 0 or old == new:
        return []
    out: list[Range] = []
    lo, hi, m, complete = 0, new, old, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    if not complete:
        out.append((lo, hi))
    out.reverse()
    return out


def subtrees(lo: int, hi: int) -> list[Node]:
    """The complete subtrees that make up ``[lo, hi)``, largest first (``lo`` is aligned to
    the largest, as every range of a proof or root is)."""
    out: list[Node] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        while lo % (1 << level):
            level -= 1
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its complete subtrees' hashes, largest first (RFC 9162's
    split: the left part is the largest complete subtree, the right part the rest)."""
    if not hashes:
        return EMPTY_ROOT
    out = hashes[-1]
    for left in reversed(hashes[:-1]):
        out = node_hash(left, out)
    return out


def nodes_of(ranges: Iterable[Range]) -> set[Node]:
    return {node for lo, hi in ranges for node in subtrees(lo, hi)}


def range_hash(lo: int, hi: int, stored: dict[Node, bytes]) -> bytes:
    return fold([stored[node] for node in subtrees(lo, hi)])


@dataclass(slots=True)
class Frontier:
    """The compact range of a tree (its right edge: one complete subtree per set bit of its
    size), to append leaves one by one and know which complete subtrees each one closes."""

    size: int = 0
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)  # (level, idx, hash)

    @classmethod
    def needed(cls, size: int) -> list[Node]:
        return subtrees(0, size)

    @classmethod
    def of(cls, size: int, stored: dict[Node, bytes]) -> Frontier:
        return cls(size, [(lv, ix, stored[(lv, ix)]) for lv, ix in cls.needed(size)])

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; returns every complete subtree it closes, the leaf included."""
        level, idx, digest = 0, self.size, leaf
        closed = [(level, idx, digest)]
        while self.nodes and self.nodes[-1][0] == level:
            _, left_idx, left = self.nodes.pop()
            level, idx, digest = level + 1, left_idx >> 1, node_hash(left, digest)
            closed.append((level, idx, digest))
        self.nodes.append((level, idx, digest))
        self.size += 1
        return closed

    def root(self) -> bytes:
        return fold([digest for _, _, digest in self.nodes])


# --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) ------------------------------------------


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """Whether ``proof`` shows the tree ``old_root`` of ``old`` leaves is a prefix of the
    tree ``new_root`` of ``new`` leaves."""
    if not 0 <= old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    path = list(proof)
    if old & (old - 1) == 0:
        path = [old_root, *path]
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
