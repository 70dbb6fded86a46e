"""The released view: which elements of which events one recipient may receive over a channel.

Every channel answers from this view, never from stored data (DESIGN.md §3, "What leaves the
hub"): listings, searches, filters, counts, timestamps, tags and pages are computed over what
``tlp.decide`` releases to the recipient. SQL may narrow the candidates (``tlp.audience_for``
turned into a pre-filter), but only to a superset: every candidate is decided again here.

Two ways to the same answer:

- whole events go through ``tlp.filter_misp_event`` (``hub.sharing.events``);
- listings and searches decide stored rows (an event row, its object and attribute rows),
  with the same rules: an element is decided with its effective label and its addressing
  narrowed by its parents'; a MISP object goes or stays whole, every attribute in it carrying
  the object's label; an event with nothing left is not listed (its creator still sees its
  own event while it has no live element at all, as MISP shows an event being built).

An event whose live elements all go where the event goes (``Event.narrowed`` false) is
decided from its row: ``Event.profile`` counts its elements by the label they go out with.
Any other event is decided element by element, from its rows.

What a recipient sees of an event's activity moves only with what it receives: its
``timestamp`` is the latest of the event's own fields' change (``meta_timestamp``), of the
changes (``changed_ts``: the event's timestamp in the version that added or replaced them)
of the live elements it receives and of the withdrawals of elements it had received (the
creator: of every withdrawal, ``withdrawn_ts``). Its copy is published when a publication
came at or after that timestamp (``publication``): a change it cannot see leaves its copy as
published as it was.
"""

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
from hub.sharing.recipients import Recipient
from hub.sharing.records import addressing_of, label_of
from tlp.misp_read import PRODUCER_PREFIX

_INHERIT = 5


class Gate:
    """``tlp.decide`` for one recipient over one channel, each distinct question asked once
    (a page has few distinct labels and addressings)."""

    __slots__ = ("_cache", "_org", "_recipient", "write_answer", "channel", "policy")

    def __init__(
        self,
        to: Recipient | tlp.Recipient,
        channel: tlp.Channel | str,
        policy: tlp.Policy,
        *,
        write_answer: bool = False,
    ) -> None:
        """``to``: a recipient, or (for a constituent reached through a partner) the
        ``tlp.Recipient`` itself. ``write_answer``: this is the answer to the caller's own
        write, recorded as such (``"answer": "write"``) and decided like any other delivery
        over the channel: the writer's own RED comes back over ``/misp`` as a stub, since
        RED never travels in MISP sync (DESIGN.md §3)."""
        self._recipient = to.tlp if isinstance(to, Recipient) else to
        self._org = self._recipient.org_uuid
        self.channel = tlp.Channel(channel)
        self.policy = policy
        self.write_answer = write_answer
        self._cache: dict[tuple[Any, ...], tlp.Decision] = {}

    @property
    def org_uuid(self) -> str:
        return self._org

    def decide(self, rank: int, addressing: tlp.Addressing, source: str) -> tlp.Decision:
        key = (rank, addressing, source == self._org)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tlp.decide(
                label=label_of(rank),
                recipient=self._recipient,
                channel=self.channel,
                addressing=addressing,
                source_org_uuid=source,
                policy=self.policy,
            )
        return found

    def event(self, row: Any) -> tlp.Decision:
        """The decision on an event itself (its exercise, label and addressing), from its
        row. The exercise rule comes first: the row must carry ``exercise_id`` (a row read
        without it fails loudly rather than passing an exercise item as real traffic)."""
        if not tlp.in_scope(row.exercise_id, self._recipient):
            return tlp.out_of_scope(self._recipient, self.channel, self.policy)
        return self.decide(
            row.tlp_rank, addressing_of(row.distribution, row.sg_members), row.orgc_uuid
        )

    def profile(self, row: Any) -> Profiled | None:
        """What the recipient receives of a non-narrowed event, from its row (None: the
        event is narrowed or has no profile, decide it from its rows)."""
        if row.narrowed or not row.profile or not tlp.in_scope(row.exercise_id, self._recipient):
            return None
        profile = orjson.loads(row.profile)
        addressing = addressing_of(row.distribution, row.sg_members)
        count = elements = 0
        stamps = [row.meta_timestamp or 0]
        whole = True
        for rank in range(5):
            if not profile["e"][rank]:
                continue
            if self.decide(max(rank, row.tlp_rank), addressing, row.orgc_uuid).allowed:
                count += profile["n"][rank]
                elements += profile["e"][rank]
                stamps.append(profile["t"][rank])
            else:
                whole = False
        if row.orgc_uuid == self._org:
            stamps.append(row.withdrawn_ts or 0)
        return Profiled(count, max(stamps), elements == 0, whole)


@dataclass(frozen=True, slots=True)
class Profiled:
    """What a recipient receives of an event, told by its profile."""

    count: int  # live attributes
    timestamp: int
    empty: bool
    whole: bool  # every live element


