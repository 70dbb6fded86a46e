"""Ingest: every accepted change becomes rows, a version and an audit entry, in one transaction.

The hot path works on dicts and Core bulk statements (no ORM object per attribute), in
chunks, with Python's cyclic GC paused for the batch (it dominates bulk work on 10^5-object
payloads; reference: performance-anchors §2.3). An event whose markings cannot be read is
held in quarantine instead of stored.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import math
import sqlite3
import time
import uuid as uuid_mod
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson
import psycopg
from sqlalchemy import Connection, Table, delete, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.errors import BadRequest, Forbidden, InvalidField
from hub.intel.merge import Changes, merge_event
from hub.intel.validation import normalise_event
from hub.lineage import service as lineage
from hub.models import (
    Attribute,
    Event,
    EventObject,
    EventVersion,
    Partner,
    QuarantineItem,
    Sighting,
)
from hub.models.base import utcnow

_STRIP_FROM_DOC = ("Attribute", "Object", "Sighting", "ShadowAttribute", "RelatedAttribute")


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


@contextmanager
def gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def parse_body(body: bytes) -> Any:
    """Parse a submitted JSON body; BadRequest naming the problem if it is not JSON.

    msgspec builds the Python objects straight from the bytes; orjson's parser first builds
    a document of its own, which costs ~1.6x more peak memory on a 25 MB event (goal I3).
    The cyclic GC is paused while it runs: parsing creates ~10^6 objects for a 10^5-attribute
    event and no cycles, and GC passes over the growing heap made it ~3x slower (measured).
    """
    try:
        with gc_paused():
            return msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        where = _out_of_range(body) if "out of range" in str(err) else None
        if where is not None:
            raise InvalidField(f"{where}: the number is out of range", field=where) from None
        raise BadRequest(f"request body is not valid JSON: {err}") from None


def _out_of_range(body: bytes) -> str | None:
    """Where a number too large for a float (``1e309``) is, for the 422 naming it; msgspec
    refuses it without saying where. Only on that error path."""
    import json

    try:
        document = json.loads(body)  # makes it ``inf``
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "body"
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def pack(value: Any) -> bytes:
    return zlib.compress(orjson.dumps(value), 1)


def unpack(blob: bytes) -> Any:
    # msgspec: several times faster than orjson here for 10^5-attribute snapshots (goal S1).
    return msgspec.json.decode(zlib.decompress(blob))


def _sg_members(element: dict[str, Any]) -> str | None:
    if str(element.get("distribution")) != "4":
        return None
    group = element.get("SharingGroup") or {}
    members = set()
    for entry in group.get("SharingGroupOrg") or []:
        org = (entry or {}).get("Organisation") or {}
        if org.get("uuid"):
            members.add(str(org["uuid"]))
    owner = group.get("Organisation") or {}
    if owner.get("uuid"):
        members.add(str(owner["uuid"]))
    return dumps(sorted(members)).decode()


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
) -> list[Outcome]:
    """Ingest MISP events (raw dicts) submitted by ``source``; all or nothing.

    Every event is validated before anything is written, so one bad event in a batch
    writes none of them. ``keep_orgc`` keeps the creator organisation given in the event
    (pulls from upstream); otherwise ``source`` becomes the creator, as for submissions.
    ``conversion`` says how the input was converted to MISP (for the lineage record).
    """
    now = int(time.time())
    events = [_unwrap(payload, index) for index, payload in enumerate(payloads)]
    lock_event_uuids(session, (e.get("uuid") for e in events if e.get("uuid")))
    with gc_paused():
        plan: list[tuple[str, Any]] = []
        for index, event in enumerate(events):
            existing = _existing(session, event)
            if existing is not None and _not_newer(existing, event):
                plan.append(("unchanged", existing))
                continue
            try:
                normalised = normalise_event(event, now=now)
            except InvalidField as err:
                if len(payloads) > 1 and err.field:
                    err.field = f"{index}.{err.field}"
                    err.detail = f"event {index}: {err.detail}"
                raise
            if not keep_orgc:
                normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
            elif not isinstance(normalised.get("Orgc"), dict) or not normalised["Orgc"].get("uuid"):
                normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
            plan.append(("apply", (existing, normalised)))
        outcomes = []
        for kind, item in plan:
            if kind == "unchanged":
                outcomes.append(
                    Outcome(
                        item.uuid, "unchanged", item.version, "not newer than the stored version"
                    )
                )
            else:
                existing, normalised = item
                outcomes.append(
                    _apply(
                        session,
                        existing=existing,
                        incoming=normalised,
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
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
    original: bytes | None,
    conversion: lineage.Conversion | None,
) -> Outcome:
    if existing is not None and existing.source_partner_id != source.id:
        raise Forbidden(
            f"event {existing.uuid} belongs to another organisation; only its source may change it"
        )
    current = current_state(session, existing) if existing is not None else None
    if current is not None:
        merged, changes = merge_event(current, incoming)
    else:
        merged, changes = incoming, Changes(new=_count(incoming))
    labels = tlp.label_misp_event(merged, policy=policy, source_org_uuid=source.uuid)
    if labels.problems:
        return _quarantine(
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
        session, existing=existing, event=merged, labels=labels, source=source, digest=digest
    )
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
    audit.append(
        session,
        [
            audit.Record(
                action="ingest",
                actor=actor,
                object_ref=f"event:{event_row.uuid}",
                request_id=audit.current_request_id(),
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
    from hub.taxii.rendering import render_event_version  # hub.taxii builds on hub.intel

    render_event_version(session, event=event_row, state=merged, labels=labels)
    if event_row.published:  # partners' MISPs get each new published version promptly
        from hub.connections.service import push_soon  # hub.connections builds on hub.intel

        push_soon(session)
    return Outcome(event_row.uuid, "stored" if existing is None else "updated", version)


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
) -> Event:
    """Replace the event's rows with ``event`` (the whole, merged state).

    Rows are built and inserted a chunk at a time, so memory does not grow with a second
    copy of every attribute.
    """
    assert labels.event is not None
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
    doc = {k: v for k, v in event.items() if k not in _STRIP_FROM_DOC}
    values = {
        "info": event["info"],
        "date": event.get("date"),
        "published": event["published"],
        "timestamp": int(event["timestamp"]),
        "publish_timestamp": int(event.get("publish_timestamp") or 0),
        "distribution": int(event["distribution"]),
        "sg_members": _sg_members(event),
        "orgc_uuid": event["Orgc"]["uuid"],
        "orgc_name": event["Orgc"].get("name") or "",
        "source_partner_id": source.id,
        "tlp_rank": labels.event.rank,
        "min_rank": min(ranks) if ranks else None,
        "chr": labels.chr,
        "tags": dumps(sorted({t["name"] for t in event.get("Tag", [])})).decode(),
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
    connection = session.connection()
    objects = (_object_row(o, _rank(labels.objects[o["uuid"]]), row.id) for o in event["Object"])
    _insert_chunked(connection, EventObject.__table__, objects)
    insert_attributes(connection, attribute_rows(event, labels, row.id))
    _write_sightings(session, event, row.id)
    return row


def _goes_with_event(element: dict[str, Any]) -> bool:
    """Inherits (5) or widens the event's addressing: no sharing group, not "hub only"."""
    return str(element.get("distribution", "5")) in ("1", "2", "3", "5")


