"""Checking what the hub hands out, with nothing but its verifier key: a signed checkpoint,
an entry with its inclusion proof, a consistency proof between two checkpoints. No database;
``hub audit verify-proof`` runs these on files saved from the API (``/api/v1/audit/...``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from hub.audit import merkle
from hub.audit.note import Checkpoint, NoteError, Verifier, verify_checkpoint


def _hashes(answer: dict[str, Any], name: str) -> list[bytes]:
    try:
        out = [base64.b64decode(h, validate=True) for h in answer[name]]
    except (KeyError, TypeError, binascii.Error, ValueError) as err:
        raise NoteError(f"the proof's {name!r} is not a list of base64 hashes") from err
    if any(len(h) != merkle.HASH_SIZE for h in out):
        raise NoteError(f"the proof's {name!r} holds a hash that is not 32 bytes")
    return out


def checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    """The checkpoint, if ``verifier`` signed it (raises NoteError otherwise)."""
    return verify_checkpoint(note, verifier)


def inclusion(cp: Checkpoint, entry: dict[str, Any], proof: dict[str, Any]) -> bytes:
    """Check that ``entry`` (``{"seq", "leaf"}``) is in the tree ``cp`` signed, by ``proof``
    (``{"leaf_index", "tree_size", "hashes"}``); returns the entry's exact bytes."""
    try:
        seq, leaf = int(entry["seq"]), base64.b64decode(entry["leaf"], validate=True)
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
    except (KeyError, TypeError, ValueError, binascii.Error) as err:
        raise NoteError("the entry or proof is not in the shape the API answers") from err
    if index != seq - 1:
        raise NoteError(f"the proof is for leaf {index}, not for entry {seq} (leaf {seq - 1})")
    if size != cp.size:
        raise NoteError(f"the proof is for a tree of {size} entries, the checkpoint has {cp.size}")
    if not merkle.verify_inclusion(
        index, size, merkle.leaf_hash(leaf), _hashes(proof, "hashes"), cp.root
    ):
        raise NoteError(f"entry {seq} is NOT in the signed tree of {cp.size} entries")
    return leaf


def consistency(old: Checkpoint, new: Checkpoint, proof: dict[str, Any]) -> None:
    """Check that the tree ``old`` signed is a prefix of the one ``new`` signed."""
    if old.origin != new.origin:
        raise NoteError(f"the checkpoints are of two logs: {old.origin!r}, {new.origin!r}")
    if (proof.get("from"), proof.get("to")) != (old.size, new.size):
        raise NoteError(
            f"the proof is from {proof.get('from')} to {proof.get('to')}, "
            f"the checkpoints are {old.size} and {new.size}"
        )
    if old.size == new.size and old.root != new.root:
        raise NoteError(f"two checkpoints of size {old.size} with different roots: a forked log")
    if not merkle.verify_consistency(
        old.size, new.size, _hashes(proof, "hashes"), old.root, new.root
    ):
        raise NoteError(
            f"the tree of {new.size} entries does NOT extend the tree of {old.size}: "
            "the log was rewritten or forked"
        )