def own_addressing(
    parent: tlp.Addressing, distribution: int, sg_members: str | None
) -> tlp.Addressing:
    """An element's addressing: its parent's, narrowed by its own distribution/sharing group."""
    if distribution == _INHERIT:
        return parent
    return parent.narrow(addressing_of(distribution, sg_members))


# --- element rows ---------------------------------------------------------------------------


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
    try:
        dist = int(report.get("distribution", _INHERIT))
    except (TypeError, ValueError):
        return tlp.Addressing.hub_only()
    if dist == _INHERIT:
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
    source = row.orgc_uuid
    e_rank = row.tlp_rank
    e_addr = addressing_of(row.distribution, row.sg_members)
    released: dict[str, int] = {}
    objects: set[str] = set()
    reports: set[str] = set()
    withheld: list[tuple[str, str]] = []
    stamps: list[int] = [row.meta_timestamp or 0]
    live_rows: list[Any] = []
    by_object: dict[str, list[Any]] = defaultdict(list)
    for attr in elements.attributes:
        if attr.object_uuid is not None:
            by_object[attr.object_uuid].append(attr)
            continue
        if attr.deleted and attr.uuid not in withdrawn:
            continue
        d = gate.decide(
            max(attr.tlp_rank, e_rank),
            own_addressing(e_addr, attr.distribution, attr.sg_members),
            source,
        )
        if d.allowed:
            released[attr.uuid] = max(attr.tlp_rank, e_rank)
            stamps.append(attr.changed_ts)  # a change, or the withdrawal of what it had
            if not attr.deleted:
                live_rows.append(attr)
        elif not attr.deleted:
            withheld.append((attr.uuid, d.reason.value))
    for obj in elements.objects:
        if obj.deleted and obj.uuid not in withdrawn:
            continue
        members = [
            a
            for a in by_object.get(obj.uuid, ())
            if not (a.deleted or obj.deleted) or a.uuid in withdrawn or obj.uuid in withdrawn
        ]
        live = [a for a in members if not (a.deleted or obj.deleted)]
        o_rank = (
            max([e_rank, *(a.tlp_rank for a in members)]) if members else max(obj.tlp_rank, e_rank)
        )
        o_addr = own_addressing(e_addr, obj.distribution, obj.sg_members)
        d = gate.decide(o_rank, o_addr, source)
        if d.allowed:
            for a in members:
                if a.distribution != _INHERIT:
                    inner = gate.decide(
                        o_rank, own_addressing(o_addr, a.distribution, a.sg_members), source
                    )
                    if not inner.allowed:
                        d = inner
                        break
        if not d.allowed:
            reason = d.reason.value
            if not obj.deleted:
                withheld.append((obj.uuid, reason))
                withheld.extend((a.uuid, tlp.Reason.PARENT_REMOVED.value) for a in live)
            continue
        objects.add(obj.uuid)
        for a in members:
            released[a.uuid] = o_rank
        stamps.append(obj.changed_ts)
        stamps.extend(a.changed_ts for a in members)
        live_rows.extend(live)
    for report in elements.reports:
        uuid = str(report.get("uuid") or "")
        deleted = bool(report.get("deleted"))
        if not uuid or (deleted and uuid not in withdrawn):
            continue
        d = gate.decide(e_rank, report_addressing(report, e_addr), source)
        if d.allowed:
            reports.add(uuid)
            try:
                stamps.append(int(report.get("timestamp") or 0))
            except (TypeError, ValueError):
                pass
        elif not deleted:
            withheld.append((uuid, d.reason.value))
    if source == gate.org_uuid:
        stamps.append(row.withdrawn_ts or 0)
    timestamp = max(stamps)
    return RowRelease(released, objects, reports, withheld, timestamp, len(live_rows), live_rows)


# --- what a listing says of an event --------------------------------------------------------


def released_tags(row: Any, *, creator: bool) -> list[str]:
    """The event's tag names as its recipients see them: never local tags (not stored), no
    TLP colour tag but the effective one, and for TLP:EX:CHR no producer tag except to the
    creator."""
    names = [
        n
        for n in orjson.loads(row.tags)
        if not _is_tlp_name(n) and not (row.chr and not creator and n.startswith(PRODUCER_PREFIX))
    ]
    names.append(label_of(row.tlp_rank).tag)
    return names


def _is_tlp_name(name: str) -> bool:
    low = name.lower()
    return low.startswith("tlp:") and not low.startswith("tlp:ex:")


@dataclass(slots=True)
class EventSummary:
    """One event as a listing shows it to one recipient."""

    row: Any
    timestamp: int
    attribute_count: int
    tags: list[str]
    creator_hidden: bool  # TLP:EX:CHR and the recipient is not the creator
    release: RowRelease | None  # None when told by the event's profile
    whole: bool  # every live element is released
    published: bool  # as this recipient's copy is (``publication``)
    publish_timestamp: int

    @property
    def uuid(self) -> str:
        return str(self.row.uuid)

    @property
    def label(self) -> tlp.Tlp:
        return label_of(self.row.tlp_rank)


