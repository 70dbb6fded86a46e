"""``/attributes/restSearch`` as MISP searches, over released data only: one audited page of
the attributes the caller receives that match (module doc of ``hub.misp_compat.search``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.intel import repository
from hub.misp_compat import shapes
from hub.misp_compat.elements import shape_attributes
from hub.misp_compat.filters import EventMatch, attribute_clauses, attribute_matcher, sql_filters
from hub.misp_compat.params import limit_page, since, terms, truthy
from hub.misp_compat.search import (
    EVENT_KEYS,
    Found,
    TagQuery,
    canonical_tag,
    deleted_mode,
    tag_names,
)
from hub.misp_compat.service import CHANNEL, Caller, row_ids
from hub.models import Attribute, Event
from hub.sharing.attribute_pages import release_attribute_page
from hub.sharing.view import EventSummary, Gate, released_tags, summarise

# Bounded work per request (#14), as for events (``hub.misp_compat.search``).
ATTRIBUTES_DEFAULT, ATTRIBUTES_MAX = 10_000, 100_000


def search_attributes(session: Session, caller: Caller, body: dict[str, Any]) -> Found:
    """Matching attributes the caller receives, one audited page."""
    stmt, event_body, mode = _attribute_candidates(caller, body)
    limit, page = limit_page(body, default=ATTRIBUTES_DEFAULT, maximum=ATTRIBUTES_MAX)
    match = attribute_matcher(body)
    event_match = EventMatch(event_body, caller)
    tags = TagQuery.of(body.get("tags", body.get("tag")))
    event_tags = TagQuery.of(body.get("event_tags"))
    with_event_tags = truthy(body.get("includeEventTags", False))
    gate = Gate(caller.recipient, CHANNEL, caller.policy)
    event_tag_names: dict[int, list[str]] = {}
    event_seen: dict[int, EventSummary | None] = {}

    def tags_of_event(event: Any) -> list[str]:
        found = event_tag_names.get(event.id)
        if found is None:
            creator = event.orgc_uuid == gate.org_uuid
            found = event_tag_names[event.id] = released_tags(event, creator=creator)
        return found

    def accept(attr: Any, event: Any, doc: dict[str, Any]) -> bool:
        if mode == "deleted" and not truthy(doc.get("deleted")):
            return False
        if match is not None and not match(doc):
            return False
        if event_match.on_event:
            if event.id not in event_seen:
                event_seen[event.id] = _seen(session, gate, event)
            seen = event_seen[event.id]
            if seen is None or not event_match(seen):
                return False
        if tags or event_tags:
            own = tag_names(tags_of_event(event))
            mine = tag_names(doc.get("Tag"))
            if event_tags.excludes(own) or not event_tags.holds(own):
                return False
            if tags.excludes(own | mine) or not tags.holds(own | mine):
                return False
        if with_event_tags:
            _with_event_tags(doc, tags_of_event(event))
        return True

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
        skip=(page - 1) * limit if limit is not None else 0,
        accept=accept,
        include_deleted=mode != "live",
    )
    items = shape_attributes(session, caller, result.items)
    if truthy(body.get("includeContext", False)):
        contexts = _contexts(session, caller, gate, [e for _a, e, _d in result.items])
        for item, (_a, event, _d) in zip(items, result.items, strict=True):
            item["Event"] = contexts[event.id]
    return Found(items, result.audit_seq, obligation=result.obligation)


def _attribute_candidates(caller: Caller, body: dict[str, Any]) -> tuple[Any, dict[str, Any], str]:
    """The SQL pre-filter of candidate (Attribute, Event) rows for an ``attributes/restSearch``
    body (a superset: each is decided and matched again), the body's event-level part and
    which deleted attributes it asks for (``deleted_mode``)."""
    aud = caller.audience()
    stmt = (
        select(Attribute, Event)
        .join(Event, Event.id == Attribute.event_id)
        .where(repository.readable(aud), repository.attribute_cap(aud), *attribute_clauses(body))
    )
    mode = deleted_mode(body.get("deleted", False))
    if mode == "live":
        stmt = stmt.where(Attribute.deleted.is_(False))
    uuids = terms(body.get("uuid"))
    if uuids.include:
        stmt = stmt.where(Attribute.uuid.in_([u.lower() for u in uuids.include]))
    ids = terms(body.get("id"))
    if ids.include:
        stmt = stmt.where(Attribute.id.in_(row_ids(caller, "attribute", ids.include)))
    event_body = {k: v for k, v in body.items() if k in EVENT_KEYS}
    if body.get("event_timestamp") not in (None, ""):
        event_body["timestamp"] = body["event_timestamp"]
    stmt = sql_filters(stmt, event_body, caller=caller)
    low, high = since(body.get("timestamp"), name="timestamp")
    if low is not None:
        stmt = stmt.where(Attribute.timestamp >= low)
    if high is not None:
        stmt = stmt.where(Attribute.timestamp <= high)
    return stmt, event_body, mode


def _seen(session: Session, gate: Gate, event: Any) -> EventSummary | None:
    """The event as the caller sees it in a listing (its timestamp, publication, tags)."""
    return summarise(session, gate, [event])[0][1]


def _with_event_tags(doc: dict[str, Any], event_tags: list[str]) -> None:
    """``includeEventTags``: the event's tags on the attribute, before its TLP label."""
    own = doc.get("Tag") or []
    label = [t for t in own if _is_label(t)]
    rest = [t for t in own if not _is_label(t)]
    have = tag_names(rest)
    extra = [
        {"name": n, "local": False, "inherited": 1}
        for n in event_tags
        if not _is_label({"name": n}) and canonical_tag(n) not in have
    ]
    doc["Tag"] = [*rest, *extra, *label]


def _is_label(tag: Any) -> bool:
    name = str(tag.get("name", "")) if isinstance(tag, dict) else str(tag)
    low = name.lower()
    return low.startswith("tlp:") and not low.startswith("tlp:ex:")


def _contexts(
    session: Session, caller: Caller, gate: Gate, events: Sequence[Any]
) -> dict[int, dict[str, Any]]:
    """``includeContext``: each attribute's event as the caller sees it in a listing (its
    metadata, timestamp and tags over what it receives; no creator for TLP:EX:CHR)."""
    unique = list({e.id: e for e in events}.values())
    out: dict[int, dict[str, Any]] = {}
    for row, summary, _reason in summarise(session, gate, unique):
        if summary is None:
            continue
        row_out = shapes.index_row(
            summary,
            event_id=caller.event_id(row.id),
            minimal=False,
            sighting_timestamp=0,
            chr_orgc={"uuid": "", "name": "(not disclosed: TLP:EX:CHR)"}
            if summary.creator_hidden
            else None,
        )
        row_out.pop("sighting_timestamp", None)
        out[row.id] = row_out
    return out