def attribute_rows(
    event: dict[str, Any], labels: tlp.EventLabels, event_id: int
) -> Iterator[dict[str, Any]]:
    """The ``attributes`` rows of a validated, labelled event (made lazily, chunk by chunk)."""
    return itertools.chain(
        (
            _attr_row(a, _rank(labels.attributes[a["uuid"]]), None, event_id)
            for a in event["Attribute"]
        ),
        (
            _attr_row(a, _rank(labels.attributes[a["uuid"]]), o["uuid"], event_id)
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
    except (IntegrityError, psycopg.IntegrityError, sqlite3.IntegrityError) as err:
        # The event's own rows were just removed, so a clash on a unique uuid means the
        # uuid belongs to another event (MISP refuses this too: "duplicate UUID").
        raise InvalidField(
            f"an element uuid of this event already belongs to another event "
            f"({_clash_detail(err)})",
            field="Event.Attribute" if table is Attribute.__table__ else "Event.Object",
        ) from None


def _object_row(obj: dict[str, Any], rank: int, event_id: int) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "uuid": obj["uuid"],
        "name": obj["name"],
        "distribution": int(obj["distribution"]),
        "sg_members": _sg_members(obj),
        "timestamp": int(obj["timestamp"]),
        "deleted": bool(obj.get("deleted", False)),
        "tlp_rank": rank,
        "doc": dumps({k: v for k, v in obj.items() if k != "Attribute"}),
    }


def _clash_detail(err: Exception) -> str:
    orig = getattr(err, "orig", err)
    detail = getattr(getattr(orig, "diag", None), "message_detail", None)
    return str(detail or orig).strip().splitlines()[0]


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
    attr: dict[str, Any], rank: int, object_uuid: str | None, event_id: int
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
        "sg_members": _sg_members(attr),
        "timestamp": int(attr["timestamp"]),
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


def _write_sightings(session: Session, event: dict[str, Any], event_id: int) -> None:
    rows = []
    attrs = list(event["Attribute"]) + [a for o in event["Object"] for a in o["Attribute"]]
    for attr in attrs:
        for s in attr.get("Sighting") or []:
            if not isinstance(s, dict):
                continue
            org = s.get("Organisation") or {}
            rows.append(
                {
                    "uuid": str(s.get("uuid") or uuid_mod.uuid4()),
                    "event_id": event_id,
                    "attribute_uuid": attr["uuid"],
                    "org_uuid": org.get("uuid"),
                    "type": int(s.get("type") or 0),
                    "date_sighting": int(s.get("date_sighting") or 0),
                    "doc": dumps(s),
                }
            )
    if not rows:
        return
    known = set(
        session.scalars(select(Sighting.uuid).where(Sighting.uuid.in_([r["uuid"] for r in rows])))
    )
    fresh = [r for r in rows if r["uuid"] not in known]
    if fresh:
        session.execute(insert(Sighting), fresh)


def live_state(event: dict[str, Any]) -> dict[str, Any]:
    """The event without its soft-deleted attributes and objects (a shallow copy)."""
    out = dict(event)
    out["Attribute"] = [a for a in event.get("Attribute") or [] if not a.get("deleted")]
    out["Object"] = [
        {**o, "Attribute": [a for a in o.get("Attribute") or [] if not a.get("deleted")]}
        for o in event.get("Object") or []
        if not o.get("deleted")
    ]
    return out


def current_state(session: Session, event: Event) -> dict[str, Any]:
    """The event's whole current state, as stored with its latest version."""
    blob = session.scalar(
        select(EventVersion.snapshot).where(
            EventVersion.event_id == event.id, EventVersion.version == event.version
        )
    )
    assert blob is not None, f"event {event.uuid} has no version {event.version}"
    return unpack(blob)["event"]  # type: ignore[no-any-return]


def _quarantine(
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
                request_id=audit.current_request_id(),
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
