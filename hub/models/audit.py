"""The audit log: append-only, gapless, each entry chained to the previous one's hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType


class AuditEntry(Base):
    """One recorded fact (a delivery, a denial, an ingest, an admin change).

    ``body`` is exactly what was hashed; the other columns are indexed copies for queries,
    and ``hub audit verify`` checks they still agree with it. Database triggers refuse
    UPDATE and DELETE (see the migration), so the application cannot rewrite history.
    """

    __tablename__ = "audit_entries"
    # The auditor's search pages newest first within an action or a recipient: the sequence
    # number in the index lets the database walk it in order instead of sorting every match.
    __table_args__ = (
        Index("ix_audit_entries_action_seq", "action", "seq"),
        Index("ix_audit_entries_recipient_seq", "recipient_uuid", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime]
    action: Mapped[str] = mapped_column(String(48))
    actor: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str | None] = mapped_column(String(64))
    object_ref: Mapped[str | None] = mapped_column(String(255), index=True)
    recipient_uuid: Mapped[str | None] = mapped_column(String(36))
    channel: Mapped[str | None] = mapped_column(String(32))
    decision: Mapped[str | None] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # What the entry's recipient may not read (an event's internal version numbers,
    # ``hub.audit.addressing.versions_apart``), salted; ``body.details.sealed`` is its hash.
    internal: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class AuditHead(Base):
    """The last entry's number and hash (one row): appenders lock it, verification checks
    it against the log, so removing entries from the end is detected."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class ReleaseIndexState(Base):
    """How far the ``releases`` index has been derived from the audit log (one row): every
    entry with ``seq <= upto_seq`` is indexed (see ``hub.audit.releases``)."""

    __tablename__ = "release_index_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upto_seq: Mapped[int] = mapped_column(BigInteger)


class AuditTreeNode(Base):
    """A complete subtree of the Merkle tree over the audit log (RFC 9162 §2.1): ``2**level``
    leaves starting at leaf ``idx * 2**level`` (leaf index = ``seq - 1``); level 0 holds the
    leaf hashes. Written in batches by the worker (``hub.audit.tree``), never updated; any
    proof reads at most two per level, in one query."""

    __tablename__ = "audit_tree_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(Base):
    """A signed tree head: the C2SP checkpoint of the tree of ``tree_size`` entries, as the
    signed note the hub published (``note``). Kept forever, one per size."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    key_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
