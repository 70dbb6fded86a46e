"""What every connection job's steps share: the lease a worker holds on a job, the short
transaction of one unit of work under it, and the job's counters."""

from __future__ import annotations

import os
import socket
import uuid as uuid_mod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import Connection, ConnectionJob, Partner
from hub.models.base import utcnow
from hub.sharing.recipients import Recipient

LEASE_SECONDS = 600.0  # renewed at every unit; longer than a remote call may take (timeouts)


MAX_ERRORS_KEPT = 20


def recipient_of(connection: Connection, partner: Partner) -> Recipient:
    """The partner behind a connection, as the release path's recipient (no key: the
    connection acts under its own name). A connection in exercise mode receives for its
    exercise only, and is named in the audit log as an exercise key is (``, exercise <id>)``),
    so its deliveries stay in the exercise's scope and count in its after-action report."""
    exercise = connection.exercise_id
    mode = f", exercise {exercise}" if exercise else ""
    return Recipient.of_partner(
        partner,
        actor=f"connection:{connection.uuid} ({partner.name}{mode})",
        exercise_id=exercise,
    )


def actor_of(connection: Connection) -> str:
    return f"connection:{connection.uuid} ({connection.name})"


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


class LeaseLost(Exception):
    """The lease ran out and another worker took the job over: this one stops, quietly."""


@dataclass(slots=True)
class Lease:
    """A claimed job and what its batch reads from the database, taken at claim time.

    ``connection`` and ``partner`` are detached snapshots for reading settings; a unit
    that writes loads its own rows (``Unit``).
    """

    job_id: int
    holder: str
    connection: Connection
    partner: Partner
    progress: dict[str, Any]
    now: datetime


@dataclass(slots=True)
class Unit:
    """One short write transaction of a batch, with the job and connection rows in it."""

    session: Session
    job: ConnectionJob
    connection: Connection


def lease_end(now: datetime) -> datetime:
    return max(now, utcnow()) + timedelta(seconds=LEASE_SECONDS)


def holder() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid_mod.uuid4().hex[:8]}"


@contextmanager
def unit_of_work(maker: sessionmaker[Session], lease: Lease) -> Iterator[Unit]:
    """A short write transaction of the batch, only while this worker holds the lease.

    The job and connection rows are taken first (PostgreSQL: row locks), before anything
    appends to the audit log, so units and ingests lock in the same order.
    """
    with session_scope(maker) as session:
        postgresql = is_postgresql(session)
        job = session.get(ConnectionJob, lease.job_id, with_for_update=postgresql)
        if job is None or job.claimed_by != lease.holder:
            raise LeaseLost(f"job {lease.job_id} was taken over by {job and job.claimed_by}")
        job.lease_until = lease_end(lease.now)
        connection = session.get(Connection, job.connection_id, with_for_update=postgresql)
        assert connection is not None
        yield Unit(session, job, connection)


def tally(job: ConnectionJob, key: str, n: int = 1, *, error: str | None = None) -> None:
    stats = dict(job.stats or {})
    stats[key] = int(stats.get(key, 0)) + n
    if error is not None:
        stats["errors"] = [*stats.get("errors", []), error][-MAX_ERRORS_KEPT:]
    job.stats = stats
