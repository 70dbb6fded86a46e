"""Appending to and verifying the audit log.

Writers call ``append`` inside the transaction of the change they record, so there is no
delivery without its entry and no entry without its delivery. Sequence numbers are
gapless: on PostgreSQL a transaction-scoped advisory lock serialises appenders (held
until commit); on SQLite the write lock (``BEGIN IMMEDIATE``) does the same.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from hub.audit import addressing
from hub.audit.chain import GENESIS, INDEXED, canonical, chain_hash, split_canonical
from hub.models import AuditEntry
from hub.models.base import utcnow


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
    """Append records in order, each chained to the head; returns their sequence numbers.

    One statement per record (a page delivery costs one): the database assigns the next
    number and computes the hash from the head row, which it locks (PostgreSQL: an UPDATE in
    the same statement; SQLite: the write lock, with a trigger moving the head). A
    ``releases`` row per delivered or refused item is derived from the entry later, in
    batches (``hub.audit.releases.catch_up``).
    """
    dialect = session.get_bind().dialect.name
    statement = _PG_APPEND if dialect == "postgresql" else _SQLITE_APPEND
    now = utcnow()

    def one(record: Record, internal: dict[str, Any] | None = None) -> int:
        prefix, suffix = split_canonical(_body(now, record))
        params = {
            "recorded_at": now if dialect == "postgresql" else _sqlite_time(now),
            "prefix": prefix,
            "suffix": suffix,
            "internal": canonical(internal).decode() if internal is not None else None,
            **{name: getattr(record, name) for name in INDEXED},
        }
        seq = session.execute(statement, params).scalar()
        if seq is None:
            raise RuntimeError("the audit head is missing; the audit log cannot be appended to")
        return int(seq)

    numbers = []
    for record in records:
        if record.recipient_uuid is None:
            numbers.append(one(record))
            continue
        # An entry its recipient reads says only what went to it (``addressing``).
        public, hidden = addressing.split(record.decision, record.details)
        seq = None
        if public is not None:
            public, internal = _sealed(public)
            seq = one(replace(record, details=public), internal)
        if hidden is not None:
            refusal = {**hidden, "delivery": seq} if seq is not None else hidden
            refused = one(replace(record, decision="deny", details=refusal))
            seq = refused if seq is None else seq
        assert seq is not None
        numbers.append(seq)
    return numbers


def _sealed(details: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """An entry its recipient reads without internal version numbers (``addressing``), and
    the internal part that keeps them, salted; the entry commits to it (``sealed``: the
    SHA-256 of its canonical bytes), so it tells the recipient nothing, not even whether two
    entries' internal parts are equal, and ``verify`` detects any change to it."""
    public, internal = addressing.versions_apart(details)
    if internal is None:
        return public, None
    internal = {**internal, "salt": secrets.token_hex(16)}
    return {**public, "sealed": seal_of(internal)}, internal


def seal_of(internal: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(internal)).hexdigest()


def _sqlite_time(when: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime type reads back (naive UTC).
    return when.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


_COLUMNS = (
    "seq, recorded_at, action, actor, request_id, object_ref, recipient_uuid, channel, "
    "decision, body, prev_hash, entry_hash, internal"
)
_VALUES = ":action, :actor, :request_id, :object_ref, :recipient_uuid, :channel, :decision"

_PG_APPEND = text(f"""
    WITH head AS (
        UPDATE audit_head SET
            seq = seq + 1,
            prev_hash = entry_hash,
            entry_hash = encode(sha256(decode(entry_hash, 'hex')
                || convert_to(:prefix || (seq + 1)::text || :suffix, 'UTF8')), 'hex')
        WHERE id = 1
        RETURNING seq, prev_hash, entry_hash
    )
    INSERT INTO audit_entries ({_COLUMNS})
    SELECT head.seq, :recorded_at, {_VALUES},
           CAST(:prefix || head.seq::text || :suffix AS JSONB), head.prev_hash, head.entry_hash,
           CAST(:internal AS JSONB)
    FROM head
    RETURNING seq
""")

_SQLITE_APPEND = text(f"""
    INSERT INTO audit_entries ({_COLUMNS})
    SELECT head.seq + 1, :recorded_at, {_VALUES},
           :prefix || (head.seq + 1) || :suffix, head.entry_hash,
           hub_chain_hash(head.entry_hash, :prefix, head.seq + 1, :suffix), :internal
    FROM audit_head AS head WHERE head.id = 1
    RETURNING seq
""")


def _body(when: datetime, record: Record) -> dict[str, Any]:
    # ``nonce``: 128 random bits in the hashed bytes. Any key may fetch a proof, hence the
    # leaf hash of any entry; without them an entry its reader may not see but can nearly
    # guess (the refusal of its own request: its key, request id, seq, time window, and a
    # few small values) was rebuilt from that hash by trying the values left (#13).
    return {
        "v": 1,
        "ts": when.isoformat(),
        "nonce": secrets.token_hex(16),
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
        problem = check_entry(entry, expected_seq=expected_seq, prev=prev)
        if problem:
            return Verification(False, checked, entry.seq, problem)
        checked += 1
        expected_seq, prev = entry.seq + 1, entry.entry_hash
    head = session.execute(text("SELECT seq, entry_hash FROM audit_head WHERE id = 1")).first()
    if head is None:
        return Verification(False, checked, None, "the audit head row is missing")
    if (head.seq, head.entry_hash) != (expected_seq - 1, prev):
        # Entries after the last one found were removed (or the head was tampered with).
        return Verification(
            False,
            checked,
            expected_seq,
            f"the log ends at entry {expected_seq - 1} but its head says "
            f"{head.seq}: entries were removed from the end",
        )
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


def check_entry(entry: AuditEntry, *, expected_seq: int, prev: str) -> str | None:
    """What is wrong with one entry (None: nothing), given the previous entry's hash."""
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
    sealed = (body.get("details") or {}).get("sealed")
    if (sealed is None) != (entry.internal is None):
        return "the internal part does not match the entry's seal"
    if entry.internal is not None and seal_of(entry.internal) != sealed:
        return "the internal part does not match the entry's seal"
    return None
