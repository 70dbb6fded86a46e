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
"""

from __future__ import annotations

import logging
import os
import random
import socket
import uuid as uuid_mod
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
import requests
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

import connectors
import tlp
from connectors.misp import downgrade_for_pull, has_content, prepare_for_push
from connectors.taxii.convert import SHARED_TYPES, split_by_container
from hub.connections.outbound import STRICT, OutboundRules
from hub.connections.service import connector_for, enqueue
from hub.db import session_scope
from hub.errors import HubError
from hub.intel.service import ingest_events
from hub.intel.stix import ingest_bundle
from hub.jobs import claiming
from hub.models import Connection, ConnectionJob, Event, EventVersion, Partner, PushOutboxItem
from hub.models.base import utcnow
from hub.sharing.events import EventDelivery, decide_event, record_event_release
from hub.sharing.recipients import Recipient

log = logging.getLogger("hub.connections")

MAX_ATTEMPTS = 8
BACKOFF_BASE = 30.0  # seconds; doubled per consecutive failure, capped at BACKOFF_CAP
BACKOFF_CAP = 3600.0
LEASE_SECONDS = 600.0  # renewed at every unit; longer than a remote call may take (timeouts)
PULL_BATCH = 20  # MISP events fetched per batch (each committed on its own)
PLAN_BATCH = 200  # event versions decided per transaction
SEND_BATCH = 20  # pushes per batch (each committed on its own)
TAXII_PAGE = 500
MAX_ERRORS_KEPT = 20


def backoff(attempts: int, *, retry_after: float | None = None) -> float:
    """Seconds to wait after the ``attempts``-th consecutive failure (jitter ±50 %)."""
    if retry_after is not None:
        return max(1.0, retry_after)
    base = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1))
    return base * random.uniform(0.5, 1.5)  # jitter, not secrecy


def _recipient(connection: Connection, partner: Partner) -> Recipient:
    """The partner behind a connection, as the release path's recipient (no key: the
    connection acts under its own name)."""
    return Recipient.of_partner(partner, actor=f"connection:{connection.uuid} ({partner.name})")


def _actor(connection: Connection) -> str:
    return f"connection:{connection.uuid} ({connection.name})"


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


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


def _lease_end(now: datetime) -> datetime:
    return max(now, utcnow()) + timedelta(seconds=LEASE_SECONDS)


def _holder() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid_mod.uuid4().hex[:8]}"


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
        job.claimed_by = _holder()
        job.lease_until = _lease_end(now)
        job.started_at = job.started_at or now
        connection = session.get(Connection, job.connection_id)
        assert connection is not None
        partner = session.get(Partner, connection.partner_id)
        assert partner is not None
        connection.last_run_at = now
        return Lease(job.id, job.claimed_by, connection, partner, dict(job.progress or {}), now)


@contextmanager
def _unit(maker: sessionmaker[Session], lease: Lease) -> Iterator[Unit]:
    """A short write transaction of the batch, only while this worker holds the lease.

    The job and connection rows are taken first (PostgreSQL: row locks), before anything
    appends to the audit log, so units and ingests lock in the same order.
    """
    with session_scope(maker) as session:
        postgresql = _is_postgresql(session)
        job = session.get(ConnectionJob, lease.job_id, with_for_update=postgresql)
        if job is None or job.claimed_by != lease.holder:
            raise LeaseLost(f"job {lease.job_id} was taken over by {job and job.claimed_by}")
        job.lease_until = _lease_end(lease.now)
        connection = session.get(Connection, job.connection_id, with_for_update=postgresql)
        assert connection is not None
        yield Unit(session, job, connection)


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
        with _unit(maker, lease) as unit:
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


def _count(job: ConnectionJob, key: str, n: int = 1, *, error: str | None = None) -> None:
    stats = dict(job.stats or {})
    stats[key] = int(stats.get(key, 0)) + n
    if error is not None:
        stats["errors"] = [*stats.get("errors", []), error][-MAX_ERRORS_KEPT:]
    job.stats = stats


# --- MISP pull --------------------------------------------------------------------------------


def _misp_pull(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.EventPuller,
    policy: tlp.Policy,
) -> bool:
    """getVersion and the index once per run, then the events oldest first, a batch a call;
    each event is committed with the cursor that covers it."""
    todo: list[list[Any]] | None = lease.progress.get("todo")
    if todo is None:
        return _plan_pull(maker, lease, connector)
    for uuid, stamp in list(todo[:PULL_BATCH]):
        event = connector.fetch(uuid)
        if not lease.partner.is_hub_org:
            event = downgrade_for_pull(event)
        todo = todo[1:]
        with _unit(maker, lease) as unit:
            _store_pulled(unit, lease, event, policy)
            unit.job.progress = {"todo": todo}
            unit.connection.cursor = {**(unit.connection.cursor or {}), "timestamp": int(stamp)}
    return not todo


def _plan_pull(
    maker: sessionmaker[Session], lease: Lease, connector: connectors.EventPuller
) -> bool:
    """List what the remote has under the pull rules; keep only what is new or newer here."""
    rules = lease.connection.filters or {}
    connector.check()
    entries = connector.index(rules=rules, since=(lease.connection.cursor or {}).get("timestamp"))
    with _unit(maker, lease) as unit:
        held = _held_timestamps(unit.session, [e.uuid for e in entries])
        todo = [
            [e.uuid, e.timestamp]
            for e in entries
            if (e.published or not rules.get("published", True))
            and held.get(e.uuid, -1) < e.timestamp  # held as new or newer: not downloaded
        ]
        _count(unit.job, "listed", len(entries))
        _count(unit.job, "held", len(entries) - len(todo))
        unit.job.progress = {"todo": todo}
        if not todo and entries:
            cursor = unit.connection.cursor or {}
            unit.connection.cursor = {**cursor, "timestamp": entries[-1].timestamp}
    return not todo


def _held_timestamps(session: Session, uuids: list[str]) -> dict[str, int]:
    held: dict[str, int] = {}
    for i in range(0, len(uuids), 500):
        rows = session.execute(
            select(Event.uuid, Event.timestamp).where(Event.uuid.in_(uuids[i : i + 500]))
        )
        held.update((u, t) for u, t in rows.all())
    return held


def _store_pulled(unit: Unit, lease: Lease, event: dict[str, Any], policy: tlp.Policy) -> None:
    if not has_content(event):
        _count(unit.job, "empty")
        return
    session = unit.session
    try:
        with session.begin_nested():
            outcome = ingest_events(
                session,
                payloads=[event],
                source=session.get(Partner, lease.partner.id),
                actor=_actor(unit.connection),
                channel=unit.connection.kind,
                policy=policy,
                keep_orgc=lease.partner.is_hub_org,
            )[0]
        _count(unit.job, outcome.status)
    except HubError as err:  # this event only: recorded, the run goes on
        _count(unit.job, "refused", error=f"{event.get('uuid')}: {err.detail}")


# --- MISP push --------------------------------------------------------------------------------


def _misp_push(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.EventPusher,
    policy: tlp.Policy,
) -> bool:
    """Decide new event versions into the outbox, then send what is pending, oldest first."""
    with _unit(maker, lease) as unit:
        if _decide_new_versions(unit, lease, policy):
            return False  # the decisions (the outbox) commit before anything is sent
        pending = _pending(unit, limit=SEND_BATCH)
        partner = unit.session.get(Partner, lease.partner.id)
        if partner is None or partner.status != "active":
            # Nothing goes out until the partner is active again (a suspension stops even
            # what was decided already); the items stay pending.
            status = partner.status if partner else "gone"
            _count(unit.job, "held", error=f"partner is {status}; pushes held")
            return True
    for item_id in pending:
        _send(maker, lease, connector, policy, item_id)
    with _unit(maker, lease) as unit:
        return not _pending(unit, limit=1)


def _pending(unit: Unit, *, limit: int) -> list[int]:
    return list(
        unit.session.scalars(
            select(PushOutboxItem.id)
            .where(
                PushOutboxItem.connection_id == unit.connection.id,
                PushOutboxItem.state == "pending",
            )
            .order_by(PushOutboxItem.id)
            .limit(limit)
        )
    )


def _decide_new_versions(unit: Unit, lease: Lease, policy: tlp.Policy) -> int:
    """Release each published event version after the cursor to the partner, into the
    outbox; returns how many versions were looked at."""
    session, connection = unit.session, unit.connection
    last = int((connection.cursor or {}).get("version_id", 0))
    rows = session.execute(
        select(EventVersion.id, EventVersion.version, Event)
        .join(Event, Event.id == EventVersion.event_id)
        .where(EventVersion.id > last)
        .order_by(EventVersion.id)
        .limit(PLAN_BATCH)
    ).all()
    partner = session.get(Partner, lease.partner.id)
    assert partner is not None
    recipient = _recipient(connection, partner)
    for version_id, version, event in rows:
        last = version_id
        if version != event.version or not event.published:
            continue  # a later version supersedes it; MISP syncs published events only
        if event.source_partner_id == partner.id:
            continue  # it came from there
        delivery = _decide(session, recipient, event, policy)
        if delivery.event is None:
            record_event_release(session, to=recipient, event=event, delivery=delivery)
            _count(unit.job, "withheld")
            continue
        # Recorded as a release only once the remote accepted it (``_settle_item``).
        session.add(
            PushOutboxItem(
                connection_id=connection.id,
                event_uuid=event.uuid,
                event_version=version,
                payload=_packed(delivery),
                audit_seq=None,
                state="pending",
                attempts=0,
            )
        )
        _count(unit.job, "released")
    connection.cursor = {**(connection.cursor or {}), "version_id": last}
    session.flush()
    return len(rows)


def _decide(
    session: Session, recipient: Recipient, event: Event, policy: tlp.Policy
) -> EventDelivery:
    """A push is decided as a MISP pushing to another (``hub.sharing.events._as_pushed``):
    nothing addressed to this community only, 2 sent as 1; deletions go only to a partner
    that had received the element."""
    return decide_event(
        session,
        to=recipient,
        event=event,
        channel=tlp.Channel.MISP_SYNC,
        policy=policy,
        include_deleted=True,
        push=True,
    )


def _packed(delivery: EventDelivery) -> bytes:
    assert delivery.event is not None
    return zlib.compress(orjson.dumps(prepare_for_push(delivery.event["Event"])))


def _send(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.EventPusher,
    policy: tlp.Policy,
    item_id: int,
) -> None:
    """Decide the item again, send what that decision releases, record the outcome: the
    release (audit entry, releases row) only when the remote accepted it, so a failed
    attempt leaves no delivery on record and a retried one is recorded once."""
    with _unit(maker, lease) as unit:
        decided = _decide_again(unit, lease, policy, item_id)
    if decided is None:
        return
    payload, delivery = decided
    try:
        result = connector.push(payload)
    except (connectors.RemoteRejected, connectors.MappingError) as err:
        _settle_item(maker, lease, item_id, stat="rejected", state="dead", last_error=str(err))
        return  # this event only; the rest goes on
    except connectors.ConnectorError as err:
        _settle_item(maker, lease, item_id, stat=None, last_error=str(err))
        raise
    _settle_item(
        maker,
        lease,
        item_id,
        stat=result.outcome,
        delivered=delivery,
        state="sent",
        outcome=result.outcome,
        sent_at=lease.now,
        last_error=None,
    )


def _decide_again(
    unit: Unit, lease: Lease, policy: tlp.Policy, item_id: int
) -> tuple[dict[str, Any], EventDelivery] | None:
    """The content to send now, under the rules and the partner's standing of now; None
    when the version was superseded or is withheld now (both recorded on the item), or
    while the partner is not active (the item stays pending)."""
    session = unit.session
    item = session.get(PushOutboxItem, item_id)
    assert item is not None
    event = session.scalar(select(Event).where(Event.uuid == item.event_uuid))
    if event is None or event.version != item.event_version:
        # The newer version is decided on its own; never send a superseded decision.
        item.state = "superseded"
        _count(unit.job, "superseded")
        return None
    partner = session.get(Partner, lease.partner.id)
    assert partner is not None
    if partner.status != "active":
        # Suspended while this batch was being sent: held like the batch check holds it
        # (sent once active again), not withheld for good.
        _count(unit.job, "held", error=f"{item.event_uuid}: partner is {partner.status}; held")
        return None
    recipient = _recipient(unit.connection, partner)
    delivery = _decide(session, recipient, event, policy)
    if delivery.event is None:
        item.audit_seq = record_event_release(session, to=recipient, event=event, delivery=delivery)
        item.state = "withheld"
        item.last_error = f"withheld when decided again before sending: {_why(delivery)}"
        _count(unit.job, "withheld", error=f"{item.event_uuid}: {item.last_error}")
        return None
    item.payload = _packed(delivery)
    item.attempts += 1
    return orjson.loads(zlib.decompress(item.payload)), delivery


def _why(delivery: EventDelivery) -> str:
    if not delivery.decision.allowed:
        return delivery.decision.sentence
    return "nothing in it may go to this partner any more"


def _settle_item(
    maker: sessionmaker[Session],
    lease: Lease,
    item_id: int,
    *,
    stat: str | None,
    delivered: EventDelivery | None = None,
    **fields: Any,
) -> None:
    with _unit(maker, lease) as unit:
        item = unit.session.get(PushOutboxItem, item_id)
        assert item is not None
        for name, value in fields.items():
            setattr(item, name, value)
        if delivered is not None:
            event = unit.session.scalar(select(Event).where(Event.uuid == item.event_uuid))
            partner = unit.session.get(Partner, lease.partner.id)
            assert event is not None and partner is not None
            item.audit_seq = record_event_release(
                unit.session,
                to=_recipient(unit.connection, partner),
                event=event,
                delivery=delivered,
            )
        if stat is not None:
            error = fields.get("last_error")
            _count(unit.job, stat, error=f"{item.event_uuid}: {error}" if error else None)


# --- TAXII pull -------------------------------------------------------------------------------


def _taxii_pull(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.ObjectPuller,
    policy: tlp.Policy,
) -> bool:
    """One page per call (``next`` while the server offers it, else ``added_after``),
    stored in one transaction with the cursor that follows it."""
    cursor = dict(lease.connection.cursor or {})
    page = _fetch_page(connector, cursor, lease.connection.filters or {})
    with _unit(maker, lease) as unit:
        for group in split_by_container(page.objects):
            _store_group(unit, lease, group, policy)
        _count(unit.job, "objects", len(page.objects))
        if page.more and page.next:
            cursor["next"] = page.next
        else:
            cursor.pop("next", None)
            if page.date_added_last:
                cursor["added_after"] = page.date_added_last
        unit.connection.cursor = cursor
    return not page.more


def _fetch_page(
    connector: connectors.ObjectPuller, cursor: dict[str, Any], filters: dict[str, Any]
) -> connectors.ObjectPage:
    """The next page; an expired paging token (a 4xx on ``next``) starts again from the date."""
    types = list(filters.get("types") or [])
    limit = int(filters.get("page_size") or TAXII_PAGE)
    try:
        return connector.page(
            added_after=cursor.get("added_after"), next=cursor.get("next"), types=types, limit=limit
        )
    except connectors.PermanentError:
        if not cursor.get("next"):
            raise
        cursor.pop("next")
    return connector.page(
        added_after=cursor.get("added_after"), next=None, types=types, limit=limit
    )


def _store_group(unit: Unit, lease: Lease, group: list[dict[str, Any]], policy: tlp.Policy) -> None:
    """One report or grouping (or the rest of the page) as one bundle, ingested."""
    first = next(o["id"] for o in group if o.get("type") not in SHARED_TYPES)
    seed = unit.connection.uuid + first
    bundle_id = f"bundle--{uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, seed)}"
    body = orjson.dumps({"type": "bundle", "id": bundle_id, "objects": group})
    session = unit.session
    try:
        with session.begin_nested():
            outcomes = ingest_bundle(
                session,
                body=body,
                source=session.get(Partner, lease.partner.id),
                actor=_actor(unit.connection),
                channel=unit.connection.kind,
                policy=policy,
            )
        for outcome in outcomes:
            _count(unit.job, outcome.status)
    except HubError as err:
        _count(unit.job, "refused", error=f"{first}: {err.detail}")


_STEPS: dict[str, Step] = {
    "misp-pull": _misp_pull,
    "misp-push": _misp_push,
    "taxii-pull": _taxii_pull,
}
