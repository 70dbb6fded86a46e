"""Attributes, objects and event reports one at a time or as a list, as the caller receives
them: ``attributes/view``, ``attributes/index``, ``objects/view``, ``objects/restSearch``,
``eventReports/view``, ``eventReports/index`` (reference/misp-sync.md §7.3).

Each answer is a page of the released view (``hub.sharing.attribute_pages``,
``hub.sharing.object_pages``), recorded in one audit entry; an element the caller does not
receive answers as a missing one. Lists are bounded: ``DEFAULT_PAGE`` items unless
``limit`` says otherwise, never more than ``MAX_PAGE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.errors import InvalidField
from hub.intel import repository
from hub.misp_compat import shapes
from hub.misp_compat.filters import attribute_matcher
from hub.misp_compat.params import limit_page, terms, truthy
from hub.misp_compat.service import CHANNEL, Caller, row_ids
from hub.models import Attribute, Event, EventObject, EventReport
from hub.sharing.attribute_pages import release_attribute_page
from hub.sharing.object_pages import release_object_page
from hub.sharing.records import obligation
from hub.sharing.reports import release_reports

DEFAULT_PAGE = 100
MAX_PAGE = 1000


def bounded(body: dict[str, Any]) -> tuple[int, int]:
    """``limit`` and ``page`` of a bounded listing (module doc)."""
    limit, page = limit_page(body, default=DEFAULT_PAGE)
    assert limit is not None
    if limit > MAX_PAGE:
        raise InvalidField(f"limit is at most {MAX_PAGE}", field="limit")
    return limit, page


@dataclass(slots=True)
class Released:
    """Elements as they go out to the caller, the audit entry that recorded them and the
    handling obligation of the strictest of them (nothing released: that of nothing, CLEAR)."""

    items: list[dict[str, Any]] = field(default_factory=list)
    audit_seq: int | None = None
    obligation: tlp.Obligation = field(default_factory=lambda: obligation([]))


def object_ids(session: Session, uuids: Sequence[str]) -> dict[str, int]:
    keys = sorted({u for u in uuids if u})
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        found.update(
            session.execute(
                select(EventObject.uuid, EventObject.id).where(
                    EventObject.uuid.in_(keys[start : start + 500])
                )
            ).all()  # type: ignore[arg-type]
        )
    return found


def shape_attributes(
    session: Session, caller: Caller, items: Sequence[tuple[Any, Any, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """Released (attribute row, event row, attribute) triples in MISP's shape, with the
    caller's ids."""
    objects = object_ids(session, [a.object_uuid for a, _e, _d in items if a.object_uuid])
    tags = shapes.TagShaper()
    out = []
    for attr, event, doc in items:
        object_id = "0"
        if attr.object_uuid:
            row_id = objects.get(attr.object_uuid)
            object_id = caller.ids.public_str("object", row_id) if row_id else "0"
        out.append(
            shapes.attribute(
                doc,
                tags,
                id=caller.ids.public_str("attribute", attr.id),
                event_id=caller.event_id(event.id),
                object_id=object_id,
            )
        )
    return out


def attributes(
    session: Session,
    caller: Caller,
    rows: Sequence[tuple[Attribute, Event]],
    *,
    include_deleted: bool = False,
    write_answer: bool = False,
) -> Released:
    """The given attributes as the caller receives them (those it does not are left out);
    ``write_answer``: the answer to the caller's write (recorded as such)."""
    if not rows:
        return Released()

    def fetch(after: Any, n: int) -> Sequence[Any]:
        return list(rows) if after is None else []

    page = release_attribute_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=len(rows),
        include_deleted=include_deleted,
        write_answer=write_answer,
    )
    return Released(shape_attributes(session, caller, page.items), page.audit_seq, page.obligation)


def attribute_index(session: Session, caller: Caller, body: dict[str, Any]) -> Released:
    """``attributes/index``: a bounded page of every attribute the caller receives, in id
    order (MISP lists them all; the hub pages them)."""
    limit, page = bounded(body)
    aud = caller.audience()
    stmt = (
        select(Attribute, Event)
        .join(Event, Event.id == Attribute.event_id)
        .where(
            repository.readable(aud), repository.attribute_cap(aud), Attribute.deleted.is_(False)
        )
    )

    def fetch(after: Any, n: int) -> Sequence[Any]:
        query = stmt if after is None else stmt.where(Attribute.id > after)
        return session.execute(query.order_by(Attribute.id).limit(n)).all()

    result = release_attribute_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=limit,
        skip=(page - 1) * limit,
    )
    items = shape_attributes(session, caller, result.items)
    return Released(items, result.audit_seq, result.obligation)


def _attribute_ids(session: Session, object_uuids: Sequence[str]) -> dict[str, int]:
    keys = sorted(set(object_uuids))
    found: dict[str, int] = {}
    for start in range(0, len(keys), 500):
        found.update(
            session.execute(
                select(Attribute.uuid, Attribute.id).where(
                    Attribute.object_uuid.in_(keys[start : start + 500])
                )
            ).all()  # type: ignore[arg-type]
        )
    return found


