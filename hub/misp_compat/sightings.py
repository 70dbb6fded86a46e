"""Sightings over ``/misp`` (reference/misp-sync.md §2.4): added by a partner or its MISP,
searched by the sync pull.

A sighting is always recorded as the calling key's organisation, whatever the body says;
sightings on attributes the caller receives go out, other organisations' anonymised (no
organisation, no source text).
"""

from __future__ import annotations

import time
import uuid as uuid_mod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import InvalidField
from hub.misp_compat.elements import bounded, shape_attributes
from hub.misp_compat.params import since, terms, truthy
from hub.misp_compat.service import CHANNEL, Caller, find_event, is_uuid, row_ids, view
from hub.models import Attribute, Event, Sighting
from hub.notifications import feedback as notifications
from hub.sharing.attribute_pages import AttributePage, release_attribute_page
from hub.sharing.records import obligation, obligation_of

_MAX_TARGETS = 10_000


def _sighting_out(row: Sighting, attr_id: int | None, caller: Caller) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": caller.ids.public_str("sighting", row.id),
        "attribute_id": caller.ids.public_str("attribute", attr_id) if attr_id else "0",
        "event_id": caller.event_id(row.event_id),
        "org_id": "0",
        "date_sighting": str(row.date_sighting),
        "uuid": row.uuid,
        "source": "",
        "type": str(row.type),
        "attribute_uuid": row.attribute_uuid,
        "event_uuid": "",
    }
    doc = orjson.loads(row.doc)
    out["event_uuid"] = str(doc.get("event_uuid") or "")
    # Other organisations' sightings go out anonymised: who saw what is theirs to share.
    if row.org_uuid == caller.org_uuid:
        principal = caller.principal
        out["source"] = str(doc.get("source") or "")
        out["org_id"] = str(principal.partner_id)
        out["Organisation"] = {
            "id": str(principal.partner_id),
            "uuid": principal.partner_uuid,
            "name": principal.partner_name,
        }
    return out


def _record(session: Session, caller: Caller, *, event: Any, uuids: list[str], how: str) -> None:
    audit.append(
        session,
        [
            audit.Record(
                action="sighting.add",
                actor=caller.principal.actor,
                object_ref=f"event:{event.uuid}",
                request_id=current_request_id(),
                channel=CHANNEL.value,
                details={"via": how, "sightings": uuids[:1000], "count": len(uuids)},
            )
        ],
    )


def _released(session: Session, caller: Caller, stmt: Any) -> AttributePage:
    """The (attribute, event) rows of ``stmt`` the caller receives, as one audited page."""

    def fetch(after: Any, n: int) -> Sequence[Any]:
        query = stmt if after is None else stmt.where(Attribute.id > after)
        return session.execute(query.order_by(Attribute.id).limit(n)).all()

    page = release_attribute_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=_MAX_TARGETS,
    )
    return page


@dataclass(slots=True)
class Sighted:
    """The caller's new sightings, under the handling obligation of the attributes they are
    on (a sighting carries no tag of its own) and the audit entry that released them."""

    items: list[dict[str, Any]]
    obligation: tlp.Obligation
    audit_seq: int | None


