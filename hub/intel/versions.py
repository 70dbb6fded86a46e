"""Storing one version of an event once ingest has decided to: its rows (drafted before the
unit, or written here), sightings, the version record, withdrawals, its audit entry (at the
batch's seal), lineage and its STIX rendering; or quarantine when its markings cannot be
read."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, update
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.intel.drafts import Draft, NewVersion, publish_now, write_new
from hub.intel.merge import Changes, merge_event
from hub.intel.outcomes import Outcome
from hub.intel.projection import render_event_version
from hub.intel.quarantine import quarantine
from hub.intel.rows import count_elements, int_or_zero, meta_bytes
from hub.intel.sightings import write_sightings
from hub.intel.snapshots import current_state
from hub.lineage import retraction
from hub.lineage import service as lineage
from hub.models import Event, EventVersion, Partner, StixObject
from hub.models.base import utcnow


@dataclass(slots=True)
class Seal:
    """What a batch leaves for its end: its audit entries, and the STIX objects it rendered
    (dated ``stamp`` for now). ``close`` takes the audit head, appends the entries and dates
    the objects after it: ``date_added`` must grow in commit order, which the head (held to
    the commit) gives (``hub.intel.projection``), and ``added_after`` pollers miss nothing."""

    stamp: datetime
    records: list[audit.Record] = field(default_factory=list)
    rendered: list[int] = field(default_factory=list)

    def close(self, session: Session) -> None:
        if self.records:
            audit.append(session, self.records)
        for start in range(0, len(self.rendered), 500):
            session.execute(
                update(StixObject)
                .where(
                    StixObject.event_id.in_(self.rendered[start : start + 500]),
                    StixObject.date_added == self.stamp,
                )
                .values(date_added=utcnow())
            )
        self.records, self.rendered = [], []


@dataclass(frozen=True, slots=True)
class Recorded:
    """Who submitted a version, how, and the batch it belongs to (what its records say)."""

    actor: str
    channel: str
    original: bytes | None
    conversion: lineage.Conversion | None
    seal: Seal


def drafted_new(
    draft: Draft | None,
    existing: Event | None,
    incoming: dict[str, Any],
    source: Partner,
    session: Session,
) -> NewVersion | None:
    """The drafted first version, when it is still what the unit would build: the event is
    new here, its source and creator are the ones the draft was made for (labels depend on
    the source), and its rows are in the form this database takes."""
    if draft is None or draft.new is None or existing is not None:
        return None
    if draft.new.orgc != {"uuid": source.uuid, "name": source.name}:
        return None
    new = draft.new
    if new.rows is not None:
        sqlite = session.get_bind().dialect.name == "sqlite"
        if new.rows.for_sqlite is not sqlite:
            return None
    return new if new.orgc == incoming.get("Orgc") else None


def apply_new(
    session: Session, new: NewVersion, draft: Draft, *, source: Partner, recorded: Recorded
) -> Outcome:
    """Store a drafted new event: only the database work happens here."""
    if new.rows is None:
        return quarantined(session, new.merged, new.labels, source, recorded)
    event_row = write_new(session, uuid=new.merged["uuid"], rows=new.rows, source=source)
    return record_version(
        session,
        event_row=event_row,
        merged=new.merged,
        labels=new.labels,
        changes=new.changes,
        sightings=draft.sightings,
        snapshot=new.snapshot,
        source=source,
        recorded=recorded,
        updated=False,
    )


def quarantined(
    session: Session,
    event: dict[str, Any],
    labels: tlp.EventLabels,
    source: Partner,
    recorded: Recorded,
) -> Outcome:
    """Hold the event in quarantine (its markings cannot be read), recorded with the batch."""
    return quarantine(
        session,
        event=event,
        problems=labels.problems,
        source=source,
        actor=recorded.actor,
        channel=recorded.channel,
        records=recorded.seal.records,
    )


def record_version(
    session: Session,
    *,
    event_row: Event,
    merged: dict[str, Any],
    labels: tlp.EventLabels,
    changes: Changes,
    sightings: list[dict[str, Any]],
    snapshot: bytes,
    source: Partner,
    recorded: Recorded,
    updated: bool,
) -> Outcome:
    """What every stored version adds beside its rows: its sightings, the version record,
    withdrawals, the audit entry (at the seal), lineage and its STIX rendering."""
    actor, channel, seal = recorded.actor, recorded.channel, recorded.seal
    write_sightings(session, sightings, event_row.id, source)
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
                "original": zlib.compress(recorded.original, 1) if recorded.original else None,
                "snapshot": snapshot,
            }
        ],
    )
    if changes.deleted:  # deletions reach exactly who had the elements, from now on
        retraction.remember_withdrawn(
            session, event_id=event_row.id, event_uuid=event_row.uuid, version=version, state=merged
        )
    seal.records.append(
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
        conversion=recorded.conversion,
    )
    # STIX is rendered once per version, here, dated again when the batch is sealed (after
    # its audit entries: date_added must follow commit order); a conversion failure is
    # recorded there and never fails ingest. (A new published version makes push
    # connections due at the worker's next round: ``hub.connections.jobs.schedule_due``.)
    render_event_version(session, event=event_row, state=merged, labels=labels, now=seal.stamp)
    seal.rendered.append(event_row.id)
    return Outcome(event_row.uuid, "updated" if updated else "stored", version)


@dataclass(frozen=True, slots=True)
class Merged:
    """The next version of an event before it is labelled: its content, what changed, its
    timestamp, the timestamp of its own fields' last change, and ``Event.publications``."""

    merged: dict[str, Any]
    changes: Changes
    stamp: int
    meta_timestamp: int
    publications: str


