"""Durable connection jobs: claimed as a lease; remote calls run outside any transaction.

``run_next`` claims the oldest due job in a short transaction of its own (PostgreSQL:
``FOR UPDATE SKIP LOCKED``, so workers never take the same job; SQLite: ``BEGIN IMMEDIATE``,
the single writer): it sets ``claimed_by`` and ``lease_until`` and commits. It then does one
batch. The remote is asked with no transaction open (on SQLite an open write transaction
holds the database's only write lock, so every API write would wait for the remote), and
each unit of results (one pulled event, one TAXII page, one push) commits in a short
transaction of its own together with the cursor or outbox state that covers it. Every such
transaction first checks that this worker still holds the lease, and renews it. A crash
leaves the lease to run out; the job is then claimed again and repeats at most the one unit
that was not committed.

Failures: a retriable one (timeout, 5xx, 429) backs off exponentially with jitter, up to
``MAX_ATTEMPTS`` consecutive failures; then, or at once for a permanent one (401/403, a
malformed answer), the job is dead with its last error, until an operator requeues it
(``service.requeue``). Units that got through before the failure stay, with their cursor.

Pushes go through an outbox: each new event version is released to the partner (decided by
``tlp`` and audited) into ``push_outbox`` first. Just before sending, the item is decided
again with the partner's standing of now (tier, TLP agreement) and the fresh result is what
goes out (or the item is withheld, with the reason); while the partner is not active the item
stays pending (held); a version superseded in the meantime is skipped. A send that reached
the remote but was not recorded is sent again, and MISP's timestamp rule answers "not newer":
counted as done.

This module is the runner (scheduling, claiming, settling); each kind's steps live in a
module of their own (``misp_pull``, ``misp_push``, ``taxii_pull``) over ``leases``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

import connectors
import tlp
from hub.connections.leases import (
    Lease,
    LeaseLost,
    holder,
    lease_end,
    unit_of_work,
)
from hub.connections.misp_pull import step_misp_pull
from hub.connections.misp_push import step_misp_push
from hub.connections.outbound import STRICT, OutboundRules
from hub.connections.service import connector_for, enqueue
from hub.connections.taxii_pull import step_taxii_pull
from hub.db import session_scope
from hub.errors import HubError
from hub.jobs import claiming
from hub.models import Connection, ConnectionJob, Event, EventVersion, Partner
from hub.models.base import utcnow

log = logging.getLogger("hub.connections")

MAX_ATTEMPTS = 8
BACKOFF_BASE = 30.0  # seconds; doubled per consecutive failure, capped at BACKOFF_CAP
BACKOFF_CAP = 3600.0


def backoff(attempts: int, *, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``attempts``-th consecutive failure (jitter ±50 %)."""
    if retry_after is not None:
        return max(1.0, retry_after)
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.5, 1.5)  # jitter, not secrecy


# --- scheduling -------------------------------------------------------------------------------


def schedule_due(session: Session, *, now: datetime | None = None) -> int:
    """Queue a run for every enabled connection whose time has come; returns how many.

    A push connection's time has also come when a published event changed since its last
    run started: partners' MISPs get each new published version at the next round, not at
    the next schedule."""
    now = now or utcnow()
    _push_what_changed(session, now)
    stmt = (
        select(Connection)
        .where(Connection.enabled.is_(True), Connection.next_run_at <= now)
        .order_by(Connection.next_run_at)
    )
    stmt = claiming(stmt)
    count = 0
    for connection in session.scalars(stmt):
        enqueue(session, connection=connection, trigger="schedule", now=now)
        connection.next_run_at = now + timedelta(seconds=connection.interval_seconds)
        count += 1
    return count


def _push_what_changed(session: Session, now: datetime) -> None:
    """Make due now each push connection with a published event version after its cursor
    (what ``_decide_new_versions`` would release on its next run)."""
    waiting = session.scalars(
        select(Connection).where(
            Connection.kind == "misp-push",
            Connection.enabled.is_(True),
            or_(Connection.next_run_at.is_(None), Connection.next_run_at > now),
        )
    ).all()
    for connection in waiting:
        last = int((connection.cursor or {}).get("version_id", 0))
        news = session.scalar(
            select(EventVersion.id)
            .join(Event, Event.id == EventVersion.event_id)
            .where(
                EventVersion.id > last,
                EventVersion.version == Event.version,
                Event.published.is_(True),
            )
            .limit(1)
        )
        if news is not None:
            connection.next_run_at = now


