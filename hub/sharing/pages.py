"""Pages of events and of attributes, computed over what the recipient receives.

A page is filled from candidates a SQL pre-filter found (a superset), in their order, keeping
only what the released view lets through and what matches the query there; it reads on until
the page is full and one more item proves there is a next page, or the candidates run out.
So pages, ``more``/``next`` and offsets never count a withheld item, and a cursor is only ever
made from a released one: the answer to a query is the same whether hidden data matching it
exists or not (DESIGN.md §3, "What leaves the hub"). One audit entry records each page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.intel.snapshots import group_id
from hub.models import Attribute, EventObject
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import addressing_of, is_tlp_tag, label_of, obligation, record
from hub.sharing.view import (
    PRODUCER_PREFIX,
    EventSummary,
    Gate,
    own_addressing,
    received_withdrawn,
    report_addressing,
    summarise,
)
from tlp.misp_read import without_producers

Fetch = Callable[[Any, int], Sequence[Any]]
_MAX_CHUNK = 1000


@dataclass(slots=True)
class EventPage:
    items: list[EventSummary]
    more: bool
    obligation: tlp.Obligation
    audit_seq: int | None
    withheld: list[tuple[str, str]] = field(default_factory=list)
    total: int | None = None  # every match, when asked for (``count_all``)


def release_event_page(
    session: Session,
    *,
    to: Recipient | Principal,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    fetch: Fetch,
    position: Callable[[Any], Any],
    limit: int | None,
    skip: int = 0,
    accept: Callable[[EventSummary], bool] | None = None,
    rows_for_partial: bool = False,
    count_all: bool = False,
    order: Callable[[EventSummary], Any] | None = None,
    descending: bool = False,
) -> EventPage:
    """A page of event summaries: ``fetch(after, n)`` gives the next ``n`` candidate rows
    after the position ``position(row)`` of the last one (``after`` None: from the start);
    ``accept`` applies the query's filters to a released summary; ``skip`` released matches
    are passed over first (offset paging); ``limit`` None takes everything;
    ``rows_for_partial``: ``accept`` needs the released attribute rows of events the
    recipient receives in part (``EventSummary.release``); ``count_all``: read on to count
    every match (MISP's ``X-Result-Count``), delivering only the page. ``order``: the page
    is ordered by what the recipient sees (its own timestamp of each event, not the stored
    one, which moves with changes it cannot see): every match is read, ordered by
    ``order`` (then row id; ``descending``) and the page cut from that."""
    offset, page_limit = skip, limit
    if order is not None:
        skip, limit = 0, None
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy)
    delivered: list[EventSummary] = []
    withheld: list[tuple[str, str]] = []
    matches = 0
    chunk = _MAX_CHUNK if limit is None else min(skip + limit + 1, _MAX_CHUNK)
    after = None
    while True:
        rows = fetch(after, chunk)
        full = False
        for row, summary, reason in summarise(
            session, gate, rows, rows_for_partial=rows_for_partial
        ):
            if limit is not None and len(delivered) > limit:
                if summary is not None and (accept is None or accept(summary)):
                    matches += 1
                continue
            if summary is None:
                withheld.append((row.uuid, reason or "refused"))
                continue
            if accept is not None and not accept(summary):
                continue
            matches += 1
            if skip:
                skip -= 1
                continue
            delivered.append(summary)
            if limit is not None and len(delivered) > limit and not count_all:
                full = True
                break
        if full or len(rows) < chunk:
            break
        after = position(rows[-1])
        chunk = _MAX_CHUNK
    if order is not None:
        delivered, more, matches = _reordered(delivered, order, descending, offset, page_limit)
    else:
        more = limit is not None and len(delivered) > limit
    if limit is not None:
        delivered = delivered[:limit]
    duty = obligation([s.label for s in delivered])
    total = matches if count_all else None
    if not delivered and not withheld:
        return EventPage([], False, duty, None, total=total)
    releases: list[list[Any]] = [
        [s.uuid, s.row.version, True, "listed", s.label.value, 0] for s in delivered
    ]
    releases += [[uuid, None, False, reason, None, 0] for uuid, reason in withheld]
    seq = record(
        session,
        recipient,
        action="release.page",
        channel=gate.channel,
        object_ref=None,
        decision="allow",
        details={"policy_version": policy.version, "releases": releases},
    )
    return EventPage(delivered, more, duty, seq, withheld, total)


def _reordered(
    matched: list[EventSummary],
    order: Callable[[EventSummary], Any],
    descending: bool,
    skip: int,
    limit: int | None,
) -> tuple[list[EventSummary], bool, int]:
    """Every match ordered by what the recipient sees, then cut to the page: (page, more,
    number of matches)."""
    ranked = sorted(matched, key=lambda s: (order(s), s.row.id), reverse=descending)
    if limit is None:
        return ranked[skip:], False, len(ranked)
    return ranked[skip : skip + limit], len(ranked) > skip + limit, len(ranked)


# --- attributes ------------------------------------------------------------------------------


@dataclass(slots=True)
class AttributePage:
    """Released attributes: (attribute row, event row, the attribute as it goes out)."""

    items: list[tuple[Any, Any, dict[str, Any]]]
    more: bool
    obligation: tlp.Obligation
    audit_seq: int | None
    withheld: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class _Placement:
    tlp_rank: int
    distribution: int
    sg_members: str | None
    deleted: bool
    members: list[Any] = field(default_factory=list)


def objects_of(session: Session, attrs: Sequence[Any]) -> dict[str, _Placement]:
    """The objects the given attributes belong to, with every live attribute of each."""
    uuids = sorted({a.object_uuid for a in attrs if a.object_uuid})
    placements: dict[str, _Placement] = {}
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        for row in session.execute(
            select(
                EventObject.uuid,
                EventObject.tlp_rank,
                EventObject.distribution,
                EventObject.sg_members,
                EventObject.deleted,
            ).where(EventObject.uuid.in_(chunk))
        ):
            placements[row.uuid] = _Placement(
                row.tlp_rank, row.distribution, row.sg_members, row.deleted
            )
        for member in session.execute(
            select(
                Attribute.uuid,
                Attribute.object_uuid,
                Attribute.tlp_rank,
                Attribute.distribution,
                Attribute.sg_members,
            ).where(Attribute.object_uuid.in_(chunk), Attribute.deleted.is_(False))
        ):
            if member.object_uuid in placements:
                placements[member.object_uuid].members.append(member)
    return placements


def _verdict(
    gate: Gate, attr: Any, event: Any, objects: dict[str, _Placement]
) -> tuple[int | None, str]:
    """(rank it goes out with, "") when the attribute may go, else (None, reason)."""
    decision = gate.event(event)
    if not decision.allowed:
        return None, decision.reason.value
    e_rank, source = event.tlp_rank, event.orgc_uuid
    e_addr = addressing_of(event.distribution, event.sg_members)
    if attr.object_uuid is None:
        rank = max(attr.tlp_rank, e_rank)
        d = gate.decide(rank, own_addressing(e_addr, attr.distribution, attr.sg_members), source)
        return (rank, "") if d.allowed else (None, d.reason.value)
    # A MISP object goes or stays whole, under its highest label (DESIGN §3).
    obj = objects.get(attr.object_uuid)
    if obj is None:
        return None, tlp.Reason.OBJECT_WHOLE.value
    members = obj.members or [attr]
    rank = max([e_rank, attr.tlp_rank, *(m.tlp_rank for m in members)])
    o_addr = own_addressing(e_addr, obj.distribution, obj.sg_members)
    d = gate.decide(rank, o_addr, source)
    if not d.allowed:
        return None, d.reason.value
    for member in members:
        if member.distribution != 5:
            inner = own_addressing(o_addr, member.distribution, member.sg_members)
            if not gate.decide(rank, inner, source).allowed:
                return None, tlp.Reason.OBJECT_WHOLE.value
    return rank, ""


def shape_attribute(
    doc: bytes, rank: int, *, event_uuid: str, hide_creator: bool
) -> dict[str, Any]:
    """A stored attribute as it goes out: its effective TLP tag (its object's, in an object)
    and no other, no local tag, no proposal, sighting or correlation, its sharing group as
    members see it."""
    out = orjson.loads(doc)
    tags = [
        t
        for t in out.get("Tag") or []
        if isinstance(t, dict)
        and not is_tlp_tag(t)
        and not t.get("local")
        and not (hide_creator and str(t.get("name", "")).startswith(PRODUCER_PREFIX))
    ]
    out["Tag"] = [*tags, {"name": label_of(rank).tag, "local": False}]
    if hide_creator:
        without_producers(out)
    for key in ("ShadowAttribute", "Sighting", "RelatedAttribute"):
        out.pop(key, None)
    group = out.pop("SharingGroup", None)
    if str(out.get("distribution")) == "4" and isinstance(group, dict):
        gid = group_id(group)
        out["sharing_group_id"] = gid
        out["SharingGroup"] = {"id": gid, "uuid": group.get("uuid"), "name": group.get("name")}
        if hide_creator:
            out["SharingGroup"] = {"id": gid, "uuid": group.get("uuid")}
    out["event_uuid"] = event_uuid
    return out


def release_attribute_page(
    session: Session,
    *,
    to: Recipient | Principal,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    fetch: Fetch,
    position: Callable[[Any], Any],
    limit: int | None,
    skip: int = 0,
    accept: Callable[[Any, Any, dict[str, Any]], bool] | None = None,
    include_deleted: bool = False,
    record_page: bool = True,
    write_answer: bool = False,
) -> AttributePage:
    """A page of attributes: ``fetch(after, n)`` gives candidate rows of (Attribute, Event)
    in order; each is decided with its effective label and addressing narrowed by its
    event's and object's; ``accept(attribute row, event row, attribute as it goes out)``
    applies the query to what goes out.
    Deleted attributes count only for the event's creator and for recipients that had
    received them (``include_deleted``). ``write_answer``: the answer to a write
    (recorded as such)."""
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy, write_answer=write_answer)
    delivered: list[tuple[Any, Any, dict[str, Any]]] = []
    withheld: list[tuple[str, str]] = []
    chunk = _MAX_CHUNK if limit is None else min(skip + limit + 1, _MAX_CHUNK)
    after = None
    while True:
        rows = fetch(after, chunk)
        objects = objects_of(session, [a for a, _e in rows])
        deleted_events = {e.id for a, e in rows if a.deleted and e.orgc_uuid != gate.org_uuid}
        received = (
            received_withdrawn(session, deleted_events, gate.org_uuid)
            if include_deleted and deleted_events
            else {}
        )
        full = False
        for attr, event in rows:
            if attr.deleted and not (
                include_deleted
                and (event.orgc_uuid == gate.org_uuid or attr.uuid in received.get(event.id, ()))
            ):
                continue  # withdrawn before this recipient had it: it never existed for it
            rank, reason = _verdict(gate, attr, event, objects)
            if rank is None:
                withheld.append((attr.uuid, reason))
                continue
            hide = bool(event.chr) and event.orgc_uuid != gate.org_uuid
            doc = shape_attribute(attr.doc, rank, event_uuid=event.uuid, hide_creator=hide)
            if doc.pop("purged", False) and event.orgc_uuid == gate.org_uuid:
                continue  # deleted hard by its creator: gone for the creator
            if accept is not None and not accept(attr, event, doc):
                continue
            if skip:
                skip -= 1
                continue
            delivered.append((attr, event, doc))
            if limit is not None and len(delivered) > limit:
                full = True
                break
        if full or len(rows) < chunk:
            break
        after = position(rows[-1])
        chunk = min(chunk * 2, _MAX_CHUNK)
    more = limit is not None and len(delivered) > limit
    if limit is not None:
        delivered = delivered[:limit]
    duty = obligation([label_of(_rank_of(doc)) for _a, _e, doc in delivered])
    if not record_page or (not delivered and not withheld):
        return AttributePage(delivered, more, duty, None, withheld)
    versions: dict[str, int] = {}
    for _a, event, _d in delivered:
        versions[event.uuid] = event.version
    seq = record(
        session,
        recipient,
        action="release.page",
        channel=gate.channel,
        object_ref=None,
        decision="allow",
        details={
            "policy_version": policy.version,
            **({"answer": "write"} if gate.write_answer else {}),
            "attributes": [doc["uuid"] for _a, _e, doc in delivered],
            "withheld": [list(w) for w in withheld[:5000]],
            "releases": [[u, v, True, "attributes", None, 0] for u, v in versions.items()],
        },
    )
    return AttributePage(delivered, more, duty, seq, withheld)


def _rank_of(doc: dict[str, Any]) -> int:
    return tlp.parse_label(doc["Tag"][-1]["name"]).rank


# --- objects ---------------------------------------------------------------------------------


@dataclass(slots=True)
class ObjectPage:
    """Released MISP objects: (object row, event row, the object as it goes out, with the
    attributes it releases)."""

    items: list[tuple[Any, Any, dict[str, Any]]]
    more: bool
    obligation: tlp.Obligation
    audit_seq: int | None
    withheld: list[tuple[str, str]] = field(default_factory=list)


def _object_rank(
    gate: Gate, obj: Any, event: Any, members: Sequence[Any]
) -> tuple[int | None, str]:
    """(the rank the object goes out with, "") when it may go whole, else (None, reason):
    the same rule as an attribute in it (``_verdict``), from the object's own row."""
    decision = gate.event(event)
    if not decision.allowed:
        return None, decision.reason.value
    e_rank, source = event.tlp_rank, event.orgc_uuid
    e_addr = addressing_of(event.distribution, event.sg_members)
    rank = max([e_rank, *(m.tlp_rank for m in members)]) if members else max(obj.tlp_rank, e_rank)
    o_addr = own_addressing(e_addr, obj.distribution, obj.sg_members)
    d = gate.decide(rank, o_addr, source)
    if not d.allowed:
        return None, d.reason.value
    for member in members:
        if member.distribution != 5:
            inner = own_addressing(o_addr, member.distribution, member.sg_members)
            if not gate.decide(rank, inner, source).allowed:
                return None, tlp.Reason.OBJECT_WHOLE.value
    return rank, ""


def release_object_page(
    session: Session,
    *,
    to: Recipient | Principal,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    fetch: Fetch,
    position: Callable[[Any], Any],
    limit: int | None,
    skip: int = 0,
    accept: Callable[[Any, Any, dict[str, Any]], bool] | None = None,
    include_deleted: bool = False,
    write_answer: bool = False,
) -> ObjectPage:
    """A page of MISP objects: ``fetch(after, n)`` gives candidate rows of (EventObject,
    Event) in order; each object goes or stays whole, under its highest label, each of its
    attributes carrying that label (DESIGN.md §3); ``accept(object row, event row, object as
    it goes out)`` applies the query to what goes out. Deleted objects and attributes count
    only for the event's creator and for recipients that had received them
    (``include_deleted``). One audit entry records the page. ``write_answer``: the
    answer to a write (recorded as such)."""
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy, write_answer=write_answer)
    delivered: list[tuple[Any, Any, dict[str, Any]]] = []
    withheld: list[tuple[str, str]] = []
    chunk = _MAX_CHUNK if limit is None else min(skip + limit + 1, _MAX_CHUNK)
    after = None
    while True:
        rows = fetch(after, chunk)
        members = _object_members(session, [o.uuid for o, _e in rows])
        deleted_events = {e.id for _o, e in rows if e.orgc_uuid != gate.org_uuid}
        received = (
            received_withdrawn(session, deleted_events, gate.org_uuid)
            if include_deleted and deleted_events
            else {}
        )
        full = False
        for obj, event in rows:
            creator = event.orgc_uuid == gate.org_uuid
            had = received.get(event.id, set())

            def shown(uuid: str, deleted: bool, _creator: bool = creator, _had: Any = had) -> bool:
                return not deleted or (include_deleted and (_creator or uuid in _had))

            if not shown(obj.uuid, obj.deleted):
                continue  # withdrawn before this recipient had it: it never existed for it
            attrs = members.get(obj.uuid, [])
            live = [a for a in attrs if not a.deleted]
            rank, reason = _object_rank(gate, obj, event, live)
            if rank is None:
                withheld.append((obj.uuid, reason))
                continue
            hide = bool(event.chr) and not creator
            out = orjson.loads(obj.doc)
            if out.pop("purged", False) and creator:
                continue  # deleted hard by its creator: gone for the creator
            out["Attribute"] = [
                shaped
                for shaped in (
                    shape_attribute(a.doc, rank, event_uuid=event.uuid, hide_creator=hide)
                    for a in attrs
                    if shown(a.uuid, a.deleted or obj.deleted)
                )
                if not (shaped.pop("purged", False) and creator)
            ]
            _object_group(out, hide)
            if accept is not None and not accept(obj, event, out):
                continue
            if skip:
                skip -= 1
                continue
            delivered.append((obj, event, out))
            if limit is not None and len(delivered) > limit:
                full = True
                break
        if full or len(rows) < chunk:
            break
        after = position(rows[-1])
        chunk = min(chunk * 2, _MAX_CHUNK)
    more = limit is not None and len(delivered) > limit
    if limit is not None:
        delivered = delivered[:limit]
    ranks = [_rank_of(a) for _o, _e, doc in delivered for a in doc["Attribute"][:1]]
    duty = obligation([label_of(r) for r in ranks])
    if not delivered and not withheld:
        return ObjectPage(delivered, more, duty, None, withheld)
    versions = {event.uuid: event.version for _o, event, _d in delivered}
    seq = record(
        session,
        recipient,
        action="release.page",
        channel=gate.channel,
        object_ref=None,
        decision="allow",
        details={
            "policy_version": policy.version,
            **({"answer": "write"} if gate.write_answer else {}),
            "objects": [doc["uuid"] for _o, _e, doc in delivered],
            "withheld": [list(w) for w in withheld[:5000]],
            "releases": [[u, v, True, "objects", None, 0] for u, v in versions.items()],
        },
    )
    return ObjectPage(delivered, more, duty, seq, withheld)


def _object_members(session: Session, uuids: Sequence[str]) -> dict[str, list[Any]]:
    """Every attribute row (deleted ones too) of the given objects, in id order."""
    out: dict[str, list[Any]] = {}
    keys = sorted(set(uuids))
    for start in range(0, len(keys), 500):
        for row in session.execute(
            select(
                Attribute.uuid,
                Attribute.object_uuid,
                Attribute.tlp_rank,
                Attribute.distribution,
                Attribute.sg_members,
                Attribute.deleted,
                Attribute.doc,
            )
            .where(Attribute.object_uuid.in_(keys[start : start + 500]))
            .order_by(Attribute.id)
        ):
            out.setdefault(row.object_uuid, []).append(row)
    return out


def _object_group(out: dict[str, Any], hide_creator: bool) -> None:
    group = out.pop("SharingGroup", None)
    if str(out.get("distribution")) == "4" and isinstance(group, dict):
        gid = group_id(group)
        out["sharing_group_id"] = gid
        out["SharingGroup"] = {"id": gid, "uuid": group.get("uuid")}
        if not hide_creator:
            out["SharingGroup"]["name"] = group.get("name")


# --- event reports ---------------------------------------------------------------------------


@dataclass(slots=True)
class ReportRelease:
    """The event reports of one event that one recipient receives, and their record."""

    reports: list[dict[str, Any]]
    obligation: tlp.Obligation
    audit_seq: int | None


def release_reports(
    session: Session,
    *,
    to: Recipient | Principal,
    event: Any,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    include_deleted: bool = False,
    uuids: frozenset[str] | None = None,
    write_answer: bool = False,
) -> ReportRelease:
    """The event's reports (all, or those named by ``uuids``) the recipient may receive:
    decided as ``release_rows`` decides them (the event's label, the report's addressing
    narrowed by the event's), recorded in one audit entry. ``event`` is its row (its
    document holds the reports). ``write_answer``: the answer to a write
    (recorded as such)."""
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy, write_answer=write_answer)
    decision = gate.event(event)
    doc = orjson.loads(event.doc)
    candidates = [
        r
        for r in doc.get("EventReport") or []
        if isinstance(r, dict) and (uuids is None or r.get("uuid") in uuids)
    ]
    if not candidates:
        return ReportRelease([], obligation([]), None)
    creator = event.orgc_uuid == gate.org_uuid
    had: set[str] = set()
    if include_deleted and not creator:
        had = received_withdrawn(session, [event.id], gate.org_uuid).get(event.id, set())
    out: list[dict[str, Any]] = []
    withheld: list[tuple[str, str]] = []
    e_addr = addressing_of(event.distribution, event.sg_members)
    for report in candidates:
        uuid = str(report.get("uuid") or "")
        if report.get("deleted") and not (include_deleted and (creator or uuid in had)):
            continue
        if not decision.allowed:
            withheld.append((uuid, decision.reason.value))
            continue
        d = gate.decide(event.tlp_rank, report_addressing(report, e_addr), event.orgc_uuid)
        if not d.allowed:
            withheld.append((uuid, d.reason.value))
            continue
        shaped = dict(report)
        if shaped.pop("purged", False) and creator:
            continue  # deleted hard by its creator: gone for the creator
        group = shaped.pop("SharingGroup", None)
        if str(shaped.get("distribution")) == "4" and isinstance(group, dict):
            shaped["sharing_group_id"] = group_id(group)
        else:
            shaped["sharing_group_id"] = "0"
        out.append(shaped)
    if not out and not withheld:
        return ReportRelease([], obligation([]), None)
    label = label_of(event.tlp_rank)
    seq = record(
        session,
        recipient,
        action="release" if out else "deny",
        channel=gate.channel,
        object_ref=f"event:{event.uuid}",
        decision="allow" if out else "deny",
        details={
            "policy_version": policy.version,
            **({"answer": "write"} if gate.write_answer else {}),
            "reports": [r["uuid"] for r in out],
            "withheld": [list(w) for w in withheld],
            "releases": [
                [event.uuid, event.version, bool(out), "reports", label.value if out else None, 0]
            ],
        },
    )
    return ReportRelease(out, obligation([label] if out else []), seq)
