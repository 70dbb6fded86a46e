"""Appending to and verifying the audit log.

Writers call ``append`` inside the transaction of the change they record, so there is no
delivery without its entry and no entry without its delivery. Sequence numbers are
gapless: on PostgreSQL a transaction-scoped advisory lock serialises appenders (held
until commit); on SQLite the write lock (``BEGIN IMMEDIATE``) does the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from hub.audit.chain import GENESIS, INDEXED, chain_hash
from hub.models import AuditEntry
from hub.models.base import utcnow
from hub.ops.logging import request_id

# An arbitrary constant naming the hub's audit lock among PostgreSQL advisory locks.
AUDIT_LOCK_KEY = 0x4355_4E41  # "CUNA"


def current_request_id() -> str | None:
    """The id of the HTTP request being served, if any (CLI and jobs have none)."""
    return request_id.get()


@dataclass(frozen=True, slots=True)
class Record:
    """What a caller wants recorded; ``details`` must be JSON-serialisable plain data."""

    action: str
    actor: str
    details: dict[str, Any]
    request_id: str | None = None
    object_ref: str | None = None
    recipient_uuid: str | None = None
    channel: str | None = None
    decision: str | None = None


def append(session: Session, records: Sequence[Record]) -> list[int]:
    """Append records in order, chained to the current head; returns their sequence numbers."""
    if not records:
        return []
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})
    head = session.execute(
        select(AuditEntry.seq, AuditEntry.entry_hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).first()
    seq, prev = (head.seq, head.entry_hash) if head else (0, GENESIS)
    now = utcnow()
    rows = []
    for record in records:
        seq += 1
        body = _body(seq, now, record)
        entry_hash = chain_hash(prev, body)
        rows.append(
            {
                "seq": seq,
                "recorded_at": now,
                "body": body,
                "prev_hash": prev,
                "entry_hash": entry_hash,
                **{name: getattr(record, name) for name in INDEXED},
            }
        )
        prev = entry_hash
    session.execute(insert(AuditEntry), rows)
    return [row["seq"] for row in rows]


def _body(seq: int, when: datetime, record: Record) -> dict[str, Any]:
    return {
        "v": 1,
        "seq": seq,
        "ts": when.isoformat(),
        **{name: getattr(record, name) for name in INDEXED},
        "details": record.details,
    }


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


def verify(session: Session, *, batch: int = 5000) -> Verification:
    """Recompute the chain from the first entry; report the first entry that does not fit."""
    expected_seq, prev, checked = 1, GENESIS, 0
    for entry in _entries(session, batch=batch):
        problem = _check(entry, expected_seq=expected_seq, prev=prev)
        if problem:
            return Verification(False, checked, entry.seq, problem)
        checked += 1
        expected_seq, prev = entry.seq + 1, entry.entry_hash
    return Verification(True, checked)


def _entries(session: Session, *, batch: int) -> Iterator[AuditEntry]:
    after = 0
    while True:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            return
        yield from rows
        after = rows[-1].seq
        session.expunge_all()


def _check(entry: AuditEntry, *, expected_seq: int, prev: str) -> str | None:
    if entry.seq != expected_seq:
        return f"sequence gap: expected entry {expected_seq}, found {entry.seq}"
    if entry.prev_hash != prev:
        return "prev_hash does not match the previous entry's hash"
    body = entry.body
    if body.get("seq") != entry.seq:
        return "the hashed body names another sequence number"
    for name in INDEXED:
        if body.get(name) != getattr(entry, name):
            return f"column {name} differs from the hashed body"
    if chain_hash(prev, body) != entry.entry_hash:
        return "entry_hash does not match the entry's content"
    return None
