"""Connections to outside systems, their durable jobs, and the outbox of pushes.

A job row is the unit the worker claims, as a lease (``claimed_by`` until ``lease_until``),
so no transaction stays open while the remote answers; every unit of results commits with
the connection's cursor that covers it, so a crash repeats at most one unit, and an expired
lease lets another worker take the job over. A push is decided (released, audited) into the
outbox first, decided again just before it is sent, and sent after.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, UUIDMixin, utcnow


class Connection(UUIDMixin, Base):
    """A configured link to an outside system, owned by a partner (or the hub's own org)."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # misp-pull | misp-push | taxii-pull
    url: Mapped[str] = mapped_column(Text)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    # Fernet token of the credentials JSON, keyed from HUB_SECRET_KEY; never returned.
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    filters: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    cursor: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    next_run_at: Mapped[datetime | None] = mapped_column(index=True)
    last_run_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # A push connection in exercise mode: it delivers that exercise's items only, marked,
    # and never real traffic (``tlp.in_scope``, as an exercise-only key); None: real traffic.
    exercise_id: Mapped[str | None] = mapped_column(
        ForeignKey("exercises.uuid", ondelete="RESTRICT"), index=True
    )


class ConnectionJob(UUIDMixin, Base):
    """One run of a connection: queued → done, or dead (with the last error) after retries."""

    __tablename__ = "connection_jobs"
    __table_args__ = (Index("ix_connection_jobs_due", "state", "run_after"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | manual
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | done | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    # What is left to do within the run (MISP pull: the index rows still to fetch).
    progress: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # The worker running it and until when; an expired lease is free to be taken over.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]


class PushOutboxItem(Base):
    """An event version released to a partner's MISP, waiting to be (or already) sent."""

    __tablename__ = "push_outbox"
    __table_args__ = (
        UniqueConstraint("connection_id", "event_uuid", "event_version"),
        Index("ix_push_outbox_due", "connection_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    event_uuid: Mapped[str] = mapped_column(String(36))
    event_version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # zlib(orjson) of the released event
    # The release on record (set when the remote accepted it) or the denial; None before.
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    # pending | sent | dead | superseded | withheld (refused when decided again at send time)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(16))  # added | edited | not-newer
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