def _shape_objects(
    session: Session, caller: Caller, items: Sequence[tuple[Any, Any, dict[str, Any]]]
) -> list[dict[str, Any]]:
    ids = _attribute_ids(session, [o.uuid for o, _e, _d in items])
    out = []
    tags = shapes.TagShaper()
    # What this answer releases: a reference to anything else is dropped for all but the
    # event's creator (fail closed; the event view carries every reference to what the
    # caller receives of the event).
    released = {o.uuid for o, _e, _d in items} | {
        a.get("uuid") for _o, _e, d in items for a in d.get("Attribute") or []
    }
    for obj, event, doc in items:
        object_id = caller.ids.public_str("object", obj.id)
        event_id = caller.event_id(event.id)
        doc["Attribute"] = [
            shapes.attribute(
                a,
                tags,
                id=caller.ids.public_str("attribute", ids[a["uuid"]]) if a["uuid"] in ids else "0",
                event_id=event_id,
                object_id=object_id,
            )
            for a in doc.get("Attribute") or []
        ]
        doc["ObjectReference"] = [
            ref
            for ref in doc.get("ObjectReference") or []
            if isinstance(ref, dict)
            and (ref.get("referenced_uuid") in released or event.orgc_uuid == caller.org_uuid)
        ]
        for ref in doc["ObjectReference"]:
            ref["object_id"] = object_id
            ref["event_id"] = event_id
        doc["id"] = object_id
        doc["event_id"] = event_id
        doc.setdefault("sharing_group_id", "0")
        out.append(shapes.defaults(doc))
    return out


def objects(
    session: Session,
    caller: Caller,
    rows: Sequence[tuple[EventObject, Event]],
    *,
    include_deleted: bool = False,
    write_answer: bool = False,
) -> Released:
    """The given objects as the caller receives them (whole, or not at all);
    ``write_answer``: the answer to the caller's write (recorded as such)."""
    if not rows:
        return Released()

    def fetch(after: Any, n: int) -> Sequence[Any]:
        return list(rows) if after is None else []

    page = release_object_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=len(rows),
        include_deleted=include_deleted,
        write_answer=write_answer,
    )
    return Released(_shape_objects(session, caller, page.items), page.audit_seq, page.obligation)


def search_objects(session: Session, caller: Caller, body: dict[str, Any]) -> Released:
    """``objects/restSearch``: the objects the caller receives that match ``object_name``,
    ``uuid``, ``eventid`` and the attribute filters (as restSearch's, on the object's
    released attributes), a bounded page in id order."""
    limit, page = bounded(body)
    aud = caller.audience()
    stmt = (
        select(EventObject, Event)
        .join(Event, Event.id == EventObject.event_id)
        .where(repository.readable(aud))
    )
    include_deleted = truthy(body.get("deleted", False))
    if not include_deleted:
        stmt = stmt.where(EventObject.deleted.is_(False))
    names = terms(body.get("object_name", body.get("name")))
    if names.include:
        stmt = stmt.where(EventObject.name.in_(names.include))
    if names.exclude:
        stmt = stmt.where(EventObject.name.not_in(names.exclude))
    uuids = terms(body.get("uuid"))
    if uuids.include:
        stmt = stmt.where(EventObject.uuid.in_([u.lower() for u in uuids.include]))
    events = terms(body.get("eventid", body.get("event_id")))
    if events.include:
        ids = row_ids(caller, "event", events.include)
        stmt = stmt.where(
            (Event.id.in_(ids)) | (Event.uuid.in_([e.lower() for e in events.include]))
        )
    match = attribute_matcher(body)

    def fetch(after: Any, n: int) -> Sequence[Any]:
        query = stmt if after is None else stmt.where(EventObject.id > after)
        return session.execute(query.order_by(EventObject.id).limit(n)).all()

    def accept(_obj: Any, _event: Any, doc: dict[str, Any]) -> bool:
        return match is None or any(
            match(a) for a in doc.get("Attribute") or [] if not truthy(a.get("deleted"))
        )

    result = release_object_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=limit,
        skip=(page - 1) * limit,
        accept=accept,
        include_deleted=include_deleted,
    )
    items = _shape_objects(session, caller, result.items)
    return Released(items, result.audit_seq, result.obligation)


def reports(
    session: Session,
    caller: Caller,
    event: Event,
    *,
    uuids: frozenset[str] | None = None,
    include_deleted: bool = False,
    write_answer: bool = False,
) -> Released:
    """The event's reports the caller receives (all, or those named), with its ids;
    ``write_answer``: the answer to the caller's write (recorded as such)."""
    released = release_reports(
        session,
        to=caller.principal,
        event=event,
        channel=CHANNEL,
        policy=caller.policy,
        include_deleted=include_deleted,
        uuids=uuids,
        write_answer=write_answer,
    )
    if not released.reports:
        return Released([], released.audit_seq, released.obligation)
    numbers = dict(
        session.execute(
            select(EventReport.uuid, EventReport.id).where(EventReport.event_id == event.id)
        ).all()  # type: ignore[arg-type]
    )
    event_id = caller.event_id(event.id)
    out = []
    for report in released.reports:
        row_id = numbers.get(report["uuid"])
        report["id"] = caller.ids.public_str("report", row_id) if row_id else "0"
        report["event_id"] = event_id
        report["deleted"] = bool(report.get("deleted", False))
        out.append(report)
    return Released(out, released.audit_seq, released.obligation)
