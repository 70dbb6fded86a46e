"""Ingest: every accepted change becomes rows, a version and an audit entry, in one transaction.

The hot path works on dicts and Core bulk statements (no ORM object per attribute), in
chunks, with Python's cyclic GC paused for the batch (it dominates bulk work on 10^5-object
payloads; reference: performance-anchors §2.3). An event whose markings cannot be read is
held in quarantine instead of stored.
"""

from __future__ import annotations

import time
import uuid as uuid_mod
import zlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Conflict, InvalidField
from hub.intel.drafts import (
    Draft,
    NewVersion,
    digest_and_snapshot,
    draft_event,
    publish_now,
    write_new,
)
from hub.intel.merge import Changes, merge_event
from hub.intel.outcomes import ForeignEvent, Outcome, UuidClash
from hub.intel.projection import render_event_version
from hub.intel.quarantine import element_uuids, quarantine
from hub.intel.rows import (
    count_elements,
    drop_never_shared,
    int_or_zero,
    meta_bytes,
    take_sightings,
    write_sightings,
    write_version,
)
from hub.intel.snapshots import (
    current_state,
    gc_paused,
)
from hub.intel.validation import normalise_event
from hub.lineage import retraction
from hub.lineage import service as lineage
from hub.models import (
    Event,
    EventVersion,
    Exercise,
    Partner,
    QuarantineItem,
    QuarantineUuid,
    StixObject,
)
from hub.models.base import utcnow

#: The tag of an event that is a published knowledge product (``hub.knowledge``): its content
#: passed review, so it changes only by publishing a reviewed version (or by an operator's
#: withdrawal), never by an ordinary edit of its owner.
KNOWLEDGE_TAG = "cwn:knowledge-product"
_PRODUCT_CHANNELS = frozenset({"knowledge", "admin-verdict", "admin-delete"})


def _is_product(event: Event) -> bool:
    return any(str(t).casefold() == KNOWLEDGE_TAG for t in orjson.loads(event.tags or "[]"))


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


@dataclass(slots=True)
class _Item:
    """One submitted event, read and normalised before any database work: its uuid and
    timestamp as sent (what the update rule compares), the normalised event, or the
    validation error to answer if the event is to be applied."""

    uuid: Any
    stamp: Any
    event: dict[str, Any]
    stamped: set[str]
    error: InvalidField | None = None
    draft: Draft | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """Submitted events parsed, validated and normalised with no database work (see
    ``prepare_events``)."""

    items: tuple[_Item, ...]
    now: int


def prepare_events(
    payloads: Sequence[Any], *, default_distribution: int = 1, now: int | None = None
) -> Prepared:
    """Validate and normalise submitted MISP events (raw dicts, in place) before the unit of
    work touches the database, so that a large body's CPU work holds no lock or transaction
    (SQLite's write lock, DESIGN §4 rule 10). A validation error is kept with its event and
    raised by ``ingest_events`` only when that event is to be applied: an event of another
    organisation is refused, and one not newer than the stored version is "unchanged",
    whatever else it holds (as before)."""
    now = now or int(time.time())
    events = [_unwrap(payload, index) for index, payload in enumerate(payloads)]
    items = []
    with gc_paused():
        for index, event in enumerate(events):
            item = _Item(event.get("uuid"), event.get("timestamp"), event, set())
            try:
                item.event = normalise_event(
                    event, now=now, default_distribution=default_distribution, stamped=item.stamped
                )
            except InvalidField as err:
                if len(events) > 1 and err.field:
                    err.field = f"{index}.{err.field}"
                    err.detail = f"event {index}: {err.detail}"
                item.error = err
            else:
                drop_never_shared(item.event)
            items.append(item)
    return Prepared(tuple(items), now)


