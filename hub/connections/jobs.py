"""Durable connection jobs: claimed one at a time, run a batch per transaction.

Each call of ``run_next`` is one unit of work in the caller's transaction (the worker's, the
CLI's): it claims the oldest due job (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so workers
never take the same job; SQLite: the transaction holds the single write lock), does one
batch, and records the data, the connection's cursor and the job's progress together. A
crash before commit rolls all three back and the job is due again as it was; nothing is
half-written and nothing is done twice.

Failures: a retriable one (timeout, 5xx, 429) backs off exponentially with jitter, up to
``MAX_ATTEMPTS`` consecutive failures; then, or at once for a permanent one (401/403, a
malformed answer), the job is dead with its last error. Items that got through before the
failure stay, with the cursor covering them.

Pushes go through an outbox: each new event version is released to the partner (decided by
``tlp`` and audited) into ``push_outbox`` first and sent after. A send that reached the
remote but was not recorded is sent again, and MISP's timestamp rule answers "not newer":
counted as done.
"""

from __future__ import annotations

import logging
import random
import uuid as uuid_mod
import zlib
from datetime import datetime, timedelta
from typing import Any

import orjson
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

import connectors
import tlp
from connectors.misp import downgrade_for_pull, has_content, prepare_for_push
from connectors.taxii.convert import SHARED_TYPES, split_by_container
from hub.auth.principal import Principal
from hub.connections.service import connector_for, enqueue
from hub.errors import HubError
from hub.intel.service import ingest_events
from hub.intel.stix import ingest_bundle
from hub.models import Connection, ConnectionJob, Event, EventVersion, Partner, PushOutboxItem
from hub.models.base import utcnow
from hub.sharing.service import release_event
from hub.vocabulary import Role

log = logging.getLogger("hub.connections")

MAX_ATTEMPTS = 8
BACKOFF_BASE = 30.0  # seconds; doubled per consecutive failure, capped at BACKOFF_CAP
BACKOFF_CAP = 3600.0
PULL_BATCH = 20  # MISP events fetched per transaction
PLAN_BATCH = 200  # event versions decided per transaction
SEND_BATCH = 20  # pushes per transaction
TAXII_PAGE = 500
MAX_ERRORS_KEPT = 20


