"""The element rows of events, and what one recipient receives of one event decided from
them (``release_rows``, the same rules as ``tlp.filter_misp_event``; module doc of
``hub.sharing.view``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.models import Attribute, ElementWithdrawal, EventObject
from hub.sharing.gate import INHERIT, Gate, own_addressing
from hub.sharing.records import addressing_of


@dataclass(slots=True)
class Elements:
    """The stored element rows of one event that decisions need."""

    attributes: list[Any] = field(default_factory=list)  # ATTRIBUTE_COLUMNS rows
    objects: list[Any] = field(default_factory=list)  # OBJECT_COLUMNS rows
    reports: list[dict[str, Any]] = field(default_factory=list)  # EventReport dicts


ATTRIBUTE_COLUMNS = (
    Attribute.event_id,
    Attribute.id,
    Attribute.uuid,
    Attribute.object_uuid,
    Attribute.type,
    Attribute.tlp_rank,
    Attribute.distribution,
    Attribute.sg_members,
    Attribute.deleted,
    Attribute.changed_ts,
)
OBJECT_COLUMNS = (
    EventObject.event_id,
    EventObject.uuid,
    EventObject.tlp_rank,
    EventObject.distribution,
    EventObject.sg_members,
    EventObject.deleted,
    EventObject.changed_ts,
)


def load_elements(session: Session, rows: Sequence[Any]) -> dict[int, Elements]:
    """The element rows of the given events (one or two statements for up to 500); event
    reports come from the event's document (``doc`` must be among the row's columns or the
    row an ORM ``Event``)."""
    out: dict[int, Elements] = {row.id: Elements() for row in rows}
    if not out:
        return out
    ids = sorted(out)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        in_objects = False
        for attr in session.execute(
            select(*ATTRIBUTE_COLUMNS).where(Attribute.event_id.in_(chunk)).order_by(Attribute.id)
        ):
            out[attr.event_id].attributes.append(attr)
            in_objects = in_objects or attr.object_uuid is not None
        if not in_objects:
            continue  # an object without attributes is no content (MISP: "empty event")
        for obj in session.execute(
            select(*OBJECT_COLUMNS).where(EventObject.event_id.in_(chunk)).order_by(EventObject.id)
        ):
            out[obj.event_id].objects.append(obj)
    for row in rows:
        doc = getattr(row, "doc", None)
        if doc:
            reports = orjson.loads(doc).get("EventReport") or []
            out[row.id].reports = [r for r in reports if isinstance(r, dict)]
    return out


def received_withdrawn(
    session: Session, event_ids: Iterable[int], org_uuid: str
) -> dict[int, set[str]]:
    """Per event, the withdrawn elements ``org_uuid`` had received: only they reach it as
    deletions (DESIGN.md §3); for anyone else a withdrawn element never existed."""
    ids = sorted(set(event_ids))
    out: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(ids), 500):
        for event_id, uuid in session.execute(
            select(ElementWithdrawal.event_id, ElementWithdrawal.element_uuid).where(
                ElementWithdrawal.event_id.in_(ids[start : start + 500]),
                ElementWithdrawal.recipient_uuid == org_uuid,
            )
        ):
            out[event_id].add(uuid)
    return out


@dataclass(slots=True)
class RowRelease:
    """What one recipient receives of one event, decided from its rows."""

    attributes: dict[str, int]  # attribute uuid → the rank it goes out with
    objects: set[str]
    reports: set[str]
    withheld: list[tuple[str, str]]  # (element uuid, reason) of live elements not released
    timestamp: int  # the event's timestamp as this recipient sees it (module doc)
    count: int  # live attributes released (standalone and in released objects)
    live: list[Any]  # the released live attribute rows

    @property
    def empty(self) -> bool:
        return not (self.attributes or self.objects or self.reports)


def report_addressing(report: dict[str, Any], parent: tlp.Addressing) -> tlp.Addressing:
    """An event report's addressing (from its MISP dict): its parent's, narrowed by its own
    distribution and sharing group; an unreadable distribution reaches no one outside the hub."""
    try:
        dist = int(report.get("distribution", INHERIT))
    except (TypeError, ValueError):
        return tlp.Addressing.hub_only()
    if dist == INHERIT:
        return parent
    members = None
    if dist == 4:
        group = report.get("SharingGroup") or {}
        found = {
            str(((entry or {}).get("Organisation") or {}).get("uuid"))
            for entry in group.get("SharingGroupOrg") or []
            if ((entry or {}).get("Organisation") or {}).get("uuid")
        }
        owner = (group.get("Organisation") or {}).get("uuid")
        if owner:
            found.add(str(owner))
        members = found
    return parent.narrow(tlp.Addressing.from_misp(dist, members))


def release_rows(
    gate: Gate,
    row: Any,
    elements: Elements,
    *,
    withdrawn: set[str] | frozenset[str] = frozenset(),
) -> RowRelease | None:
    """Decide every element of one event for ``gate``'s recipient, from its rows (the same
    rules as ``tlp.filter_misp_event``). None when the event itself is refused.

    ``withdrawn`` names the deleted elements the recipient had received: they count (as the
    deletions they are) towards what it sees; other deleted elements do not exist for it.
    """
    if not gate.event(row).allowed:
        return None
    tally = _Tally(gate, row, withdrawn)
    by_object: dict[str, list[Any]] = defaultdict(list)
    for attr in elements.attributes:
        if attr.object_uuid is not None:
            by_object[attr.object_uuid].append(attr)
        else:
            tally.attribute(attr)
    for obj in elements.objects:
        tally.object(obj, by_object.get(obj.uuid, ()))
    for report in elements.reports:
        tally.report(report)
    if row.orgc_uuid == gate.org_uuid:
        tally.stamps.append(row.withdrawn_ts or 0)
    return RowRelease(
        tally.released,
        tally.objects,
        tally.reports,
        tally.withheld,
        max(tally.stamps),
        len(tally.live_rows),
        tally.live_rows,
    )


class _Tally:
    """What one recipient receives of one event, gathered element by element
    (``release_rows``): each element is decided with its effective label and its addressing
    narrowed by the event's; ``stamps`` collects the changes it sees (module doc of
    ``hub.sharing.view``)."""

    def __init__(self, gate: Gate, row: Any, withdrawn: set[str] | frozenset[str]) -> None:
        self.gate = gate
        self.source = row.orgc_uuid
        self.e_rank = row.tlp_rank
        self.e_addr = addressing_of(row.distribution, row.sg_members)
        self.withdrawn = withdrawn
        self.released: dict[str, int] = {}
        self.objects: set[str] = set()
        self.reports: set[str] = set()
        self.withheld: list[tuple[str, str]] = []
        self.stamps: list[int] = [row.meta_timestamp or 0]
        self.live_rows: list[Any] = []

    def attribute(self, attr: Any) -> None:
        """A standalone attribute (not in an object)."""
        if attr.deleted and attr.uuid not in self.withdrawn:
            return
        rank = max(attr.tlp_rank, self.e_rank)
        d = self.gate.decide(
            rank, own_addressing(self.e_addr, attr.distribution, attr.sg_members), self.source
        )
        if d.allowed:
            self.released[attr.uuid] = rank
            self.stamps.append(attr.changed_ts)  # a change, or the withdrawal of what it had
            if not attr.deleted:
                self.live_rows.append(attr)
        elif not attr.deleted:
            self.withheld.append((attr.uuid, d.reason.value))

    def object(self, obj: Any, attributes: Iterable[Any]) -> None:
        """A MISP object with its attribute rows: it goes or stays whole, under its highest
        label, and only if every attribute in it may go where it goes."""
        withdrawn = self.withdrawn
        if obj.deleted and obj.uuid not in withdrawn:
            return
        members = [
            a
            for a in attributes
            if not (a.deleted or obj.deleted) or a.uuid in withdrawn or obj.uuid in withdrawn
        ]
        live = [a for a in members if not (a.deleted or obj.deleted)]
        o_rank = (
            max([self.e_rank, *(a.tlp_rank for a in members)])
            if members
            else max(obj.tlp_rank, self.e_rank)
        )
        d = self._object_decision(obj, members, o_rank)
        if not d.allowed:
            if not obj.deleted:
                self.withheld.append((obj.uuid, d.reason.value))
                self.withheld.extend((a.uuid, tlp.Reason.PARENT_REMOVED.value) for a in live)
            return
        self.objects.add(obj.uuid)
        for a in members:
            self.released[a.uuid] = o_rank
        self.stamps.append(obj.changed_ts)
        self.stamps.extend(a.changed_ts for a in members)
        self.live_rows.extend(live)

    def _object_decision(self, obj: Any, members: list[Any], o_rank: int) -> tlp.Decision:
        """The object's decision: its own addressing, then each member's narrowed by it (the
        first member refused refuses the object)."""
        o_addr = own_addressing(self.e_addr, obj.distribution, obj.sg_members)
        d = self.gate.decide(o_rank, o_addr, self.source)
        if not d.allowed:
            return d
        for a in members:
            if a.distribution != INHERIT:
                inner = self.gate.decide(
                    o_rank, own_addressing(o_addr, a.distribution, a.sg_members), self.source
                )
                if not inner.allowed:
                    return inner
        return d

    def report(self, report: dict[str, Any]) -> None:
        """An event report (from the event's document), under the event's label."""
        uuid = str(report.get("uuid") or "")
        deleted = bool(report.get("deleted"))
        if not uuid or (deleted and uuid not in self.withdrawn):
            return
        d = self.gate.decide(self.e_rank, report_addressing(report, self.e_addr), self.source)
        if d.allowed:
            self.reports.add(uuid)
            try:
                self.stamps.append(int(report.get("timestamp") or 0))
            except (TypeError, ValueError):
                pass
        elif not deleted:
            self.withheld.append((uuid, d.reason.value))
