"""Ingest: every accepted change becomes rows, a version and an audit entry, in one transaction.

The hot path works on dicts and Core bulk statements (no ORM object per attribute), in
chunks, with Python's cyclic GC paused for the batch (it dominates bulk work on 10^5-object
payloads; reference: performance-anchors §2.3). An event whose markings cannot be read is
held in quarantine instead of stored.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import time
import uuid as uuid_mod
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Table, delete, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Forbidden, InvalidField
from hub.intel.merge import Changes, merge_event
from hub.intel.projection import render_event_version
from hub.intel.snapshots import (
    current_state,
    dumps,
    gc_paused,
    pack,
    sg_members,
)
from hub.intel.validation import normalise_event
from hub.lineage import retraction
from hub.lineage import service as lineage
from hub.models import (
    Attribute,
    Event,
    EventObject,
    EventReport,
    EventVersion,
    Partner,
    QuarantineItem,
    Sighting,
)
from hub.models.base import utcnow

_STRIP_FROM_DOC = ("Attribute", "Object", "Sighting", "ShadowAttribute", "RelatedAttribute")


class ForeignEvent(Forbidden):
    """A submission names an event another organisation submitted: only its source may
    change it. The answer names nothing of that event (its owner, version, timestamp), and
    the edge records the attempt (``record_refusal``)."""

    def __init__(self, uuid: str) -> None:
        super().__init__(
            f"event {uuid} cannot be stored for your organisation: that uuid is not yours to use"
        )
        self.uuid = uuid


class UuidClash(InvalidField):
    """An element uuid of the submission is used by another event: refused, naming nothing."""

    def __init__(self, field: str) -> None:
        super().__init__(
            "an element uuid of this event is already in use elsewhere; give it a new uuid",
            field=field,
        )


def record_refusal(
    session: Session, err: ForeignEvent | UuidClash, *, actor: str, org_uuid: str, channel: str
) -> None:
    """Audit a refused submission that touched something the submitter may not know (call
    it after rolling back the submission's own writes, e.g. from a savepoint)."""
    audit.append(
        session,
        [
            audit.Record(
                action="submit.refused",
                actor=actor,
                object_ref=f"event:{err.uuid}" if isinstance(err, ForeignEvent) else None,
                recipient_uuid=org_uuid,
                channel=channel,
                decision="deny",
                request_id=current_request_id(),
                details={"reason": type(err).__name__, "detail": err.detail},
            )
        ],
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submitted item; the answer to a submission lists these."""

    uuid: str
    status: str  # stored | updated | unchanged | quarantined
    version: int | None = None
    detail: str | None = None
    quarantine_uuid: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uuid": self.uuid, "status": self.status}
        if self.version is not None:
            out["version"] = self.version
        if self.detail:
            out["detail"] = self.detail
        if self.quarantine_uuid:
            out["quarantine"] = self.quarantine_uuid
        return out


def _rank(label: tlp.Tlp | None) -> int:
    if label is None:  # cannot happen for stored events: quarantine comes first
        raise ValueError("an unreadable label reached the store")
    return label.rank


_EVENT_LOCKS = 0x45564E54  # "EVNT": the advisory-lock namespace of event uuids (PostgreSQL)


def lock_event_uuids(session: Session, uuids: Iterable[Any]) -> None:
    """Serialise concurrent submissions of the same event uuid until this unit commits, so
    the second sees the first's version (unchanged, not newer, an edit) instead of inserting
    the event twice. PostgreSQL: a transaction-scoped advisory lock per uuid, taken in one
    order (two batches cannot deadlock on them); SQLite: the unit's write lock already
    serialises writers. Take them before the unit's first audit entry."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = set()
    for raw in uuids:
        try:
            keys.add(int.from_bytes(uuid_mod.UUID(str(raw)).bytes[:4], "big", signed=True))
        except ValueError:
            continue  # validation names it
    for key in sorted(keys):
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": _EVENT_LOCKS, "key": key}
        )


def ingest_events(
    session: Session,
    *,
    payloads: Sequence[Any],
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
    keep_orgc: bool = False,
    original: bytes | None = None,
    conversion: lineage.Conversion | None = None,
    default_distribution: int = 1,
    exact_tags: Collection[str] = (),
) -> list[Outcome]:
    """Ingest MISP events (raw dicts) submitted by ``source``; all or nothing.

    Every event is validated before anything is written, so one bad event in a batch
    writes none of them. ``keep_orgc`` keeps the creator organisation given in the event
    (pulls from upstream); otherwise ``source`` becomes the creator, as for submissions.
    ``conversion`` says how the input was converted to MISP (for the lineage record).
    ``default_distribution`` is an event's when it has none (``HUB_DEFAULT_DISTRIBUTION``).
    ``exact_tags`` names the elements whose tag list the payload gives whole (an explicit
    tag removal, ``hub.intel.merge``); tags are otherwise only ever added.
    """
    now = int(time.time())
    events = [_unwrap(payload, index) for index, payload in enumerate(payloads)]
    lock_event_uuids(session, (e.get("uuid") for e in events if e.get("uuid")))
    with gc_paused():
        plan: list[tuple[str, Any]] = []
        for index, event in enumerate(events):
            existing = _existing(session, event)
            if existing is not None and existing.source_partner_id != source.id:
                raise ForeignEvent(existing.uuid)  # before anything tells about that event
            if existing is not None and _not_newer(existing, event):
                plan.append(("unchanged", existing))
                continue
            stamped: set[str] = set()
            try:
                normalised = normalise_event(
                    event, now=now, default_distribution=default_distribution, stamped=stamped
                )
            except InvalidField as err:
                if len(payloads) > 1 and err.field:
                    err.field = f"{index}.{err.field}"
                    err.detail = f"event {index}: {err.detail}"
                raise
            _drop_never_shared(normalised)
            if not keep_orgc:
                normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
            elif not isinstance(normalised.get("Orgc"), dict) or not normalised["Orgc"].get("uuid"):
                normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
            plan.append(("apply", (existing, normalised, stamped)))
        outcomes = []
        for kind, item in plan:
            if kind == "unchanged":
                outcomes.append(
                    Outcome(
                        item.uuid, "unchanged", item.version, "not newer than the stored version"
                    )
                )
            else:
                existing, normalised, stamped = item
                outcomes.append(
                    _apply(
                        session,
                        existing=existing,
                        incoming=normalised,
                        fresh=stamped,
                        exact_tags=frozenset(exact_tags),
                        now=now,
                        source=source,
                        actor=actor,
                        channel=channel,
                        policy=policy,
                        original=original,
                        conversion=conversion,
                    )
                )
        return outcomes


def _unwrap(payload: Any, index: int) -> dict[str, Any]:
    if isinstance(payload, dict) and isinstance(payload.get("Event"), dict):
        return payload["Event"]  # type: ignore[no-any-return]
    if isinstance(payload, dict):
        return payload
    raise InvalidField(f"item {index} is not a MISP event object", field=str(index))


def _existing(session: Session, event: dict[str, Any]) -> Event | None:
    raw = event.get("uuid")
    if not raw:
        return None
    try:
        uuid = str(uuid_mod.UUID(str(raw)))
    except ValueError:
        return None  # validation names it
    return session.scalar(select(Event).where(Event.uuid == uuid))


def _not_newer(existing: Event, event: dict[str, Any]) -> bool:
    stamp = event.get("timestamp")
    if stamp in (None, "", 0, "0"):
        return False  # an edit without a timestamp gets "now", as in MISP
    try:
        return int(stamp) <= existing.timestamp
    except (TypeError, ValueError):
        return False


def _apply(
    session: Session,
    *,
    existing: Event | None,
    incoming: dict[str, Any],
    fresh: set[str],
    exact_tags: frozenset[str],
    now: int,
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
    original: bytes | None,
    conversion: lineage.Conversion | None,
) -> Outcome:
    if existing is not None and existing.source_partner_id != source.id:
        raise ForeignEvent(existing.uuid)
    current = current_state(session, existing) if existing is not None else None
    sightings = _take_sightings(incoming)
    if current is not None:
        merged, changes = merge_event(current, incoming, fresh=fresh, exact_tags=exact_tags)
    else:
        merged, changes = incoming, Changes(new=_count(incoming))
    _publication(merged, incoming, was_published=bool(existing and existing.published), now=now)
    # What everyone who sees the event sees change: its own fields, and any withdrawal
    # (a deletion must reach those who had the element, and moves the timestamp for all).
    meta_timestamp = int(merged["timestamp"])
    if (
        existing is not None
        and current is not None
        and not changes.deleted
        and _meta(current) == _meta(merged)
    ):
        meta_timestamp = existing.meta_timestamp or existing.timestamp
    labels = tlp.label_misp_event(merged, policy=policy, source_org_uuid=source.uuid)
    if labels.problems:
        return quarantine(
            session,
            event=incoming,
            problems=labels.problems,
            source=source,
            actor=actor,
            channel=channel,
        )
    # One canonical serialisation of the whole event serves both the content hash and the
    # version snapshot (a 10^5-attribute event is ~25 MB of JSON: don't make it twice).
    canonical = orjson.dumps(merged, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(canonical).hexdigest()
    packer = zlib.compressobj(1)
    snapshot = b"".join(
        (
            packer.compress(b'{"event":'),
            packer.compress(canonical),
            packer.compress(b',"labels":'),
            packer.compress(orjson.dumps(_labels_json(labels))),
            packer.compress(b"}"),
            packer.flush(),
        )
    )
    del canonical
    event_row = _write(
        session,
        existing=existing,
        event=merged,
        labels=labels,
        source=source,
        digest=digest,
        meta_timestamp=meta_timestamp,
        changed=changes.changed if existing is not None else None,
    )
    _write_sightings(session, sightings, event_row.id, source)
    version = event_row.version
    session.execute(
        insert(EventVersion),
        [
            {
                "event_id": event_row.id,
                "version": version,
                "content_hash": event_row.content_hash,
                "source_partner_id": source.id,
                "actor": actor,
                "channel": channel,
                "event_timestamp": event_row.timestamp,
                "tlp_rank": event_row.tlp_rank,
                "changes": changes.as_dict(),
                "original": zlib.compress(original, 1) if original else None,
                "snapshot": snapshot,
            }
        ],
    )
    if changes.deleted:  # deletions reach exactly who had the elements, from now on
        retraction.remember_withdrawn(
            session, event_id=event_row.id, event_uuid=event_row.uuid, version=version, state=merged
        )
    audit.append(
        session,
        [
            audit.Record(
                action="ingest",
                actor=actor,
                object_ref=f"event:{event_row.uuid}",
                request_id=current_request_id(),
                channel=channel,
                details={
                    "version": version,
                    "content_hash": event_row.content_hash,
                    "source": source.uuid,
                    "tlp": labels.event.value if labels.event else None,
                    "changes": {k: v for k, v in changes.as_dict().items() if k != "deleted"},
                    "deleted": changes.deleted[:1000],
                },
            )
        ],
    )
    lineage.record_ingest(
        session,
        event_uuid=event_row.uuid,
        version=version,
        source_uuid=source.uuid,
        actor=actor,
        channel=channel,
        tlp_rank=event_row.tlp_rank,
        content_sha256=event_row.content_hash,
        conversion=conversion,
    )
    # STIX is rendered once per version, here, after the audit entry (its date_added must
    # follow commit order); a conversion failure is recorded there and never fails ingest.
    # (A new published version makes push connections due at the worker's next round:
    # ``hub.connections.jobs.schedule_due`` looks for it.)
    render_event_version(session, event=event_row, state=merged, labels=labels)
    return Outcome(event_row.uuid, "stored" if existing is None else "updated", version)


def _publication(
    merged: dict[str, Any], incoming: dict[str, Any], *, was_published: bool, now: int
) -> None:
    """Publishing stamps ``publish_timestamp`` (MISP's publish does), so searches by
    ``publish_timestamp`` or ``last`` find what was published through the hub: an event that
    becomes published without an explicit publish time of its own gets now."""
    if not merged.get("published"):
        return
    if _int_or_zero(incoming.get("publish_timestamp")):
        return  # the sender's own (a MISP pushing what it published)
    if not was_published or not _int_or_zero(merged.get("publish_timestamp")):
        merged["publish_timestamp"] = str(now)


def _drop_never_shared(event: dict[str, Any]) -> None:
    """What the hub never passes on is not kept either (DESIGN.md §3, "What leaves the hub"):
    proposals (ShadowAttribute) and a creator e-mail the submitter wrote itself."""
    event.pop("ShadowAttribute", None)
    event.pop("event_creator_email", None)
    for attr in _all_attributes(event):
        if "ShadowAttribute" in attr:
            del attr["ShadowAttribute"]


def _all_attributes(event: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from event.get("Attribute") or []
    for obj in event.get("Object") or []:
        yield from obj.get("Attribute") or []


_NOT_META = frozenset(
    {"Attribute", "Object", "EventReport", "Sighting", "ShadowAttribute", "timestamp"}
)


def _meta(event: dict[str, Any]) -> bytes:
    """The event's own fields (title, tags, dates, publication, addressing), without its
    elements: a change here is seen by everyone who sees the event."""
    return orjson.dumps(
        {k: v for k, v in event.items() if k not in _NOT_META}, option=orjson.OPT_SORT_KEYS
    )


def _count(event: dict[str, Any]) -> int:
    return len(event.get("Attribute", [])) + sum(
        1 + len(o.get("Attribute", [])) for o in event.get("Object", [])
    )


def _labels_json(labels: tlp.EventLabels) -> dict[str, Any]:
    def v(label: tlp.Tlp | None) -> str | None:
        return label.value if label else None

    return {
        "event": v(labels.event),
        "objects": {k: v(x) for k, x in labels.objects.items()},
        "attributes": {k: v(x) for k, x in labels.attributes.items()},
        "reports": {k: v(x) for k, x in labels.reports.items()},
        "chr": labels.chr,
    }


def _write(
    session: Session,
    *,
    existing: Event | None,
    event: dict[str, Any],
    labels: tlp.EventLabels,
    source: Partner,
    digest: str,
    meta_timestamp: int,
    changed: set[str] | None,
) -> Event:
    """Replace the event's rows with ``event`` (the whole, merged state).

    Rows are built and inserted a chunk at a time, so memory does not grow with a second
    copy of every attribute. ``changed`` names the elements this version added or replaced
    (None: all of them, a new event): they get this version's timestamp as ``changed_ts``,
    the others keep theirs.
    """
    assert labels.event is not None
    before = _previous(session, existing)
    stamp = _stamper(before, int(event["timestamp"]), changed)
    live = [a for a in event["Attribute"] if not a.get("deleted")]
    # min_rank: the lowest label among live elements that go wherever the event goes. An
    # element with its own sharing group or "hub only" distribution does not count (nor does
    # an object holding one): an event whose only content is such elements is not listed to
    # the community, not even its title (DESIGN §3). Fail closed for sharing-group members:
    # they can still fetch the event, they just do not see it in listings.
    ranks = [_rank(labels.attributes[a["uuid"]]) for a in live if _goes_with_event(a)]
    ranks += [
        _rank(labels.objects[o["uuid"]])
        for o in event["Object"]
        if not o.get("deleted")
        and _goes_with_event(o)
        and all(_goes_with_event(a) for a in o["Attribute"] if not a.get("deleted"))
    ]
    ranks += [
        _rank(labels.reports[r["uuid"]])
        for r in event.get("EventReport", [])
        if not r.get("deleted") and _goes_with_event(r) and r.get("uuid") in labels.reports
    ]
    attribute_count = len(live) + sum(
        1 for o in event["Object"] for a in o["Attribute"] if not a.get("deleted")
    )
    profile, narrowed = _spread(event, labels, stamp)
    doc = {k: v for k, v in event.items() if k not in _STRIP_FROM_DOC}
    values = {
        "info": event["info"],
        "date": event.get("date"),
        "published": event["published"],
        "timestamp": int(event["timestamp"]),
        "publish_timestamp": int(event.get("publish_timestamp") or 0),
        "distribution": int(event["distribution"]),
        "sg_members": sg_members(event),
        "orgc_uuid": event["Orgc"]["uuid"],
        "orgc_name": event["Orgc"].get("name") or "",
        "source_partner_id": source.id,
        "tlp_rank": labels.event.rank,
        "min_rank": min(ranks) if ranks else None,
        "profile": profile,
        "narrowed": narrowed,
        "meta_timestamp": meta_timestamp,
        "chr": labels.chr,
        # Local tags never leave the hub (MISP strips them on sync): not even as a filter.
        "tags": dumps(
            sorted({t["name"] for t in event.get("Tag", []) if not t.get("local")})
        ).decode(),
        "attribute_count": attribute_count,
        "doc": dumps(doc),
        "content_hash": digest,
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
    _number_reports(session, row.id, event.get("EventReport") or [])
    connection = session.connection()
    # An element keeps its row id from version to version (the numeric ids MISP clients are
    # handed derive from it, hub.sharing.ids): rows of known elements are written with their
    # ids, new ones get fresh ids, in two bulk statements each.
    ids = {uuid: row_id for uuid, (row_id, _ts) in before.items()}

    def objects(known: bool) -> Iterator[dict[str, Any]]:
        for o in event["Object"]:
            if (o["uuid"] in ids) is known:
                made = _object_row(o, _rank(labels.objects[o["uuid"]]), row.id, stamp(o["uuid"]))
                yield {"id": ids[o["uuid"]], **made} if known else made

    for known in (True, False):
        _insert_chunked(connection, EventObject.__table__, objects(known))
        rows = attribute_rows(event, labels, row.id, stamp, ids=ids, known=known)
        insert_attributes(connection, rows)
    return row


def _number_reports(session: Session, event_id: int, reports: list[dict[str, Any]]) -> None:
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
    event_rank = _rank(labels.event)
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
            add(max(event_rank, _rank(labels.attributes[attr["uuid"]])), attr, 1)
            narrowed = narrowed or narrower(attr)
    for obj in event["Object"]:
        if obj.get("deleted"):
            continue
        live = [a for a in obj["Attribute"] if not a.get("deleted")]
        ranks = [_rank(labels.attributes[a["uuid"]]) for a in live]
        rank = (
            max([event_rank, *ranks])
            if ranks
            else max(event_rank, _rank(labels.objects[obj["uuid"]]))
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
            stamps[event_rank] = max(stamps[event_rank], _int_or_zero(report.get("timestamp")))
            narrowed = narrowed or narrower(report)
    return dumps({"n": counts, "e": elements, "t": stamps}).decode(), narrowed


def _int_or_zero(value: Any) -> int:
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
                    _rank(labels.attributes[a["uuid"]]),
                    object_uuid,
                    event_id,
                    stamp(a["uuid"]),
                ),
            )
        )
    return itertools.chain(
        (
            _attr_row(a, _rank(labels.attributes[a["uuid"]]), None, event_id, stamp(a["uuid"]))
            for a in event["Attribute"]
        ),
        (
            _attr_row(a, _rank(labels.attributes[a["uuid"]]), o["uuid"], event_id, stamp(a["uuid"]))
            for o in event["Object"]
            for a in o["Attribute"]
        ),
    )


def insert_attributes(connection: Connection, rows: Iterator[dict[str, Any]]) -> None:
    """The bulk-insert stage of ingest (COPY on PostgreSQL; goal I2 times exactly this)."""
    _insert_chunked(connection, Attribute.__table__, rows)


def _insert_chunked(connection: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> None:
    try:
        bulk_insert(connection, table, rows)
    except (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError):
        # The event's own rows were just removed, so a clash on a unique uuid means the
        # uuid belongs to another event (MISP refuses this too: "duplicate UUID"). Which
        # event is not said: the submitter may not know it.
        raise UuidClash(
            "Event.Attribute" if table is Attribute.__table__ else "Event.Object"
        ) from None


def _object_row(obj: dict[str, Any], rank: int, event_id: int, changed_ts: int) -> dict[str, Any]:
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


def bulk_insert(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Insert many rows the fastest way each database offers: one COPY on PostgreSQL, one
    DBAPI executemany on SQLite, both fed lazily from ``rows`` — memory stays flat, and on
    PostgreSQL the server works through what was sent while the next rows are made (a COPY
    per 1,000 rows left it idle in between: ~0.5 s of 10^5, measured). Values must already
    be database-ready (booleans, ints, text, bytes and None only), and every row must have
    the same keys in the same order (rows made by one function)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    names = ", ".join(first)
    values = (tuple(r.values()) for r in itertools.chain((first,), rows))
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with driver.cursor().copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in values:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in first)
    driver.cursor().executemany(f"INSERT INTO {table.name} ({names}) VALUES ({marks})", values)  # type: ignore[union-attr]


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


def _take_sightings(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The sightings submitted with an event, taken out of it and checked: they live in
    their own table (the version snapshot does not carry them) and are released anonymised."""
    event.pop("Sighting", None)
    found = []
    for attr in _all_attributes(event):
        for i, s in enumerate(attr.pop("Sighting", None) or []):
            where = f"Attribute {attr['uuid']}: Sighting.{i}"
            if not isinstance(s, dict):
                raise InvalidField(f"{where} must be an object", field="Sighting")
            try:
                kind = int(s.get("type") or 0)
                when = int(s.get("date_sighting") or 0)
            except (TypeError, ValueError):
                raise InvalidField(
                    f"{where}: type and date_sighting must be numbers", field="Sighting"
                ) from None
            if kind not in (0, 1, 2) or not 0 <= when < 2**62:
                raise InvalidField(
                    f"{where}: type is 0, 1 or 2 and date_sighting an epoch", field="Sighting"
                )
            found.append(
                {
                    "uuid": _uuid_or_new(s.get("uuid")),
                    "attribute_uuid": attr["uuid"],
                    "type": kind,
                    "date_sighting": when,
                    "source": str(s.get("source") or "")[:255],
                }
            )
    return found


def _write_sightings(
    session: Session, sightings: list[dict[str, Any]], event_id: int, source: Partner
) -> None:
    """Store submitted sightings as the submitter's: a partner reports what it saw, never
    what another organisation saw (DESIGN.md §3: recorded as the submitting organisation)."""
    by = {"uuid": source.uuid, "name": source.name}
    rows = [
        {
            "uuid": s["uuid"],
            "event_id": event_id,
            "attribute_uuid": s["attribute_uuid"],
            "org_uuid": source.uuid,
            "type": s["type"],
            "date_sighting": s["date_sighting"],
            "doc": dumps(
                {
                    "source": s["source"],
                    "type": str(s["type"]),
                    "date_sighting": str(s["date_sighting"]),
                    "Organisation": by,
                }
            ),
        }
        for s in sightings
    ]
    if not rows:
        return
    known = set(
        session.scalars(select(Sighting.uuid).where(Sighting.uuid.in_([r["uuid"] for r in rows])))
    )
    fresh = [r for r in rows if r["uuid"] not in known]
    if fresh:
        session.execute(insert(Sighting), fresh)


def _uuid_or_new(value: Any) -> str:
    try:
        return str(uuid_mod.UUID(str(value))) if value else str(uuid_mod.uuid4())
    except ValueError:
        raise InvalidField(f"{value!r} is not a uuid", field="Sighting.uuid") from None


def quarantine(
    session: Session,
    *,
    event: dict[str, Any],
    problems: Sequence[tlp.Problem],
    source: Partner,
    actor: str,
    channel: str,
    kind: str = "misp",
) -> Outcome:
    item = QuarantineItem(
        uuid=str(uuid_mod.uuid4()),
        item_uuid=str(event.get("uuid") or event.get("id")),
        kind=kind,
        source_partner_id=source.id,
        actor=actor,
        channel=channel,
        problems=[
            {
                "element": p.element,
                "kind": p.kind,
                "field": p.field,
                "value": str(p.value)[:500],
                "reason": p.reason,
            }
            for p in problems
        ],
        payload=pack(event),
    )
    session.add(item)
    session.flush()
    audit.append(
        session,
        [
            audit.Record(
                action="quarantine",
                actor=actor,
                object_ref=f"{'event' if kind == 'misp' else 'bundle'}:{item.item_uuid}",
                request_id=current_request_id(),
                channel=channel,
                details={
                    "quarantine": item.uuid,
                    "source": source.uuid,
                    "problems": item.problems[:50],
                },
            )
        ],
    )
    reasons = "; ".join(f"{p.kind} {p.element}: {p.reason}" for p in problems[:3])
    return Outcome(item.item_uuid, "quarantined", None, reasons, item.uuid)


def relabel_misp(
    event: dict[str, Any], problems: Sequence[dict[str, Any]], label: str
) -> dict[str, Any]:
    """The held event with each unreadable tag replaced by the operator's ``tlp:<label>``."""
    tag = tlp.parse_label(label).tag
    bad: dict[str, set[str]] = {}
    for p in problems:
        bad.setdefault(str(p["element"]), set()).add(str(p["value"]))
    event = orjson.loads(orjson.dumps(event))

    def fix(element: dict[str, Any]) -> None:
        values = bad.get(str(element.get("uuid")))
        if values is None:
            return
        kept = [
            t
            for t in element.get("Tag") or []
            if (t.get("name") if isinstance(t, dict) else t) not in values
        ]
        element["Tag"] = [*kept, {"name": tag, "local": False}]

    fix(event)
    for attr in event.get("Attribute") or []:
        fix(attr)
    for obj in event.get("Object") or []:
        fix(obj)
        for attr in obj.get("Attribute") or []:
            fix(attr)
    for report in event.get("EventReport") or []:
        fix(report)
    return event


def relabel_stix(
    bundle: dict[str, Any], problems: Sequence[dict[str, Any]], label: str
) -> dict[str, Any]:
    """The held bundle with each unreadable marking ref replaced by the TLP 2.0 ``label`` id."""
    marking = tlp.parse_label(label).stix_id
    bad: dict[str, set[str]] = {}
    for p in problems:
        bad.setdefault(str(p["element"]), set()).add(str(p["value"]))
    bundle = orjson.loads(orjson.dumps(bundle))
    for obj in bundle.get("objects", []):
        values = bad.get(str(obj.get("id")))
        if values is None:
            continue
        refs = [r for r in obj.get("object_marking_refs") or [] if r not in values]
        obj["object_marking_refs"] = [*refs, marking]
        grans = [
            g for g in obj.get("granular_markings") or [] if g.get("marking_ref") not in values
        ]
        if grans:
            obj["granular_markings"] = grans
        else:
            obj.pop("granular_markings", None)
    return bundle
