"""``/events/restSearch`` and ``/attributes/restSearch`` (json), over released data only.

An event is selected by an attribute filter only if the caller receives a matching attribute;
an attribute page holds only attributes the caller receives; pages (``limit``, ``page``) and
counts are computed over those, so a hidden value never shows as an empty page or a shorter
one (DESIGN.md §3, "What leaves the hub"). Results come in ascending id order, as MISP's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidField
from hub.intel import repository
from hub.misp_compat import shapes
from hub.misp_compat.filters import (
    EventMatch,
    attribute_clauses,
    attribute_matcher,
    released_attributes,
    sql_filters,
)
from hub.misp_compat.index import candidates
from hub.misp_compat.params import limit_page, since, terms, truthy
from hub.misp_compat.service import CHANNEL, Caller, row_ids
from hub.models import Attribute, Event, EventObject
from hub.sharing.events import decide_event, record_event_page
from hub.sharing.pages import release_attribute_page
from hub.sharing.records import record
from hub.sharing.view import Gate, released_tags, summarise

_CHUNK = 200
_EVENT_KEYS = (
    "tags",
    "tag",
    "org",
    "eventid",
    "published",
    "last",
    "publish_timestamp",
    "eventinfo",
)


def json_only(body: dict[str, Any]) -> None:
    if body.get("returnFormat", "json") not in ("json", None):
        raise InvalidField("only returnFormat json is served here", field="returnFormat")


@dataclass(slots=True)
class Found:
    """What a search answers, and the audit entry that recorded it."""

    items: list[dict[str, Any]]
    audit_seq: int | None


def search_events(session: Session, caller: Caller, body: dict[str, Any]) -> Found:
    """Matching events, each released whole, recorded in one entry; the others are not
    delivered."""
    json_only(body)
    scoped = {k: v for k, v in body.items() if k not in ("value", "type", "category", "to_ids")}
    match = attribute_matcher(body)
    stmt = candidates(caller, scoped)
    clauses = attribute_clauses(body)
    if clauses:  # the event has some live attribute that could match (superset)
        stmt = stmt.where(
            select(Attribute.id)
            .where(Attribute.event_id == Event.id, Attribute.deleted.is_(False), *clauses)
            .exists()
        )
    limit, page = limit_page(body, default=None)
    skip = (page - 1) * limit if limit is not None else 0
    only_metadata = truthy(body.get("metadata", False))
    include_deleted = truthy(body.get("deleted", False)) or truthy(
        body.get("includeDeleted", False)
    )
    gate = Gate(caller.recipient, CHANNEL, caller.policy)
    wanted = EventMatch(scoped, caller)
    out: list[dict[str, Any]] = []
    recorded: list[tuple[Any, Any]] = []  # (event, delivery): delivered, or refused
    withheld: list[list[Any]] = []
    after = 0
    while limit is None or len(out) < limit:
        rows = session.execute(stmt.where(Event.id > after).order_by(Event.id).limit(_CHUNK)).all()
        for row, summary, reason in summarise(session, gate, rows):
            if limit is not None and len(out) >= limit:
                break
            if summary is None:
                withheld.append([row.uuid, None, False, reason, None, 0])
                continue
            if not wanted(summary):
                continue
            event = repository.by_uuid(session, row.uuid)
            assert event is not None
            delivery = decide_event(
                session,
                to=caller.recipient,
                event=event,
                channel=CHANNEL,
                policy=caller.policy,
                include_deleted=include_deleted,
            )
            if delivery.event is None:
                recorded.append((event, delivery))
                continue
            body_event = delivery.event["Event"]
            if match is not None and not any(map(match, released_attributes(body_event))):
                continue
            if skip:
                skip -= 1
                continue
            recorded.append((event, delivery))
            numbering = shapes.Numbering.load(session, caller.ids, event)
            out.append(shapes.full_event(body_event, event, numbering, metadata=only_metadata))
        if len(rows) < _CHUNK:
            break
        after = rows[-1].id
    seq = record_event_page(
        session,
        to=caller.recipient,
        deliveries=recorded,
        channel=CHANNEL,
        policy_version=caller.policy.version,
    )
    if withheld:
        seq = (
            record(
                session,
                caller.recipient,
                action="release.page",
                channel=CHANNEL,
                object_ref=None,
                decision="deny",
                details={"policy_version": caller.policy.version, "releases": withheld},
            )
            if seq is None
            else seq
        )
    return Found(out, seq)


def search_attributes(session: Session, caller: Caller, body: dict[str, Any]) -> Found:
    """Matching attributes the caller receives, one audited page."""
    json_only(body)
    aud = caller.audience()
    stmt = (
        select(Attribute, Event)
        .join(Event, Event.id == Attribute.event_id)
        .where(repository.readable(aud), repository.attribute_cap(aud), *attribute_clauses(body))
    )
    include_deleted = truthy(body.get("deleted", False))
    if not include_deleted:
        stmt = stmt.where(Attribute.deleted.is_(False))
    uuids = terms(body.get("uuid"))
    if uuids.include:
        stmt = stmt.where(Attribute.uuid.in_([u.lower() for u in uuids.include]))
    ids = terms(body.get("id"))
    if ids.include:
        stmt = stmt.where(Attribute.id.in_(row_ids(caller, "attribute", ids.include)))
    event_body = {k: v for k, v in body.items() if k in _EVENT_KEYS}
    stmt = sql_filters(stmt, event_body, caller=caller)
    low, high = since(body.get("timestamp"), name="timestamp")
    if low is not None:
        stmt = stmt.where(Attribute.timestamp >= low)
    if high is not None:
        stmt = stmt.where(Attribute.timestamp <= high)
    limit, page = limit_page(body, default=None)
    match = attribute_matcher(body)
    event_match = EventMatch(event_body, caller)
    gate = Gate(caller.recipient, CHANNEL, caller.policy)

    def fetch(after: Any, n: int) -> Sequence[Any]:
        query = stmt if after is None else stmt.where(Attribute.id > after)
        return session.execute(query.order_by(Attribute.id).limit(n)).all()

    def accept(attr: Any, event: Any, doc: dict[str, Any]) -> bool:
        if match is not None and not match(doc):
            return False
        if not event_match.tags:
            return True
        creator = event.orgc_uuid == gate.org_uuid
        return event_match.row(event, released_tags(event, creator=creator), 0)

    result = release_attribute_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=limit,
        skip=(page - 1) * limit if limit is not None else 0,
        accept=accept,
        include_deleted=include_deleted,
    )
    objects = _object_ids(session, [a for a, _e, _d in result.items])
    tags = shapes.TagShaper()
    out = []
    for attr, event, doc in result.items:
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
    return Found(out, result.audit_seq)


def _object_ids(session: Session, attrs: Sequence[Any]) -> dict[str, int]:
    uuids = sorted({a.object_uuid for a in attrs if a.object_uuid})
    found: dict[str, int] = {}
    for start in range(0, len(uuids), 500):
        found.update(
            session.execute(
                select(EventObject.uuid, EventObject.id).where(
                    EventObject.uuid.in_(uuids[start : start + 500])
                )
            ).all()  # type: ignore[arg-type]
        )
    return found