def draft_new_events(
    prepared: Prepared, *, source: Partner, policy: tlp.Policy, sqlite: bool
) -> None:
    """Make, before the unit of work, what each valid event of ``prepared`` will write if
    it is new and submitted by ``source`` (``hub.intel.drafts``): the unit then holds
    SQLite's write lock for the database work only. ``source`` may be an object of a
    finished unit; the unit uses a draft only when its own source has the same identity."""
    orgc = {"uuid": source.uuid, "name": source.name}
    for item in prepared.items:
        # A submitted exercise tag is dropped in the unit (``exercise_marked``): such an
        # event is built there, so the draft never stores what the unit would have removed.
        if item.error is None and item.draft is None and not _claims_exercise(item.event):
            item.draft = draft_event(
                item.event, orgc=orgc, policy=policy, now=prepared.now, sqlite=sqlite
            )


def ingest_events(
    session: Session,
    *,
    payloads: Sequence[Any] | Prepared,
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
    keep_orgc: bool = False,
    original: bytes | None = None,
    conversion: lineage.Conversion | None = None,
    default_distribution: int = 1,
    exact_tags: Collection[str] = (),
    exercise: str | None = None,
) -> list[Outcome]:
    """Ingest MISP events (raw dicts, or ``prepare_events``' result) submitted by
    ``source``; all or nothing.

    Every event is validated before anything is written, so one bad event in a batch
    writes none of them. ``keep_orgc`` keeps the creator organisation given in the event
    (pulls from upstream); otherwise ``source`` becomes the creator, as for submissions.
    ``conversion`` says how the input was converted to MISP (for the lineage record).
    ``default_distribution`` is an event's when it has none (``HUB_DEFAULT_DISTRIBUTION``;
    ignored for prepared events, which were normalised with it already).
    ``exact_tags`` names the elements whose tag list the payload gives whole (an explicit
    tag removal, ``hub.intel.merge``); tags are otherwise only ever added.
    ``exercise``: the exercise the submission is made in (an exercise-only key, an inject):
    new events are stamped with it and marked (``exercise_marked``); an event of real
    traffic (or of another exercise) cannot be changed through it, nor the reverse, and the
    refusal names nothing (``ForeignEvent``).

    The audit entries of the whole batch are appended last (``_seal``): the audit head,
    which every audited read of every partner appends to, is held from then until the
    commit, not for the whole batch (on PostgreSQL its row lock made other partners' reads
    wait for a large batch and fail with 503).
    """
    prepared = (
        payloads
        if isinstance(payloads, Prepared)
        else prepare_events(payloads, default_distribution=default_distribution)
    )
    now = prepared.now
    items = prepared.items
    if exercise is not None:
        _check_open(session, exercise)
    lock_event_uuids(session, (i.uuid for i in items if i.uuid))
    plan: list[tuple[str, Any]] = []
    for item in items:
        existing = _existing(session, item.uuid)
        if existing is not None and (
            existing.source_partner_id != source.id or existing.exercise_id != exercise
        ):
            raise ForeignEvent(existing.uuid)  # before anything tells about that event
        if existing is None and _held_for_another(session, item.uuid, source):
            raise ForeignEvent(str(item.uuid).lower())  # reserved for its source, as if stored
        if existing is not None and _not_newer(existing, item.stamp):
            plan.append(("unchanged", existing))
            continue
        if existing is not None and channel not in _PRODUCT_CHANNELS and _is_product(existing):
            raise Conflict(
                f"event {existing.uuid} is a knowledge product: it changes only through "
                "/api/v1/knowledge (a reviewed version, published)"
            )
        if item.error is not None:
            raise item.error
        normalised = item.event
        _check_reserved_elements(session, normalised, source)
        if not keep_orgc:
            normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
        elif not isinstance(normalised.get("Orgc"), dict) or not normalised["Orgc"].get("uuid"):
            normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
        exercise_marked(normalised, exercise)
        plan.append(("apply", (existing, normalised, item.stamped, item.draft)))
    seal = _Seal(stamp=utcnow())
    outcomes = []
    with gc_paused():
        for kind, entry in plan:
            if kind == "unchanged":
                outcomes.append(
                    Outcome(
                        entry.uuid, "unchanged", entry.version, "not newer than the stored version"
                    )
                )
                continue
            existing, normalised, stamped, draft = entry
            outcomes.append(
                _apply(
                    session,
                    existing=existing,
                    incoming=normalised,
                    fresh=stamped,
                    draft=draft,
                    exact_tags=frozenset(exact_tags),
                    now=now,
                    source=source,
                    actor=actor,
                    channel=channel,
                    policy=policy,
                    original=original,
                    conversion=conversion,
                    seal=seal,
                    exercise=exercise,
                )
            )
    seal.close(session)
    return outcomes