def summarise(
    session: Session, gate: Gate, rows: Sequence[Any], *, rows_for_partial: bool = False
) -> list[tuple[Any, EventSummary | None, str | None]]:
    """Each row with its summary for ``gate``'s recipient, or None and the reason it is not
    listed. Events told by their profile cost nothing more; the others' element rows are
    read in a few statements for all of them. ``rows_for_partial``: also read the rows of
    events the recipient receives only in part (a filter on their attributes needs them)."""
    out: list[tuple[Any, EventSummary | None, str | None]] = []
    partial: list[Any] = []
    verdicts: dict[int, str | None] = {}
    profiled: dict[int, Profiled] = {}
    for row in rows:
        decision = gate.event(row)
        if not decision.allowed:
            verdicts[row.id] = decision.reason.value
            continue
        told = gate.profile(row)
        if told is None or (rows_for_partial and not told.whole):
            partial.append(row)
        else:
            profiled[row.id] = told
    # A withdrawal of what the recipient had moves its timestamp: such events' rows are read.
    maybe = [
        r.id for r in rows if r.id in profiled and r.withdrawn_ts and r.orgc_uuid != gate.org_uuid
    ]
    had = received_withdrawn(session, maybe, gate.org_uuid) if maybe else {}
    for row in rows:
        if had.get(row.id) and row.id in profiled:
            del profiled[row.id]
            partial.append(row)
    elements = load_elements(session, partial) if partial else {}
    deleted = [i for i, e in elements.items() if _has_deleted(e)]
    withdrawn = received_withdrawn(session, deleted, gate.org_uuid) if deleted else {}
    releases = {
        row.id: release_rows(gate, row, elements[row.id], withdrawn=withdrawn.get(row.id, set()))
        for row in partial
    }
    for row in rows:
        reason = verdicts.get(row.id)
        if reason is not None:
            out.append((row, None, reason))
            continue
        creator = row.orgc_uuid == gate.org_uuid
        release = releases.get(row.id)
        told = profiled.get(row.id)
        empty = told.empty if told is not None else (release is None or release.empty)
        if empty and not (creator and _bare(row, elements.get(row.id))):
            out.append((row, None, tlp.Reason.NOTHING_LEFT.value))
            continue
        if empty and deleted_by_source(row):
            out.append((row, None, tlp.Reason.NOTHING_LEFT.value))
            continue
        timestamp = told.timestamp if told is not None else release.timestamp  # type: ignore[union-attr]
        published, publish_timestamp = publication(row, timestamp, creator=creator)
        out.append(
            (
                row,
                EventSummary(
                    row=row,
                    timestamp=timestamp,
                    attribute_count=told.count if told is not None else release.count,  # type: ignore[union-attr]
                    tags=released_tags(row, creator=creator),
                    creator_hidden=bool(row.chr) and not creator,
                    release=release,
                    whole=told.whole if told is not None else not release.withheld,  # type: ignore[union-attr]
                    published=published,
                    publish_timestamp=publish_timestamp,
                ),
                None,
            )
        )
    return out


def publication(row: Any, timestamp: int, *, creator: bool) -> tuple[bool, int]:
    """Whether the recipient's copy of the event, last changed for it at ``timestamp``, is
    published, and when (``publish_timestamp``).

    The creator sees the event's own publication, as MISP shows it. Any other recipient's
    copy is the one published first at or after its last change (``Event.publications``,
    a version's timestamp is later than every change before it): a change it cannot see
    neither unpublishes its copy nor moves its publish time, and a publication of changes
    it cannot see publishes nothing new to it. With no publication since its last change
    its copy is unpublished, as MISP shows a changed event."""
    stored = int(row.publish_timestamp or 0)
    if creator:
        return bool(row.published), stored
    try:
        kept = [(int(ts), int(at)) for ts, at in orjson.loads(row.publications or "[]")]
    except (TypeError, ValueError):
        kept = []  # unreadable: fail closed, as a changed event
    covering = [at for ts, at in kept if ts >= timestamp]
    if covering:
        return True, covering[0]
    return bool(row.published), stored


def deleted_by_source(row: Any) -> bool:
    """Whether the event's source deleted it (``/misp`` ``events/delete``): its creator no
    longer sees it, even empty; those who had its elements still get their deletions."""
    doc = getattr(row, "doc", None)
    return bool(doc) and b'"deleted":true' in doc and bool(orjson.loads(doc).get("deleted"))


def _bare(row: Any, elements: Elements | None) -> bool:
    """The event has no live element at all (not: none the recipient may receive)."""
    if elements is not None:
        return not (
            any(not a.deleted for a in elements.attributes)
            or any(not r.get("deleted") for r in elements.reports)
        )
    if row.profile:
        return not any(orjson.loads(row.profile)["e"])
    return False


def _has_deleted(elements: Elements) -> bool:
    return any(a.deleted for a in elements.attributes) or any(o.deleted for o in elements.objects)
