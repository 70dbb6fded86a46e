"""A partner's MISP (or PyMISP) pushing its own events: ``/events/add``, ``/events/edit``,
``/events/filterEventIdsForPush``, with MISP's rules (reference/misp-sync.md §2.3, §5.2).

An event another organisation submitted answers as a missing one wherever MISP's protocol
allows it (edit, filterEventIdsForPush) unless the caller may see it; where it cannot (an add
that clashes), the refusal names nothing of it and is audited (DESIGN.md §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.errors import InvalidField, NotFound
from hub.intel import repository
from hub.intel.service import Outcome, Prepared, ingest_events, lock_event_uuids, prepare_events
from hub.misp_compat.errors import NOT_NEWER, SaveRefused
from hub.misp_compat.service import CHANNEL, Caller, find_event, visible
from hub.models import Event, Partner
from hub.sharing.view import Gate, deleted_by_source, summarise

RECOVERED = ("info", "distribution", "date", "threat_level_id", "analysis", "SharingGroup")


def partial_edit(row: Event, event: dict[str, Any]) -> None:
    """A partial ``events/edit`` (``update_event({...}, event_id=…)``) merges, as MISP's does:
    the event's own fields the request leaves out keep their stored values (MISP's
    ``recoverFields``, Event.php ``_edit``)."""
    stored = orjson.loads(row.doc)
    for key in RECOVERED:
        if key not in event and key in stored:
            event[key] = stored[key]


@dataclass(slots=True)
class Pushed:
    """A stored push: the event row (None when held in quarantine) and what ingest said."""

    row: Event | None
    outcome: Outcome


class ExistsElsewhere(Exception):
    """``/events/add`` of a uuid the caller already has here: MISP answers 404 with
    ``Location`` (EventsController.php:2222-2227) and the pusher retries as an edit."""

    def __init__(self, row: Event) -> None:
        self.row = row


def unwrap_event(doc: Any) -> dict[str, Any]:
    """``{"Event": …}``, a bare event, ``{"response": …}`` or ``{"request": …}``
    (EventsController.php:2122-2131)."""
    for key in ("response", "request"):
        if isinstance(doc, dict) and key in doc and "info" not in doc:
            doc = doc[key]
    if isinstance(doc, list) and len(doc) == 1:
        doc = doc[0]
    if isinstance(doc, dict) and isinstance(doc.get("Event"), dict):
        doc = doc["Event"]
    if not isinstance(doc, dict):
        raise InvalidField("the body must be one MISP event", field="Event")
    return dict(doc)


def _check_creator(event: dict[str, Any], source: Partner, *, name: str) -> None:
    """A partner pushes its own events. Relaying another organisation's events would need an
    explicit permission on the key, and the hub has no such permission yet."""
    orgc = event.get("Orgc")
    if not isinstance(orgc, dict):
        return
    org_uuid = str(orgc.get("uuid") or "").lower()
    org_name = str(orgc.get("name") or "")
    if org_uuid and org_uuid == source.uuid:
        return
    if not org_uuid and (not org_name or org_name.casefold() == source.name.casefold()):
        return
    raise SaveRefused(
        f"Event could not be saved: its creator organisation ({org_name or '?'}, "
        f"{org_uuid or 'no uuid'}) is not this key's organisation ({source.name}, "
        f"{source.uuid}). Relaying another organisation's events needs a relay permission "
        "on the key; the hub does not grant one.",
        name=name,
    )


def with_add_defaults(event: dict[str, Any]) -> dict[str, Any]:
    """MISP's defaults for a new event (EventsController.php:2157-2169)."""
    event.setdefault("date", datetime.now(UTC).date().isoformat())
    event.setdefault("threat_level_id", "4")
    event.setdefault("analysis", "0")
    return event


def prepare_add(payload: Any, *, default_distribution: int) -> Prepared:
    """An ``/events/add`` body read, given MISP's defaults for a new event and validated
    before the unit of work touches the database (its CPU work then holds no lock). The
    defaults change nothing when the uuid is stored already: that add is refused (the
    caller's: exists; another organisation's: ``ForeignEvent``) before its content counts."""
    event = with_add_defaults(unwrap_event(payload))
    return prepare_events([event], default_distribution=default_distribution)


