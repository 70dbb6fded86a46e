"""C2SP signed notes with Ed25519 keys, and the C2SP checkpoint body they sign. Pure: no I/O.

Formats as in C2SP ``signed-note`` (and Go's ``golang.org/x/mod/sumdb/note``, which reads the
same keys): a signer key ``PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ seed)>``, a verifier
``<name>+<key id hex>+<base64(0x01 ‖ public key)>``, key id = the first four bytes of
``SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)``. A note is its text (ending in a newline), a
blank line, and signature lines ``— <name> <base64(key id ‖ signature)>``; the signature is
over the text's bytes. A checkpoint (C2SP ``tlog-checkpoint``) is the text
``<origin>\\n<tree size>\\n<base64 root hash>\\n``; the hub's origin is its key's name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ALG_ED25519 = 0x01
DASH = "\u2014"  # the em dash that starts a signature line


class NoteError(ValueError):
    """A key, verifier, note or checkpoint that is malformed or does not verify."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise NoteError(f"{what} is not base64") from err


def valid_name(name: str) -> bool:
    """Key names are non-empty, without '+' and without whitespace (signed-note spec)."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public).digest()[:4]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    key_id: bytes
    public: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or not valid_name(parts[0]):
            raise NoteError("a verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, data = parts
        raw = _unb64(data, "the verifier key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (algorithm 1, 32 bytes)")
        if hex_id.lower() != key_id(name, raw[1:]).hex() or len(hex_id) != 8:
            raise NoteError("the verifier's key id does not match its name and key")
        return cls(name, bytes.fromhex(hex_id), Ed25519PublicKey.from_public_bytes(raw[1:]))

    def __str__(self) -> str:
        raw = bytes([ALG_ED25519]) + _raw_public(self.public)
        return f"{self.name}+{self.key_id.hex()}+{_b64(raw)}"


@dataclass(frozen=True, slots=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> Signer:
        if not valid_name(name):
            raise NoteError(f"{name!r} cannot name a key: no '+', no spaces, not empty")
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"] or not valid_name(parts[2]):
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<hex key id>+<base64 key>")
        name, hex_id, data = parts[2:]
        raw = _unb64(data, "the signer key")
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("the signer key is not an Ed25519 key (algorithm 1, 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if hex_id.lower() != signer.verifier.key_id.hex():
            raise NoteError("the signer key's id does not match its name and key")
        return signer

    @property
    def verifier(self) -> Verifier:
        public = self.private.public_key()
        return Verifier(self.name, key_id(self.name, _raw_public(public)), public)

    def __str__(self) -> str:
        seed = self.private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        raw = bytes([ALG_ED25519]) + seed
        return f"PRIVATE+KEY+{self.name}+{self.verifier.key_id.hex()}+{_b64(raw)}"

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end in a newline)."""
        if not text.endswith("\n") or "\n\n" in text:
            raise NoteError("a note's text ends in a newline and has no blank line")
        signature = self.private.sign(text.encode())
        return f"{text}\n{DASH} {self.name} {_b64(self.verifier.key_id + signature)}\n"


def open_note(note: str, verifier: Verifier) -> str:
    """The text of ``note`` if it carries a valid signature by ``verifier``; signatures by
    other keys are ignored (witnesses may cosign), as the spec requires."""
    head, sep, signatures = note.rpartition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise NoteError("a signed note is its text, a blank line and signature lines")
    text = head + "\n"
    for line in signatures[:-1].split("\n"):
        if not line.startswith(DASH + " "):
            raise NoteError(f"not a signature line: {line[:80]!r}")
        name, _, data = line[2:].partition(" ")
        if name != verifier.name:
            continue
        raw = _unb64(data, "a signature")
        if len(raw) != 68 or raw[:4] != verifier.key_id:
            continue
        try:
            verifier.public.verify(raw[4:], text.encode())
        except InvalidSignature as err:
            raise NoteError(f"the signature by {name} does not verify") from err
        return text
    raise NoteError(f"the note carries no signature by {verifier.name}")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{_b64(self.root)}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """The first three lines of a checkpoint's text (extension lines may follow)."""
        lines = text.split("\n")
        if len(lines) < 4 or not lines[0]:
            raise NoteError("a checkpoint is an origin line, a size line and a root line")
        size_line = lines[1]
        if not size_line.isascii() or not size_line.isdigit() or size_line != str(int(size_line)):
            raise NoteError("the checkpoint's tree size is not a decimal number")
        root = _unb64(lines[2], "the checkpoint's root hash")
        if len(root) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        return cls(lines[0], int(size_line), root)


def verify_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint of a signed note, if ``verifier`` signed it and it names its origin."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError(f"the checkpoint's origin {checkpoint.origin!r} is not the key's name")
    return checkpoint
