"""Pulling from an upstream MISP: the index since the cursor, then each newer event fetched and
stored in a unit of its own, with the cursor that covers it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import connectors
import tlp
from connectors.misp import downgrade_for_pull, has_content
from hub.connections.leases import Lease, Unit, actor_of, tally, unit_of_work
from hub.errors import HubError
from hub.intel.service import ingest_events
from hub.models import Event, Partner

PULL_BATCH = 20  # MISP events fetched per batch (each committed on its own)


def step_misp_pull(
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
        with unit_of_work(maker, lease) as unit:
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
    with unit_of_work(maker, lease) as unit:
        held = _held_timestamps(unit.session, [e.uuid for e in entries])
        todo = [
            [e.uuid, e.timestamp]
            for e in entries
            if (e.published or not rules.get("published", True))
            and held.get(e.uuid, -1) < e.timestamp  # held as new or newer: not downloaded
        ]
        tally(unit.job, "listed", len(entries))
        tally(unit.job, "held", len(entries) - len(todo))
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
        tally(unit.job, "empty")
        return
    session = unit.session
    try:
        with session.begin_nested():
            outcome = ingest_events(
                session,
                payloads=[event],
                source=session.get(Partner, lease.partner.id),
                actor=actor_of(unit.connection),
                channel=unit.connection.kind,
                policy=policy,
                keep_orgc=lease.partner.is_hub_org,
            )[0]
        tally(unit.job, outcome.status)
    except HubError as err:  # this event only: recorded, the run goes on
        tally(unit.job, "refused", error=f"{event.get('uuid')}: {err.detail}")