def push(
    session: Session,
    caller: Caller,
    *,
    source: Partner,
    payload: Any,
    target: str | None,
    default_distribution: int = 1,
) -> Pushed:
    """``/events/add`` (``target`` None; ``payload`` may be ``prepare_add``'s result) or
    ``/events/edit/{target}``, with MISP's rules:
    the creator must be the caller, an edit must be newer (Event.php:4115-4150), an event
    without a timestamp gets now (ingest does that). ``source`` is the caller's organisation,
    as ``hub.intel.submission.submitting_partner`` checks it (active, TLP rules accepted).
    An add whose uuid belongs to another organisation raises ``ForeignEvent`` from ingest."""
    name = "Could not edit Event" if target is not None else "Could not add Event"
    prepared = payload if isinstance(payload, Prepared) else None
    event = prepared.items[0].event if prepared is not None else unwrap_event(payload)
    _check_creator(event, source, name=name)
    lock_event_uuids(session, [event["uuid"]] if event.get("uuid") else [])  # concurrent pushes
    if target is not None:
        row = find_event(session, caller, target)
        foreign = row is not None and row.source_partner_id != source.id
        if row is None or (foreign and not visible(session, caller, row)):
            raise NotFound(f"Invalid event {target}")  # as for a missing one
        if foreign:
            raise SaveRefused(
                "Event could not be saved: this event belongs to another organisation; only "
                "its creator may change it.",
                name=name,
            )
        if row.source_partner_id == source.id and deleted_by_source(row):
            raise NotFound(f"Invalid event {target}")  # deleted by its source: gone
        given = str(event.get("uuid") or row.uuid).lower()
        if given != row.uuid:
            raise SaveRefused(
                f"Event could not be saved: the body's uuid {given} is not event {target}",
                name=name,
            )
        event["uuid"] = row.uuid
        partial_edit(row, event)
    else:
        uuid = str(event.get("uuid") or "").lower()
        row = repository.by_uuid(session, uuid) if uuid else None
        if (
            row is not None
            and row.source_partner_id == source.id
            and row.exercise_id == caller.recipient.exercise_id
        ):
            raise ExistsElsewhere(row)  # (another scope's: ingest refuses it, naming nothing)
        if row is None and prepared is None:
            with_add_defaults(event)
    outcome = ingest_events(
        session,
        payloads=prepared or [event],
        source=source,
        actor=caller.principal.actor,
        channel=CHANNEL.value,
        policy=caller.policy,
        default_distribution=default_distribution,
        exercise=caller.recipient.exercise_id,
    )[0]
    if outcome.status == "unchanged":
        raise SaveRefused(NOT_NEWER, name=name)
    stored = repository.by_uuid(session, outcome.uuid) if outcome.status != "quarantined" else None
    return Pushed(stored, outcome)


def metadata(caller: Caller, row: Event) -> dict[str, Any]:
    """The answer to a push with ``metadata:1`` (the pusher, its creator, reads ``Event.id``,
    Event.php:932)."""
    return {
        "Event": {
            "id": caller.event_id(row.id),
            "uuid": row.uuid,
            "info": row.info,
            "date": row.date or "",
            "timestamp": str(row.timestamp),
            "publish_timestamp": str(row.publish_timestamp or 0),
            "published": bool(row.published),
            "distribution": str(row.distribution),
            "attribute_count": str(row.attribute_count),
            "locked": True,
            "protected": False,
            "Orgc": {"uuid": row.orgc_uuid, "name": row.orgc_name},
        }
    }


def uuids_to_push(session: Session, caller: Caller, *, body: Any) -> list[str]:
    """``/events/filterEventIdsForPush``: the uuids the hub wants. Dropped: the caller's own
    events held at the same or a newer timestamp, and other organisations' events the caller
    may see (it may not change them, MISP drops events not ``locked``,
    EventsController.php:4275-4302). An event the caller may not see is wanted, as a missing
    one would be; pushing it is then refused without naming anything."""
    if not isinstance(body, list):
        raise InvalidField("the body must be a list of {Event: {uuid, timestamp}}", field="Event")
    offered: dict[str, int] = {}
    for item in body:
        inner = item.get("Event", item) if isinstance(item, dict) else None
        if not isinstance(inner, dict) or not inner.get("uuid"):
            continue
        uuid = str(inner["uuid"]).lower()
        try:
            offered[uuid] = int(inner.get("timestamp") or 0)
        except (TypeError, ValueError, OverflowError):
            offered[uuid] = 0
    keys = list(offered)
    rows: dict[str, Any] = {}
    for start in range(0, len(keys), 500):
        for row in session.execute(
            select(*repository.SUMMARY_COLUMNS, Event.source_partner_id).where(
                Event.uuid.in_(keys[start : start + 500])
            )
        ):
            if tlp.in_scope(row.exercise_id, caller.recipient.tlp):
                rows[row.uuid] = row  # another exercise's (or scope's) is as a missing one
    foreign = [r for r in rows.values() if r.source_partner_id != caller.principal.partner_id]
    gate = Gate(caller.recipient, CHANNEL, caller.policy)
    seen = {row.uuid for row, summary, _ in summarise(session, gate, foreign) if summary}
    wanted = []
    for uuid, stamp in offered.items():
        row = rows.get(uuid)
        if row is None:
            wanted.append(uuid)
        elif row.source_partner_id == caller.principal.partner_id:
            if stamp > row.timestamp:
                wanted.append(uuid)
        elif uuid not in seen:
            wanted.append(uuid)
    return wanted