def add_sighting(
    session: Session, caller: Caller, *, body: dict[str, Any], target: str | None
) -> Sighted:
    """``/sightings/add[/{attribute}]``: a sighting on one attribute, or on every attribute
    with the given value the caller may see (SightingsController::add)."""
    ident = target or body.get("uuid") or body.get("id")
    stmt = select(Attribute, Event).join(Event, Event.id == Attribute.event_id)
    if ident:
        ident = str(ident).strip().lower()
        if is_uuid(ident):
            stmt = stmt.where(Attribute.uuid == ident)
        else:
            stmt = stmt.where(Attribute.id.in_(row_ids(caller, "attribute", [ident])))
    elif body.get("value") or body.get("values"):
        values = body.get("values") or [body["value"]]
        values = [str(v) for v in (values if isinstance(values, list) else [values])]
        stmt = stmt.where(
            Attribute.value_key.in_([v[:200] for v in values]), Attribute.value.in_(values)
        )
    else:
        raise InvalidField("a sighting needs an attribute (uuid or id) or a value", field="value")
    try:
        kind = int(body.get("type") or 0)
        when = int(body.get("timestamp") or body.get("date_sighting") or time.time())
    except (TypeError, ValueError, OverflowError):
        raise InvalidField("type and timestamp must be numbers", field="type") from None
    if kind not in (0, 1, 2):
        raise InvalidField(
            "type is 0 (sighting), 1 (false positive) or 2 (expiration)", field="type"
        )
    if not 0 <= when < 2**62:
        raise InvalidField("timestamp is out of range", field="timestamp")
    page = _released(session, caller, stmt.where(Attribute.deleted.is_(False)))
    rows = page.items
    out = []
    by_event: dict[int, tuple[Any, list[str]]] = {}
    for attr, event, _doc in rows:
        doc = {
            "source": str(body.get("source") or "")[:255],
            "type": str(kind),
            "event_uuid": event.uuid,
            "Organisation": {"uuid": caller.org_uuid, "name": caller.principal.partner_name},
        }
        row = Sighting(
            uuid=str(uuid_mod.uuid4()),
            event_id=event.id,
            attribute_uuid=attr.uuid,
            org_uuid=caller.org_uuid,
            type=kind,
            date_sighting=when,
            doc=orjson.dumps(doc),
        )
        session.add(row)
        session.flush()
        by_event.setdefault(event.id, (event, []))[1].append(row.uuid)
        out.append(_sighting_out(row, attr.id, caller))
    for event, uuids in by_event.values():
        _record(session, caller, event=event, uuids=uuids, how="add")
    notifications.sightings_feedback(
        session,
        principal=caller.principal,
        sightings=[(o["attribute_uuid"], kind) for o in out],
    )
    return Sighted(out, page.obligation, page.audit_seq)


def _conditions(caller: Caller, body: dict[str, Any]) -> list[Any] | None:
    """The SQL filters of a sighting search; None when nothing can match. ``org_id`` and
    ``source`` only ever match the caller's own sightings: other organisations' go out
    anonymised, so they cannot be selected by who made them or by their source text."""
    out: list[Any] = []
    low, high = since(body.get("last"), name="last")
    for key in ("from", "date_from"):
        found, _ = since(body.get(key), name=key)
        low = max(low or 0, found or 0) or low
    for key in ("to", "date_to"):
        found, _ = since(body.get(key), name=key)
        high = found if found is not None else high
    if low is not None:
        out.append(Sighting.date_sighting >= low)
    if high is not None:
        out.append(Sighting.date_sighting <= high)
    kinds = terms(body.get("type"))
    if kinds.include:
        try:
            out.append(Sighting.type.in_([int(k) for k in kinds.include]))
        except ValueError:
            raise InvalidField("type is 0, 1 or 2", field="type") from None
    orgs = terms(body.get("org_id", body.get("org")))
    if orgs.include:
        mine = {str(caller.principal.partner_id), caller.org_uuid, caller.principal.partner_name}
        if not {o.lower() for o in orgs.include} & {m.lower() for m in mine}:
            return None
        out.append(Sighting.org_uuid == caller.org_uuid)
    if body.get("source"):
        out.append(Sighting.org_uuid == caller.org_uuid)
    return out


def _keep(row: Sighting, body: dict[str, Any]) -> bool:
    source = body.get("source")
    return not source or str(orjson.loads(row.doc).get("source") or "") == str(source)


def _shaped(
    session: Session,
    caller: Caller,
    found: Sequence[Sighting],
    rows: Sequence[tuple[Any, Any, Any]],
    body: dict[str, Any],
) -> list[dict[str, Any]]:
    """``{"Sighting": …}`` items, with the attribute and the event's metadata when asked
    (``includeAttribute``, ``includeEvent``), both as the caller receives them."""
    attr_ids = {a.uuid: a.id for a, _e, _d in rows}
    with_attr = truthy(body.get("includeAttribute", False))
    with_event = truthy(body.get("includeEvent", False))
    attrs: dict[str, dict[str, Any]] = {}
    if with_attr:
        attrs = {d["uuid"]: d for d in shape_attributes(session, caller, list(rows))}
    events = {a.uuid: e for a, e, _d in rows}
    out = []
    for s in found:
        item = _sighting_out(s, attr_ids.get(s.attribute_uuid), caller)
        if with_attr and s.attribute_uuid in attrs:
            item["Attribute"] = attrs[s.attribute_uuid]
        if with_event and s.attribute_uuid in events:
            event = events[s.attribute_uuid]
            item["Event"] = {
                "id": caller.event_id(event.id),
                "uuid": event.uuid,
                "info": event.info,
                "date": event.date or "",
            }
        out.append({"Sighting": item})
    return out