@dataclass(slots=True)
class _Seal:
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


EXERCISE_TAG_PREFIX = "cwn:exercise="
EXERCISE_TITLE_PREFIX = "EXERCISE: "


def _check_open(session: Session, exercise: str) -> None:
    """A closed exercise is frozen: nothing more is stored in it (409)."""
    status = session.scalar(select(Exercise.status).where(Exercise.uuid == exercise))
    if status is None or status == "closed":
        raise Conflict("the exercise is closed: it takes no more submissions")


def _claims_exercise(event: dict[str, Any]) -> bool:
    return any(
        str(t.get("name", "")).lower().startswith(EXERCISE_TAG_PREFIX)
        for t in event.get("Tag") or []
        if isinstance(t, dict)
    )


def exercise_marked(event: dict[str, Any], exercise: str | None) -> None:
    """Mark an exercise's event in place as exercise traffic in the way MISP allows (the tag
    ``cwn:exercise="<id>"`` and a title starting ``EXERCISE: ``): every channel serves the
    stored event, so every copy carries the marks. Real traffic never carries the tag (the
    hub's namespace): a submitted one is dropped."""
    tags = [
        t
        for t in event.get("Tag") or []
        if not str(t.get("name", "")).lower().startswith(EXERCISE_TAG_PREFIX)
    ]
    if exercise is not None:
        tags.append({"name": f'{EXERCISE_TAG_PREFIX}"{exercise}"', "local": False})
        info = str(event.get("info") or "")
        if not info.startswith(EXERCISE_TITLE_PREFIX):
            event["info"] = EXERCISE_TITLE_PREFIX + info
    event["Tag"] = tags


def _unwrap(payload: Any, index: int) -> dict[str, Any]:
    if isinstance(payload, dict) and isinstance(payload.get("Event"), dict):
        return payload["Event"]  # type: ignore[no-any-return]
    if isinstance(payload, dict):
        return payload
    raise InvalidField(f"item {index} is not a MISP event object", field=str(index))


def _existing(session: Session, raw: Any) -> Event | None:
    if not raw:
        return None
    try:
        uuid = str(uuid_mod.UUID(str(raw)))
    except ValueError:
        return None  # validation names it
    return session.scalar(select(Event).where(Event.uuid == uuid))


def _held_for_another(session: Session, raw: Any, source: Partner) -> bool:
    """Whether another organisation's submission with this uuid is (or was) held in
    quarantine: the uuid is reserved for its source, whatever the operator decides, so that
    its release is neither blocked nor overwritten and the refusal tells nothing about it."""
    try:
        uuid = str(uuid_mod.UUID(str(raw)))
    except ValueError:
        return False
    held = select(QuarantineItem.id).where(
        QuarantineItem.item_uuid == uuid, QuarantineItem.source_partner_id != source.id
    )
    converted = select(QuarantineUuid.item_id).where(
        QuarantineUuid.uuid == uuid,
        QuarantineUuid.kind == "event",
        QuarantineUuid.source_partner_id != source.id,
    )
    return session.scalar(held.union_all(converted).limit(1)) is not None


_CLASH_FIELD = {
    "attribute": "Event.Attribute",
    "object": "Event.Object",
    "report": "Event.EventReport",
}


def _check_reserved_elements(session: Session, event: dict[str, Any], source: Partner) -> None:
    """Refuse element uuids held in another organisation's quarantine, as if that input were
    stored: a clash naming nothing (``UuidClash``, as for a stored element). One cheap look
    first: usually nothing of anyone else is held."""
    others = QuarantineUuid.source_partner_id != source.id
    if session.scalar(select(QuarantineUuid.uuid).where(others).limit(1)) is None:
        return
    kinds = {u: k for k, u in element_uuids(event) if k != "event"}
    uuids = sorted(kinds)
    for start in range(0, len(uuids), 500):
        found = session.scalar(
            select(QuarantineUuid.uuid)
            .where(others, QuarantineUuid.uuid.in_(uuids[start : start + 500]))
            .limit(1)
        )
        if found is not None:
            raise UuidClash(_CLASH_FIELD.get(kinds[found], "Event.Attribute"))


