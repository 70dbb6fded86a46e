"""Pages of attributes, computed over what the recipient receives (the paging loop and its
guarantees: ``hub.sharing.paging``, ``hub.sharing.pages``).

An attribute is decided with its effective label and its addressing narrowed by its event's
and, in a MISP object, by its object's: an object goes or stays whole (DESIGN.md §3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.intel.exercise_marks import EXERCISE_TAG_PREFIX
from hub.intel.snapshots import group_id
from hub.models import Attribute, EventObject
from hub.sharing.paging import Fetch, Withheld, doubling, fill, record_element_page
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import addressing_of, is_tlp_tag, label_of, obligation
from hub.sharing.view import PRODUCER_PREFIX, Gate, own_addressing, received_withdrawn
from tlp.misp_read import without_producers

_Released = tuple[Any, Any, dict[str, Any]]


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

    def judge(rows: Sequence[Any]) -> Iterator[_Released | Withheld | None]:
        objects = objects_of(session, [a for a, _e in rows])
        deleted_events = {e.id for a, e in rows if a.deleted and e.orgc_uuid != gate.org_uuid}
        received = (
            received_withdrawn(session, deleted_events, gate.org_uuid)
            if include_deleted and deleted_events
            else {}
        )
        for attr, event in rows:
            yield _judge_attribute(gate, attr, event, objects, received, include_deleted, accept)

    filled = fill(fetch, position, judge, limit=limit, skip=skip, next_chunk=doubling)
    delivered, withheld = filled.delivered, filled.withheld
    more = limit is not None and len(delivered) > limit
    if limit is not None:
        delivered = delivered[:limit]
    duty = obligation([label_of(rank_of(doc)) for _a, _e, doc in delivered])
    if not record_page or (not delivered and not withheld):
        return AttributePage(delivered, more, duty, None, withheld)
    seq = record_element_page(
        session,
        recipient,
        gate=gate,
        policy=policy,
        kind="attributes",
        delivered=delivered,
        withheld=withheld,
    )
    return AttributePage(delivered, more, duty, seq, withheld)


def _judge_attribute(
    gate: Gate,
    attr: Any,
    event: Any,
    objects: dict[str, _Placement],
    received: dict[int, set[str]],
    include_deleted: bool,
    accept: Callable[[Any, Any, dict[str, Any]], bool] | None,
) -> _Released | Withheld | None:
    """One candidate attribute for the page: released and matching the query (as it goes
    out), withheld (and why), or None: not there for the recipient, or not matching."""
    if attr.deleted and not (
        include_deleted
        and (event.orgc_uuid == gate.org_uuid or attr.uuid in received.get(event.id, ()))
    ):
        return None  # withdrawn before this recipient had it: it never existed for it
    rank, reason = _verdict(gate, attr, event, objects)
    if rank is None:
        return Withheld(attr.uuid, reason)
    hide = bool(event.chr) and event.orgc_uuid != gate.org_uuid
    doc = shape_attribute(attr.doc, rank, event_uuid=event.uuid, hide_creator=hide)
    if doc.pop("purged", False) and event.orgc_uuid == gate.org_uuid:
        return None  # deleted hard by its creator: gone for the creator
    exercise = getattr(event, "exercise_id", None)
    if exercise is not None:  # marked on the attribute too: attribute answers show no event
        mark = {"name": f'{EXERCISE_TAG_PREFIX}"{exercise}"', "local": False}
        doc["Tag"] = [mark, *(doc.get("Tag") or [])]  # the TLP tag stays last (``rank_of``)
    if accept is not None and not accept(attr, event, doc):
        return None
    return (attr, event, doc)


def rank_of(doc: dict[str, Any]) -> int:
    """The rank of the TLP label an attribute goes out with (its last tag)."""
    return tlp.parse_label(doc["Tag"][-1]["name"]).rank