def backoff(attempts: int, *, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``attempts``-th consecutive failure (jitter ±50 %)."""
    if retry_after is not None:
        return max(1.0, retry_after)
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not secrecy


class ConnectionRecipient(Principal):
    """The partner behind a connection, as the release path's recipient."""

    @property
    def actor(self) -> str:
        return f"connection:{self.key_uuid} ({self.partner_name})"


def _recipient(connection: Connection, partner: Partner) -> ConnectionRecipient:
    return ConnectionRecipient(
        key_id=0,
        key_uuid=connection.uuid,
        role=Role.SYNC,
        partner_id=partner.id,
        partner_uuid=partner.uuid,
        partner_name=partner.name,
        partner_status=partner.status,
        partner_tier=partner.tier,
        tlp_accepted=partner.tlp_accepted_at is not None,
        is_hub_org=partner.is_hub_org,
    )


def _actor(connection: Connection) -> str:
    return f"connection:{connection.uuid} ({connection.name})"


# --- scheduling -------------------------------------------------------------------------------


def schedule_due(session: Session, *, now: datetime | None = None) -> int:
    """Queue a run for every enabled connection whose time has come; returns how many."""
    now = now or utcnow()
    stmt = (
        select(Connection)
        .where(Connection.enabled.is_(True), Connection.next_run_at <= now)
        .order_by(Connection.next_run_at)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    count = 0
    for connection in session.scalars(stmt):
        enqueue(session, connection=connection, trigger="schedule", now=now)
        connection.next_run_at = now + timedelta(seconds=connection.interval_seconds)
        count += 1
    return count


# --- running ----------------------------------------------------------------------------------


def claim(session: Session, *, now: datetime, job_id: int | None = None) -> ConnectionJob | None:
    stmt = (
        select(ConnectionJob)
        .where(ConnectionJob.state == "queued", ConnectionJob.run_after <= now)
        .order_by(ConnectionJob.run_after, ConnectionJob.id)
        .limit(1)
    )
    if job_id is not None:
        stmt = stmt.where(ConnectionJob.id == job_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt)


def run_next(
    session: Session,
    *,
    policy: tlp.Policy,
    secret: str,
    now: datetime | None = None,
    http: requests.Session | None = None,
    job_id: int | None = None,
) -> int:
    """Claim the oldest due job and do one batch of it; 1 if a job was run, else 0."""
    now = now or utcnow()
    job = claim(session, now=now, job_id=job_id)
    if job is None:
        return 0
    connection = session.get(Connection, job.connection_id)
    partner = session.get(Partner, connection.partner_id) if connection else None
    assert connection is not None and partner is not None
    job.started_at = job.started_at or now
    connection.last_run_at = now
    step = _STEPS[connection.kind]
    savepoint = session.begin_nested()
    try:
        connector = connector_for(connection, secret=secret, http=http)
        finished = step(
            session,
            job=job,
            connection=connection,
            partner=partner,
            connector=connector,
            policy=policy,
            now=now,
        )
        savepoint.commit()
    except connectors.RetriableError as err:
        savepoint.commit()  # what got through stays, with the cursor that covers it
        job.attempts += 1
        _note_error(job, connection, err)
        if job.attempts >= MAX_ATTEMPTS:
            _dead(job, now, f"gave up after {job.attempts} attempts: {err}")
        else:
            job.run_after = now + timedelta(
                seconds=backoff(job.attempts, retry_after=err.retry_after)
            )
        return 1
    except connectors.PermanentError as err:
        savepoint.commit()
        job.attempts += 1
        _note_error(job, connection, err)
        _dead(job, now, str(err))
        return 1
    except HubError as err:  # e.g. credentials that no longer decrypt
        savepoint.commit()
        job.attempts += 1
        _note_error(job, connection, err)
        _dead(job, now, err.detail)
        return 1
    except Exception as err:  # a fault of ours: undo the batch, retry later, keep the worker
        savepoint.rollback()
        log.exception("connection job %s failed", job.uuid)
        job.attempts += 1
        _note_error(job, connection, RuntimeError(f"internal error: {type(err).__name__}: {err}"))
        if job.attempts >= MAX_ATTEMPTS:
            _dead(job, now, job.last_error or "internal error")
        else:
            job.run_after = now + timedelta(seconds=backoff(job.attempts))
        return 1
    job.attempts = 0
    if finished:
        job.state = "done"
        job.finished_at = now
        job.progress = {}
        connection.last_success_at = now
        connection.last_error = None
    return 1


def _note_error(job: ConnectionJob, connection: Connection, err: Exception) -> None:
    message = err.detail if isinstance(err, HubError) else str(err)
    job.last_error = message
    connection.last_error = message


def _dead(job: ConnectionJob, now: datetime, message: str) -> None:
    job.state = "dead"
    job.finished_at = now
    job.last_error = message


def _count(job: ConnectionJob, key: str, n: int = 1, *, error: str | None = None) -> None:
    stats = dict(job.stats or {})
    stats[key] = int(stats.get(key, 0)) + n
    if error is not None:
        stats["errors"] = [*stats.get("errors", []), error][-MAX_ERRORS_KEPT:]
    job.stats = stats


# --- MISP pull --------------------------------------------------------------------------------


def _misp_pull(
    session: Session,
    *,
    job: ConnectionJob,
    connection: Connection,
    partner: Partner,
    connector: connectors.EventPuller,
    policy: tlp.Policy,
    now: datetime,
) -> bool:
    """getVersion and the index once per run, then the events oldest first, a batch a call."""
    own = partner.is_hub_org
    todo: list[list[Any]] | None = (job.progress or {}).get("todo")
    if todo is None:
        connector.check()
        since = (connection.cursor or {}).get("timestamp")
        entries = connector.index(rules=connection.filters or {}, since=since)
        held: dict[str, int] = {}
        uuids = [e.uuid for e in entries]
        for i in range(0, len(uuids), 500):
            held.update(
                (u, t)
                for u, t in session.execute(
                    select(Event.uuid, Event.timestamp).where(Event.uuid.in_(uuids[i : i + 500]))
                ).all()
            )
        todo = []
        for e in entries:
            if not e.published and (connection.filters or {}).get("published", True):
                continue
            if e.uuid in held and held[e.uuid] >= e.timestamp:
                continue  # held with the same or a newer timestamp: not downloaded
            todo.append([e.uuid, e.timestamp])
        _count(job, "listed", len(entries))
        _count(job, "held", len(entries) - len(todo))
        job.progress = {"todo": todo}
        if not todo and entries:
            connection.cursor = {**(connection.cursor or {}), "timestamp": entries[-1].timestamp}
        return not todo
    for uuid, stamp in list(todo[:PULL_BATCH]):
        event = connector.fetch(uuid)
        if not own:
            event = downgrade_for_pull(event)
        if not has_content(event):
            _count(job, "empty")
        else:
            try:
                with session.begin_nested():
                    outcome = ingest_events(
                        session,
                        payloads=[event],
                        source=partner,
                        actor=_actor(connection),
                        channel=connection.kind,
                        policy=policy,
                        keep_orgc=own,
                    )[0]
                _count(job, outcome.status)
            except HubError as err:  # this event only: recorded, the run goes on
                _count(job, "refused", error=f"{uuid}: {err.detail}")
        todo = todo[1:]
        job.progress = {"todo": todo}
        connection.cursor = {**(connection.cursor or {}), "timestamp": int(stamp)}
    return not todo


# --- MISP push --------------------------------------------------------------------------------


def _misp_push(
    session: Session,
    *,
    job: ConnectionJob,
    connection: Connection,
    partner: Partner,
    connector: connectors.EventPusher,
    policy: tlp.Policy,
    now: datetime,
) -> bool:
    """Decide new event versions into the outbox, then send what is pending, oldest first."""
    last = int((connection.cursor or {}).get("version_id", 0))
    rows = session.execute(
        select(EventVersion.id, EventVersion.version, Event)
        .join(Event, Event.id == EventVersion.event_id)
        .where(EventVersion.id > last)
        .order_by(EventVersion.id)
        .limit(PLAN_BATCH)
    ).all()
    recipient = _recipient(connection, partner)
    for version_id, version, event in rows:
        last = version_id
        if version != event.version or not event.published:
            continue  # a later version supersedes it; MISP syncs published events only
        if event.source_partner_id == partner.id:
            continue  # it came from there
        delivery = release_event(
            session,
            principal=recipient,
            event=event,
            channel=tlp.Channel.MISP_SYNC,
            policy=policy,
            include_deleted=True,
        )
        if delivery.event is None:
            _count(job, "withheld")
            continue
        session.add(
            PushOutboxItem(
                connection_id=connection.id,
                event_uuid=event.uuid,
                event_version=version,
                payload=zlib.compress(orjson.dumps(prepare_for_push(delivery.event["Event"]))),
                audit_seq=delivery.audit_seq,
                state="pending",
                attempts=0,
            )
        )
        _count(job, "released")
    connection.cursor = {**(connection.cursor or {}), "version_id": last}
    session.flush()
    if rows:
        return False  # commit the decisions (the outbox) before anything is sent
    pending = list(
        session.scalars(
            select(PushOutboxItem)
            .where(PushOutboxItem.connection_id == connection.id, PushOutboxItem.state == "pending")
            .order_by(PushOutboxItem.id)
            .limit(SEND_BATCH)
        )
    )
    if partner.status != "active":
        # Decided while the partner was active; nothing goes out until it is again (a
        # suspension stops even what was already queued). The items stay pending.
        _count(job, "held", error=f"partner is {partner.status}; pushes held")
        return True
    current = dict(
        session.execute(
            select(Event.uuid, Event.version).where(
                Event.uuid.in_([item.event_uuid for item in pending])
            )
        ).all()
    )
    for item in pending:
        if current.get(item.event_uuid) != item.event_version:
            # A newer version exists: it is decided again (under the rules and the partner's
            # standing of now) and queued on its own; never send a superseded decision.
            item.state = "superseded"
            _count(job, "superseded")
            continue
        item.attempts += 1
        try:
            result = connector.push(orjson.loads(zlib.decompress(item.payload)))
        except (connectors.RemoteRejected, connectors.MappingError) as err:
            item.state = "dead"  # this event only; the rest goes on
            item.last_error = str(err)
            _count(job, "rejected", error=f"{item.event_uuid}: {err}")
            continue
        except connectors.ConnectorError as err:
            item.last_error = str(err)
            raise
        item.state = "sent"
        item.outcome = result.outcome
        item.sent_at = now
        item.last_error = None
        _count(job, result.outcome)
    more_pending = session.scalar(
        select(PushOutboxItem.id)
        .where(PushOutboxItem.connection_id == connection.id, PushOutboxItem.state == "pending")
        .limit(1)
    )
    return len(rows) < PLAN_BATCH and more_pending is None


# --- TAXII pull -------------------------------------------------------------------------------


def _taxii_pull(
    session: Session,
    *,
    job: ConnectionJob,
    connection: Connection,
    partner: Partner,
    connector: connectors.ObjectPuller,
    policy: tlp.Policy,
    now: datetime,
) -> bool:
    """One page per call: ``next`` while the server offers it, else ``added_after``."""
    cursor = dict(connection.cursor or {})
    filters = connection.filters or {}
    types = list(filters.get("types") or [])
    limit = int(filters.get("page_size") or TAXII_PAGE)
    try:
        page = connector.page(
            added_after=cursor.get("added_after"), next=cursor.get("next"), types=types, limit=limit
        )
    except connectors.PermanentError:
        if not cursor.get("next"):
            raise
        cursor.pop("next")  # an expired paging token: start again from the date
        page = connector.page(
            added_after=cursor.get("added_after"), next=None, types=types, limit=limit
        )
    for group in split_by_container(page.objects):
        first = next(o["id"] for o in group if o.get("type") not in SHARED_TYPES)
        bundle_id = f"bundle--{uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, connection.uuid + first)}"
        body = orjson.dumps({"type": "bundle", "id": bundle_id, "objects": group})
        try:
            with session.begin_nested():
                outcomes = ingest_bundle(
                    session,
                    body=body,
                    source=partner,
                    actor=_actor(connection),
                    channel=connection.kind,
                    policy=policy,
                )
            for outcome in outcomes:
                _count(job, outcome.status)
        except HubError as err:
            _count(job, "refused", error=f"{first}: {err.detail}")
    _count(job, "objects", len(page.objects))
    if page.more and page.next:
        cursor["next"] = page.next
    else:
        cursor.pop("next", None)
        if page.date_added_last:
            cursor["added_after"] = page.date_added_last
    connection.cursor = cursor
    return not page.more


_STEPS = {"misp-pull": _misp_pull, "misp-push": _misp_push, "taxii-pull": _taxii_pull}
