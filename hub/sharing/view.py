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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.sharing.element_rows import (
    Elements,
    RowRelease,
    load_elements,
    release_rows,
)
from hub.sharing.element_rows import received_withdrawn as received_withdrawn
from hub.sharing.element_rows import report_addressing as report_addressing
from hub.sharing.gate import Gate as Gate
from hub.sharing.gate import Profiled
from hub.sharing.gate import own_addressing as own_addressing
from hub.sharing.records import label_of
from tlp.misp_read import PRODUCER_PREFIX as PRODUCER_PREFIX


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
