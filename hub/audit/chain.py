"""Canonical bytes and the chain hash, shared by the writer and the verifier."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

GENESIS = "0" * 64
# Columns that copy a field of the body, so verification can tell if one was altered.
INDEXED = ("action", "actor", "request_id", "object_ref", "recipient_uuid", "channel", "decision")


def canonical(body: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8. Bodies hold only str, int, bool, None, lists, dicts."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """SHA-256 over the previous entry's hash and this entry's canonical body."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(body)).hexdigest()
