"""Canonical bytes and the chain hash, shared by the writer and the verifier."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from hub.db import sqlite_function

GENESIS = "0" * 64
# Columns that copy a field of the body, so verification can tell if one was altered.
INDEXED = ("action", "actor", "request_id", "object_ref", "recipient_uuid", "channel", "decision")


def canonical(body: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8. Bodies hold only str, int, bool, None, lists, dicts."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def chain_hash(prev_hash: str, body: dict[str, Any]) -> str:
    """SHA-256 over the previous entry's hash and this entry's canonical body."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical(body)).hexdigest()


def split_canonical(body: dict[str, Any]) -> tuple[str, str]:
    """The canonical body as text before and after the value of ``seq``.

    The database fills in the sequence number when it appends (so one statement does the
    whole append); ``prefix + str(seq) + suffix`` is exactly ``canonical(body)``.
    """
    assert "seq" not in body
    before = {k: v for k, v in body.items() if k < "seq"}
    after = {k: v for k, v in body.items() if k > "seq"}
    head = canonical(before).decode()[:-1]
    prefix = head + ("," if before else "") + '"seq":'
    tail = canonical(after).decode()[1:]
    suffix = ("," + tail) if after else "}"
    return prefix, suffix


@sqlite_function("hub_chain_hash", 4)
def sqlite_chain_hash(prev_hash: str, prefix: str, seq: int, suffix: str) -> str:
    """``chain_hash`` for SQLite, registered on each connection as ``hub_chain_hash``."""
    data = (prefix + str(seq) + suffix).encode()
    return hashlib.sha256(bytes.fromhex(prev_hash) + data).hexdigest()