def _not_newer(existing: Event, stamp: Any) -> bool:
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
    draft: Draft | None,
    exact_tags: frozenset[str],
    now: int,
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
    original: bytes | None,
    conversion: lineage.Conversion | None,
    seal: _Seal,
    exercise: str | None = None,
) -> Outcome:
    if existing is not None and existing.source_partner_id != source.id:
        raise ForeignEvent(existing.uuid)
    if draft is not None and draft.error is not None:
        raise draft.error
    new = _drafted_new(draft, existing, incoming, source, session) if exercise is None else None
    if new is not None:
        return _apply_new(
            session,
            new,
            draft,
            source=source,
            recorded=_Recorded(actor, channel, original, conversion, seal),
        )
    current = current_state(session, existing) if existing is not None else None
    sightings = draft.sightings if draft is not None else take_sightings(incoming)
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
    publications = _publications(
        existing,
        merged,
        stamp,
        touched=bool(changes.changed or changes.deleted) and meta_same,
    )
    labels = tlp.label_misp_event(merged, policy=policy, source_org_uuid=source.uuid)
    recorded = _Recorded(actor, channel, original, conversion, seal)
    if labels.problems and exercise is not None:
        # Quarantine knows no exercise: an operator's release would make an inject real
        # traffic. Refused whole instead (fail closed), naming what to fix.
        raise InvalidField(
            "an exercise submission must carry readable TLP markings (it cannot be held "
            "in quarantine)",
            field="Tag",
        )
    if labels.problems:
        return _quarantined(session, incoming, labels, source, recorded)
    digest, snapshot = digest_and_snapshot(merged, labels)
    event_row = write_version(
        session,
        existing=existing,
        event=merged,
        labels=labels,
        source=source,
        digest=digest,
        meta_timestamp=meta_timestamp,
        changed=changes.changed if existing is not None else None,
        publications=publications,
        withdrawn_ts=stamp if changes.deleted else (existing.withdrawn_ts if existing else 0),
    )
    if existing is None:
        event_row.exercise_id = exercise
    return _record_version(
        session,
        event_row=event_row,
        merged=merged,
        labels=labels,
        changes=changes,
        sightings=sightings,
        snapshot=snapshot,
        source=source,
        recorded=recorded,
        updated=existing is not None,
    )


@dataclass(frozen=True, slots=True)
class _Recorded:
    """Who submitted a version, how, and the batch it belongs to (what its records say)."""

    actor: str
    channel: str
    original: bytes | None
    conversion: lineage.Conversion | None
    seal: _Seal


def _drafted_new(
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


def _apply_new(
    session: Session, new: NewVersion, draft: Draft, *, source: Partner, recorded: _Recorded
) -> Outcome:
    """Store a drafted new event: only the database work happens here."""
    if new.rows is None:
        return _quarantined(session, new.merged, new.labels, source, recorded)
    event_row = write_new(session, uuid=new.merged["uuid"], rows=new.rows, source=source)
    return _record_version(
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


def _quarantined(
    session: Session,
    event: dict[str, Any],
    labels: tlp.EventLabels,
    source: Partner,
    recorded: _Recorded,
) -> Outcome:
    return quarantine(
        session,
        event=event,
        problems=labels.problems,
        source=source,
        actor=recorded.actor,
        channel=recorded.channel,
        records=recorded.seal.records,
    )


def _record_version(
    session: Session,
    *,
    event_row: Event,
    merged: dict[str, Any],
    labels: tlp.EventLabels,
    changes: Changes,
    sightings: list[dict[str, Any]],
    snapshot: bytes,
    source: Partner,
    recorded: _Recorded,
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


PUBLICATIONS_KEPT = 32


def _publications(
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