@dataclass(slots=True)
class Sightings:
    """``{"Sighting": …}`` items, the audit entry of the attributes they are on and the
    handling obligation of the strictest of those attributes (nothing: CLEAR)."""

    items: list[dict[str, Any]]
    audit_seq: int | None
    obligation: tlp.Obligation = field(default_factory=lambda: obligation([]))


def search_sightings(
    session: Session, caller: Caller, *, body: dict[str, Any], context: str | None
) -> Sightings:
    """``/sightings/restSearch[/{event|attribute}]``: sightings on attributes the caller
    receives (one audited page of them; the sync pull reads ``attribute_uuid``,
    ``event_uuid``, ``uuid``, ``type``, ``source``, ``date_sighting``,
    Sighting.php:1425-1523). Without a context: every such sighting matching the filters,
    a bounded page (``limit`` default 100, at most 1000)."""
    conditions = _conditions(caller, body)
    if conditions is None:
        return Sightings([], None)
    stmt = select(Attribute, Event).join(Event, Event.id == Attribute.event_id)
    limit: int | None = None
    number = 1
    if context is None:
        limit, number = bounded(body)
        stmt = stmt.where(
            select(Sighting.id)
            .where(Sighting.attribute_uuid == Attribute.uuid, *conditions)
            .exists()
        )
    else:
        ids = terms(
            body.get("uuid") if body.get("uuid") else body.get("id", body.get("context_id"))
        )
        if not ids.include:
            return Sightings([], None)
        uuids = [v.lower() for v in ids.include if is_uuid(v)]
        if context == "attribute":
            numbers = row_ids(caller, "attribute", ids.include)
            stmt = stmt.where(or_(Attribute.id.in_(numbers), Attribute.uuid.in_(uuids)))
        else:
            numbers = row_ids(caller, "event", ids.include)
            stmt = stmt.where(or_(Event.id.in_(numbers), Event.uuid.in_(uuids)))
    page = _released(session, caller, stmt.where(Attribute.deleted.is_(False)))
    rows = page.items
    attr_ids = {a.uuid: a.id for a, _e, _d in rows}
    if not attr_ids:
        return Sightings([], page.audit_seq)
    found: list[Sighting] = []
    keys = sorted(attr_ids)
    for start in range(0, len(keys), 500):
        query = select(Sighting).where(
            Sighting.attribute_uuid.in_(keys[start : start + 500]), *conditions
        )
        found += [s for s in session.scalars(query.order_by(Sighting.id)) if _keep(s, body)]
    found.sort(key=lambda s: s.id)
    if limit is not None:
        found = found[(number - 1) * limit : number * limit]
    sighted = {s.attribute_uuid for s in found}
    duty = obligation_of(d for a, _e, d in rows if a.uuid in sighted)
    return Sightings(_shaped(session, caller, found, rows, body), page.audit_seq, duty)


def list_sightings(session: Session, caller: Caller, *, body: dict[str, Any]) -> Sightings:
    """``/sightings/listSightings``: the sightings on one event or attribute
    (``{"context": "event"|"attribute", "id": …}``) the caller receives, as a list."""
    context = str(body.get("context") or "event")
    if context not in ("event", "attribute"):
        raise InvalidField("context is event or attribute", field="context")
    return search_sightings(session, caller, body=body, context=context)


