"""The rows of one event version: the event row, its attributes, objects, reports and
sightings, built from the merged state a chunk at a time and written with Core bulk
statements (no ORM object per attribute)."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Table, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import tlp
from hub.db import bulk_insert
from hub.intel import moments
from hub.intel.outcomes import UuidClash
from hub.intel.snapshots import (
    dumps,
    sg_members,
)
from hub.models import (
    Attribute,
    Event,
    EventObject,
    EventReport,
    Partner,
)
from hub.models.base import utcnow


def drop_never_shared(event: dict[str, Any]) -> None:
    """What the hub never passes on is not kept either (DESIGN.md §3, "What leaves the hub"):
    proposals (ShadowAttribute) and a creator e-mail the submitter wrote itself."""
    event.pop("ShadowAttribute", None)
    event.pop("event_creator_email", None)
    for attr in all_attributes(event):
        if "ShadowAttribute" in attr:
            del attr["ShadowAttribute"]


def all_attributes(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from event.get("Attribute") or []
    for obj in event.get("Object") or []:
        yield from obj.get("Attribute") or []


# Publication is not among the event's own fields that every recipient sees change: a
# recipient that sees nothing of a change still holds the published copy (Event.publications).
_NOT_META = frozenset(
    {
        "Attribute",
        "Object",
        "EventReport",
        "Sighting",
        "ShadowAttribute",
        "timestamp",
        "published",
        "publish_timestamp",
    }
)


def meta_bytes(event: dict[str, Any]) -> bytes:
    """The event's own fields (title, tags, dates, addressing), without its elements or its
    publication: a change here is seen by everyone who sees the event."""
    return orjson.dumps(
        {k: v for k, v in event.items() if k not in _NOT_META}, option=orjson.OPT_SORT_KEYS
    )


def count_elements(event: dict[str, Any]) -> int:
    return len(event.get("Attribute", [])) + sum(
        1 + len(o.get("Attribute", [])) for o in event.get("Object", [])
    )


def labels_json(labels: tlp.EventLabels) -> dict[str, Any]:
    def v(label: tlp.Tlp | None) -> str | None:
        return label.value if label else None

    return {
        "event": v(labels.event),
        "objects": {k: v(x) for k, x in labels.objects.items()},
        "attributes": {k: v(x) for k, x in labels.attributes.items()},
        "reports": {k: v(x) for k, x in labels.reports.items()},
        "chr": labels.chr,
    }


def write_version(
    session: Session,
    *,
    existing: Event | None,
    event: dict[str, Any],
    labels: tlp.EventLabels,
    source: Partner,
    digest: str,
    meta_timestamp: int,
    changed: set[str] | None,
    publications: str = "[]",
    withdrawn_ts: int = 0,
) -> Event:
    """Replace the event's rows with ``event`` (the whole, merged state).

    Rows are built and inserted a chunk at a time, so memory does not grow with a second
    copy of every attribute. ``changed`` names the elements this version added or replaced
    (None: all of them, a new event): they get this version's timestamp as ``changed_ts``,
    the others keep theirs. (A new event submitted over REST has its rows made before the
    unit of work instead: ``hub.intel.drafts``.)
    """
    before = _previous(session, existing)
    stamp = _stamper(before, int(event["timestamp"]), changed)
    values = {
        **event_values(
            event,
            labels,
            stamp,
            digest=digest,
            meta_timestamp=meta_timestamp,
            publications=publications,
            withdrawn_ts=withdrawn_ts,
        ),
        "source_partner_id": source.id,
        "changed_at": utcnow(),
    }
    if existing is None:
        row = Event(uuid=event["uuid"], version=1, **values)
        session.add(row)
        session.flush()
    else:
        row = existing
        for key, value in values.items():
            setattr(row, key, value)
        row.version = existing.version + 1
        session.execute(delete(Attribute).where(Attribute.event_id == row.id))
        session.execute(delete(EventObject).where(EventObject.event_id == row.id))
        session.flush()
    moments.changed(session, row)
    number_reports(session, row.id, event.get("EventReport") or [])
    connection = session.connection()
    # An element keeps its row id from version to version (the numeric ids MISP clients are
    # handed derive from it, hub.sharing.ids): rows of known elements are written with their
    # ids, new ones get fresh ids, in two bulk statements each.
    ids = {uuid: row_id for uuid, (row_id, _ts) in before.items()}

    def objects(known: bool) -> Iterator[dict[str, Any]]:
        for o in event["Object"]:
            if (o["uuid"] in ids) is known:
                made = object_row(o, rank_of(labels.objects[o["uuid"]]), row.id, stamp(o["uuid"]))
                yield {"id": ids[o["uuid"]], **made} if known else made

    for known in (True, False):
        _insert_chunked(connection, EventObject.__table__, objects(known))
        rows = attribute_rows(event, labels, row.id, stamp, ids=ids, known=known)
        insert_attributes(connection, rows)
    return row


def event_values(
    event: dict[str, Any],
    labels: tlp.EventLabels,
    stamp: Callable[[str], int],
    *,
    digest: str,
    meta_timestamp: int,
    publications: str,
    withdrawn_ts: int,
) -> dict[str, Any]:
    """The ``events`` row of a version, but for its source and ``changed_at`` (no database
    work: a new event's is made before its unit of work begins)."""
    assert labels.event is not None
    live = [a for a in event["Attribute"] if not a.get("deleted")]
    # min_rank: the lowest label among live elements that go wherever the event goes. An
    # element with its own sharing group or "hub only" distribution does not count (nor does
    # an object holding one): an event whose only content is such elements is not listed to
    # the community, not even its title (DESIGN §3). Fail closed for sharing-group members:
    # they can still fetch the event, they just do not see it in listings.
    ranks = [rank_of(labels.attributes[a["uuid"]]) for a in live if _goes_with_event(a)]
    ranks += [
        rank_of(labels.objects[o["uuid"]])
        for o in event["Object"]
        if not o.get("deleted")
        and _goes_with_event(o)
        and all(_goes_with_event(a) for a in o["Attribute"] if not a.get("deleted"))
    ]
    ranks += [
        rank_of(labels.reports[r["uuid"]])
        for r in event.get("EventReport", [])
        if not r.get("deleted") and _goes_with_event(r) and r.get("uuid") in labels.reports
    ]
    attribute_count = len(live) + sum(
        1 for o in event["Object"] for a in o["Attribute"] if not a.get("deleted")
    )
    profile, narrowed = _spread(event, labels, stamp)
    doc = {k: v for k, v in event.items() if k not in _STRIP_FROM_DOC}
    return {
        "info": event["info"],
        "date": event.get("date"),
        "published": event["published"],
        "timestamp": int(event["timestamp"]),
        "publish_timestamp": int(event.get("publish_timestamp") or 0),
        "distribution": int(event["distribution"]),
        "sg_members": sg_members(event),
        "orgc_uuid": event["Orgc"]["uuid"],
        "orgc_name": event["Orgc"].get("name") or "",
        "tlp_rank": labels.event.rank,
        "min_rank": min(ranks) if ranks else None,
        "profile": profile,
        "narrowed": narrowed,
        "meta_timestamp": meta_timestamp,
        "withdrawn_ts": withdrawn_ts,
        "publications": publications,
        "chr": labels.chr,
        # Local tags never leave the hub (MISP strips them on sync): not even as a filter.
        "tags": dumps(
            sorted({t["name"] for t in event.get("Tag", []) if not t.get("local")})
        ).decode(),
        "attribute_count": attribute_count,
        "doc": dumps(doc),
        "content_hash": digest,
    }


def number_reports(session: Session, event_id: int, reports: list[dict[str, Any]]) -> None:
    """A row for each event report new to the event (``EventReport``: its number)."""
    uuids = {str(r["uuid"]) for r in reports if isinstance(r, dict) and r.get("uuid")}
    if not uuids:
        return
    known = set(session.scalars(select(EventReport.uuid).where(EventReport.event_id == event_id)))
    fresh = sorted(uuids - known)
    if not fresh:
        return
    if session.scalar(select(EventReport.id).where(EventReport.uuid.in_(fresh)).limit(1)):
        raise UuidClash("Event.EventReport")  # another event's report: named nowhere
    session.execute(insert(EventReport), [{"event_id": event_id, "uuid": u} for u in fresh])


def _previous(session: Session, existing: Event | None) -> dict[str, tuple[int, int]]:
    """The stored element rows of an event, before they are replaced: uuid → (row id,
    ``changed_ts``) of its attributes and objects."""
    before: dict[str, tuple[int, int]] = {}
    if existing is None:
        return before
    for table in (Attribute, EventObject):
        for uuid, row_id, changed_ts in session.execute(
            select(table.uuid, table.id, table.changed_ts).where(table.event_id == existing.id)
        ):
            before[uuid] = (row_id, changed_ts)
    return before


def _stamper(
    before: dict[str, tuple[int, int]], timestamp: int, changed: set[str] | None
) -> Callable[[str], int]:
    """``changed_ts`` per element uuid: this version's timestamp for what it changed, the
    stored one for the rest (read before the rows are replaced)."""
    if not before or changed is None:
        return lambda _uuid: timestamp

    def stamp(uuid: str) -> int:
        if uuid in changed:
            return timestamp
        found = before.get(uuid)
        return found[1] if found is not None else timestamp

    return stamp


def _goes_with_event(element: dict[str, Any]) -> bool:
    """Inherits (5) or widens the event's addressing: no sharing group, not "hub only"."""
    return str(element.get("distribution", "5")) in ("1", "2", "3", "5")


def _spread(
    event: dict[str, Any], labels: tlp.EventLabels, stamp: Callable[[str], int]
) -> tuple[str, bool]:
    """The event's profile and whether it is narrowed (``Event.profile``): its live elements
    counted by the label they go out with (an object's attributes by the object's label,
    the highest of its live attributes; a report by the event's), and whether any of them
    is addressed more narrowly than the event (its own sharing group, "hub only", or, in an
    event for all communities, a narrower community)."""
    event_rank = rank_of(labels.event)
    event_dist = str(event.get("distribution"))
    counts, elements, stamps = [0] * 5, [0] * 5, [0] * 5
    narrowed = False

    def narrower(element: dict[str, Any]) -> bool:
        dist = str(element.get("distribution", "5"))
        return dist in ("0", "4") or (event_dist == "3" and dist in ("1", "2"))

    def add(rank: int, element: dict[str, Any], attributes: int) -> None:
        elements[rank] += 1
        counts[rank] += attributes
        stamps[rank] = max(stamps[rank], stamp(str(element.get("uuid"))))

    for attr in event["Attribute"]:
        if not attr.get("deleted"):
            add(max(event_rank, rank_of(labels.attributes[attr["uuid"]])), attr, 1)
            narrowed = narrowed or narrower(attr)
    for obj in event["Object"]:
        if obj.get("deleted"):
            continue
        live = [a for a in obj["Attribute"] if not a.get("deleted")]
        ranks = [rank_of(labels.attributes[a["uuid"]]) for a in live]
        rank = (
            max([event_rank, *ranks])
            if ranks
            else max(event_rank, rank_of(labels.objects[obj["uuid"]]))
        )
        add(rank, obj, len(live))
        for attr in live:
            stamps[rank] = max(stamps[rank], stamp(attr["uuid"]))
            narrowed = narrowed or narrower(attr)
        narrowed = narrowed or narrower(obj)
    for report in event.get("EventReport") or []:
        if not report.get("deleted") and report.get("uuid") in labels.reports:
            # Reports have no rows: their own timestamp stands for their change.
            elements[event_rank] += 1
            stamps[event_rank] = max(stamps[event_rank], int_or_zero(report.get("timestamp")))
            narrowed = narrowed or narrower(report)
    return dumps({"n": counts, "e": elements, "t": stamps}).decode(), narrowed


def int_or_zero(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def attribute_rows(
    event: dict[str, Any],
    labels: tlp.EventLabels,
    event_id: int,
    stamp: Callable[[str], int] | None = None,
    *,
    ids: dict[str, int] | None = None,
    known: bool = False,
) -> Iterator[dict[str, Any]]:
    """The ``attributes`` rows of a validated, labelled event (made lazily, chunk by chunk);
    ``stamp`` gives each its ``changed_ts`` (default: the event's timestamp). With ``ids``
    (the row ids of the elements stored before): only the rows of the attributes named there
    with their ids (``known``), or only the others."""
    if stamp is None:
        timestamp = int(event["timestamp"])

        def stamp(_uuid: str) -> int:
            return timestamp

    if ids is not None:
        pairs = itertools.chain(
            ((a, None) for a in event["Attribute"]),
            ((a, o["uuid"]) for o in event["Object"] for a in o["Attribute"]),
        )
        return (
            {"id": ids[a["uuid"]], **row} if known else row
            for a, object_uuid in pairs
            if (a["uuid"] in ids) is known
            for row in (
                _attr_row(
                    a,
                    rank_of(labels.attributes[a["uuid"]]),
                    object_uuid,
                    event_id,
                    stamp(a["uuid"]),
                ),
            )
        )
    return itertools.chain(
        (
            _attr_row(a, rank_of(labels.attributes[a["uuid"]]), None, event_id, stamp(a["uuid"]))
            for a in event["Attribute"]
        ),
        (
            _attr_row(
                a, rank_of(labels.attributes[a["uuid"]]), o["uuid"], event_id, stamp(a["uuid"])
            )
            for o in event["Object"]
            for a in o["Attribute"]
        ),
    )


def insert_attributes(connection: Connection, rows: Iterator[dict[str, Any]]) -> None:
    """The bulk-insert stage of ingest (COPY on PostgreSQL; goal I2 times exactly this)."""
    _insert_chunked(connection, Attribute.__table__, rows)


def _insert_chunked(connection: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> None:
    with uuid_clash_named(table):
        bulk_insert(connection, table, rows)


@contextmanager
def uuid_clash_named(table: Table) -> Iterator[None]:
    """The event's own rows were just removed (or it is new), so a clash on a unique uuid
    means the uuid belongs to another event (MISP refuses this too: "duplicate UUID"). Which
    event is not said: the submitter may not know it."""
    try:
        yield
    except (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError):
        raise UuidClash(
            "Event.Attribute" if table is Attribute.__table__ else "Event.Object"
        ) from None


def object_row(obj: dict[str, Any], rank: int, event_id: int, changed_ts: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "uuid": obj["uuid"],
        "name": obj["name"],
        "distribution": int(obj["distribution"]),
        "sg_members": sg_members(obj),
        "timestamp": int(obj["timestamp"]),
        "changed_ts": changed_ts,
        "deleted": bool(obj.get("deleted", False)),
        "tlp_rank": rank,
        "doc": dumps({k: v for k, v in obj.items() if k != "Attribute"}),
    }


def _attr_row(
    attr: dict[str, Any], rank: int, object_uuid: str | None, event_id: int, changed_ts: int
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "uuid": attr["uuid"],
        "object_uuid": object_uuid,
        "type": attr["type"],
        "category": attr["category"],
        "value": attr["value"],
        "value_key": attr["value"][:200],
        "to_ids": attr["to_ids"],
        "distribution": int(attr["distribution"]),
        "sg_members": sg_members(attr),
        "timestamp": int(attr["timestamp"]),
        "changed_ts": changed_ts,
        "deleted": bool(attr.get("deleted", False)),
        "tlp_rank": rank,
        "doc": dumps(_stored_attribute(attr)),
    }


def _stored_attribute(attr: dict[str, Any]) -> dict[str, Any]:
    """The attribute as stored: sightings and correlations live elsewhere (most have none,
    so most are stored without a copy)."""
    if "Sighting" not in attr and "RelatedAttribute" not in attr:
        return attr
    return {k: v for k, v in attr.items() if k not in ("Sighting", "RelatedAttribute")}


_STRIP_FROM_DOC = ("Attribute", "Object", "Sighting", "ShadowAttribute", "RelatedAttribute")


def rank_of(label: tlp.Tlp | None) -> int:
    if label is None:  # cannot happen for stored events: quarantine comes first
        raise ValueError("an unreadable label reached the store")
    return label.rank