def next_version(
    session: Session,
    existing: Event | None,
    incoming: dict[str, Any],
    *,
    fresh: set[str],
    exact_tags: frozenset[str],
    now: int,
) -> Merged:
    """The submitted event merged into the stored one (``hub.intel.merge``; a new event is
    itself), published or not as submitted, and dated later than the stored version."""
    current = current_state(session, existing) if existing is not None else None
    if current is not None:
        merged, changes = merge_event(current, incoming, fresh=fresh, exact_tags=exact_tags)
    else:
        merged, changes = incoming, Changes(new=count_elements(incoming))
    publish_now(merged, incoming, was_published=bool(existing and existing.published), now=now)
    if existing is not None and int(merged["timestamp"]) <= existing.timestamp:
        # Each version is later than the one before, even within its second: what a
        # recipient sees change is told apart from the publication before it by timestamp.
        merged["timestamp"] = str(existing.timestamp + 1)
    stamp = int(merged["timestamp"])
    # What everyone who sees the event sees change: its own fields (not its publication,
    # decided per recipient, nor a withdrawal, which reaches only those who had the element).
    meta_same = current is not None and meta_bytes(current) == meta_bytes(merged)
    meta_timestamp = stamp
    if existing is not None and meta_same:
        meta_timestamp = existing.meta_timestamp or existing.timestamp
    publications = publications_after(
        existing,
        merged,
        stamp,
        touched=bool(changes.changed or changes.deleted) and meta_same,
    )
    return Merged(merged, changes, stamp, meta_timestamp, publications)


PUBLICATIONS_KEPT = 32


def publications_after(
    existing: Event | None, merged: dict[str, Any], stamp: int, *, touched: bool
) -> str:
    """``Event.publications`` after this version: a published version adds itself; a version
    that only changed elements (``touched``) unpublishes the event for its creator, and for
    every recipient that sees one of the changes (``hub.sharing.view.publication``), so the
    earlier publications stay; any other unpublished version (an explicit unpublish, a
    change to the event's own fields) is seen by every recipient and clears them."""
    kept: list[list[int]] = orjson.loads(existing.publications) if existing is not None else []
    if merged.get("published"):
        kept.append([stamp, int_or_zero(merged.get("publish_timestamp"))])
    elif not touched:
        kept = []
    return orjson.dumps(kept[-PUBLICATIONS_KEPT:]).decode()