def _sighting_event(
    session: Session, caller: Caller, ident: str
) -> tuple[Event, set[str] | None] | None:
    """The event sightings are pushed for and the attribute uuids the caller may sight on it
    (None: all of them, for the event's creator, who holds it whole), or None when the
    caller may not know the event: decided as the view decides (released and audited), so
    an event the caller may not see answers exactly as an unknown one."""
    event = find_event(session, caller, ident)
    if event is None:
        return None
    if event.source_partner_id == caller.principal.partner_id:
        return event, None
    released = view(session, caller, event, include_deleted=False)
    if released is None or released.event is None:
        return None
    body = released.event["Event"]
    uuids = {str(a.get("uuid")).lower() for a in body.get("Attribute") or []}
    for item in body.get("Object") or []:
        uuids.update(str(a.get("uuid")).lower() for a in item.get("Attribute") or [])
    return event, uuids


def _stored_sightings(session: Session, uuids: list[str], *, event_id: int | None) -> list[str]:
    have: list[str] = []
    for start in range(0, len(uuids), 500):
        stmt = select(Sighting.uuid).where(Sighting.uuid.in_(uuids[start : start + 500]))
        if event_id is not None:
            stmt = stmt.where(Sighting.event_id == event_id)
        have += session.scalars(stmt)
    return have


def known_sightings(session: Session, caller: Caller, *, event_uuid: str, body: Any) -> list[str]:
    """``/sightings/filterSightingUuidsForPush/{event}``: which offered uuids the hub has on
    that event; nothing for an event the caller may not know (as for an unknown one)."""
    if not isinstance(body, list):
        raise InvalidField("the body must be a list of sighting uuids", field="uuid")
    offered = [str(u).lower() for u in body if isinstance(u, str)]
    if not offered:
        return []
    found = _sighting_event(session, caller, event_uuid)
    if found is None:
        return []
    return _stored_sightings(session, offered, event_id=found[0].id)


def save_sightings(session: Session, caller: Caller, *, event_uuid: str, body: Any) -> int | None:
    """``/sightings/bulkSaveSightings/{event}``: new sightings (by uuid) on attributes of that
    event the caller may see; recorded as the pushing partner's whatever the body says
    (Sighting.php:1255-1333). None when the caller may not know the event (or it does not
    exist): the endpoint answers MISP's 404 alike."""
    if not isinstance(body, list):
        raise InvalidField("the body must be a list of sightings", field="Sighting")
    found = _sighting_event(session, caller, event_uuid)
    if found is None:
        return None
    event, attrs = found
    items = [s.get("Sighting", s) for s in body if isinstance(s, dict)]
    if attrs is None:
        attrs = set(session.scalars(select(Attribute.uuid).where(Attribute.event_id == event.id)))
    offered = [str(s.get("uuid") or "").lower() for s in items if isinstance(s, dict)]
    # Any event: a sighting uuid is unique in the store.
    known = set(_stored_sightings(session, [u for u in offered if u], event_id=None))
    fresh = []
    for item, uuid in zip([s for s in items if isinstance(s, dict)], offered, strict=True):
        attr_uuid = str(item.get("attribute_uuid") or "").lower()
        if not is_uuid(uuid) or uuid in known or attr_uuid not in attrs:
            continue
        try:
            kind, when = int(item.get("type") or 0), int(item.get("date_sighting") or 0)
        except (TypeError, ValueError, OverflowError):
            continue
        if not 0 <= when < 2**62:
            continue
        known.add(uuid)
        doc = {
            "source": str(item.get("source") or "")[:255],
            "type": str(kind if kind in (0, 1, 2) else 0),
            "event_uuid": event.uuid,
            "Organisation": {"uuid": caller.org_uuid, "name": caller.principal.partner_name},
        }
        fresh.append(
            {
                "uuid": uuid,
                "event_id": event.id,
                "attribute_uuid": attr_uuid,
                "org_uuid": caller.org_uuid,
                "type": kind if kind in (0, 1, 2) else 0,
                "date_sighting": when or int(time.time()),
                "doc": orjson.dumps(doc),
            }
        )
    if fresh:
        session.execute(Sighting.__table__.insert(), fresh)
        _record(
            session, caller, event=event, uuids=[f["uuid"] for f in fresh], how="bulkSaveSightings"
        )
        notifications.sightings_feedback(
            session,
            principal=caller.principal,
            sightings=[(f["attribute_uuid"], f["type"]) for f in fresh],
        )
    return len(fresh)
