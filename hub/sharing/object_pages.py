"""Pages of MISP objects, computed over what the recipient receives (the paging loop and its
guarantees: ``hub.sharing.paging``, ``hub.sharing.pages``): an object goes or stays whole,
under its highest label, each of its attributes carrying that label (DESIGN.md §3).
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
from hub.intel.snapshots import group_id
from hub.models import Attribute
from hub.sharing.attribute_pages import rank_of, shape_attribute
from hub.sharing.paging import Fetch, Withheld, doubling, fill, record_element_page
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import addressing_of, label_of, obligation
from hub.sharing.view import Gate, own_addressing, received_withdrawn

_Released = tuple[Any, Any, dict[str, Any]]


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
    the same rule as an attribute in it (``hub.sharing.attribute_pages``), from the object's
    own row."""
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

    def judge(rows: Sequence[Any]) -> Iterator[_Released | Withheld | None]:
        members = _object_members(session, [o.uuid for o, _e in rows])
        deleted_events = {e.id for _o, e in rows if e.orgc_uuid != gate.org_uuid}
        received = (
            received_withdrawn(session, deleted_events, gate.org_uuid)
            if include_deleted and deleted_events
            else {}
        )
        for obj, event in rows:
            shown = _Shown(
                include_deleted, event.orgc_uuid == gate.org_uuid, received.get(event.id, set())
            )
            out = _judge_object(gate, obj, event, members.get(obj.uuid, []), shown)
            if isinstance(out, Withheld) or out is None:
                yield out
            else:
                yield out if accept is None or accept(*out) else None

    filled = fill(fetch, position, judge, limit=limit, skip=skip, next_chunk=doubling)
    delivered, withheld = filled.delivered, filled.withheld
    more = limit is not None and len(delivered) > limit
    if limit is not None:
        delivered = delivered[:limit]
    ranks = [rank_of(a) for _o, _e, doc in delivered for a in doc["Attribute"][:1]]
    duty = obligation([label_of(r) for r in ranks])
    if not delivered and not withheld:
        return ObjectPage(delivered, more, duty, None, withheld)
    seq = record_element_page(
        session,
        recipient,
        gate=gate,
        policy=policy,
        kind="objects",
        delivered=delivered,
        withheld=withheld,
    )
    return ObjectPage(delivered, more, duty, seq, withheld)


@dataclass(slots=True, frozen=True)
class _Shown:
    """Whether a (possibly deleted) element of one event is there for the recipient:
    deleted ones only for the event's creator and for recipients that had received them,
    and only when asked for (``include_deleted``)."""

    include_deleted: bool
    creator: bool
    had: set[str]

    def __call__(self, uuid: str, deleted: bool) -> bool:
        return not deleted or (self.include_deleted and (self.creator or uuid in self.had))


def _judge_object(
    gate: Gate, obj: Any, event: Any, attrs: list[Any], shown: _Shown
) -> _Released | Withheld | None:
    """One candidate object as it goes out, whole with the attributes the recipient sees,
    or withheld (and why), or None: not there for the recipient."""
    if not shown(obj.uuid, obj.deleted):
        return None  # withdrawn before this recipient had it: it never existed for it
    live = [a for a in attrs if not a.deleted]
    rank, reason = _object_rank(gate, obj, event, live)
    if rank is None:
        return Withheld(obj.uuid, reason)
    hide = bool(event.chr) and not shown.creator
    out = orjson.loads(obj.doc)
    if out.pop("purged", False) and shown.creator:
        return None  # deleted hard by its creator: gone for the creator
    out["Attribute"] = [
        shaped
        for shaped in (
            shape_attribute(a.doc, rank, event_uuid=event.uuid, hide_creator=hide)
            for a in attrs
            if shown(a.uuid, a.deleted or obj.deleted)
        )
        if not (shaped.pop("purged", False) and shown.creator)
    ]
    _object_group(out, hide)
    return (obj, event, out)


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