# --- leases -----------------------------------------------------------------------------------


def _claim(
    maker: sessionmaker[Session], *, now: datetime, job_id: int | None = None
) -> Lease | None:
    """Take the oldest due job whose lease is free (never taken, given back, or run out)."""
    with session_scope(maker) as session:
        stmt = (
            select(ConnectionJob)
            .where(
                ConnectionJob.state == "queued",
                ConnectionJob.run_after <= now,
                or_(ConnectionJob.lease_until.is_(None), ConnectionJob.lease_until <= now),
            )
            .order_by(ConnectionJob.run_after, ConnectionJob.id)
            .limit(1)
        )
        if job_id is not None:
            stmt = stmt.where(ConnectionJob.id == job_id)
        stmt = claiming(stmt)
        job = session.scalar(stmt)
        if job is None:
            return None
        job.claimed_by = holder()
        job.lease_until = lease_end(now)
        job.started_at = job.started_at or now
        connection = session.get(Connection, job.connection_id)
        assert connection is not None
        partner = session.get(Partner, connection.partner_id)
        assert partner is not None
        connection.last_run_at = now
        return Lease(job.id, job.claimed_by, connection, partner, dict(job.progress or {}), now)


# --- running ----------------------------------------------------------------------------------


Step = Callable[[sessionmaker[Session], Lease, Any, tlp.Policy], bool]


def run_next(
    maker: sessionmaker[Session],
    *,
    policy: tlp.Policy,
    secret: str,
    now: datetime | None = None,
    http: requests.Session | None = None,
    job_id: int | None = None,
    rules: OutboundRules = STRICT,
) -> int:
    """Claim the oldest due job and do one batch of it; 1 if a job was run, else 0.

    Opens its own short transactions (``maker``); call it with none open. ``rules`` say
    which addresses the connection may reach (checked again at every connect).
    """
    lease = _claim(maker, now=now or utcnow(), job_id=job_id)
    if lease is None:
        return 0
    step: Step = _STEPS[lease.connection.kind]
    try:
        connector = connector_for(lease.connection, secret=secret, http=http, rules=rules)
        finished = step(maker, lease, connector, policy)
    except LeaseLost as err:
        log.warning("connection job %s: %s", lease.job_id, err)
        return 1
    except connectors.RetriableError as err:
        _settle(maker, lease, error=str(err), retry_after=err.retry_after)
    except connectors.PermanentError as err:
        _settle(maker, lease, error=str(err), permanent=True)
    except HubError as err:  # e.g. credentials that no longer decrypt
        _settle(maker, lease, error=err.detail, permanent=True)
    except Exception as err:  # a fault of ours: that unit rolled back; retry later
        log.exception("connection job %s failed", lease.job_id)
        _settle(maker, lease, error=f"internal error: {type(err).__name__}: {err}")
    else:
        _settle(maker, lease, finished=finished)
    return 1


def _settle(
    maker: sessionmaker[Session],
    lease: Lease,
    *,
    finished: bool = False,
    error: str | None = None,
    permanent: bool = False,
    retry_after: float | None = None,
) -> None:
    """Record how the batch ended (done, to be retried, dead) and give the lease back."""
    now = lease.now
    try:
        with unit_of_work(maker, lease) as unit:
            job, connection = unit.job, unit.connection
            job.claimed_by = None
            job.lease_until = None
            if error is None:
                job.attempts = 0
                if finished:
                    job.state = "done"
                    job.finished_at = now
                    job.progress = {}
                    connection.last_success_at = now
                    connection.last_error = None
                return
            job.attempts += 1
            job.last_error = connection.last_error = error
            if permanent:
                _dead(job, now, error)
            elif job.attempts >= MAX_ATTEMPTS:
                _dead(job, now, f"gave up after {job.attempts} attempts: {error}")
            else:
                wait = backoff(job.attempts, retry_after=retry_after)
                job.run_after = now + timedelta(seconds=wait)
    except LeaseLost as err:
        log.warning("connection job %s: %s", lease.job_id, err)


def _dead(job: ConnectionJob, now: datetime, message: str) -> None:
    job.state = "dead"
    job.finished_at = now
    job.last_error = message


# --- MISP pull --------------------------------------------------------------------------------


# --- MISP push --------------------------------------------------------------------------------


# --- TAXII pull -------------------------------------------------------------------------------


_STEPS: dict[str, Step] = {
    "misp-pull": step_misp_pull,
    "misp-push": step_misp_push,
    "taxii-pull": step_taxii_pull,
}
