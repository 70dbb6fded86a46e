"""Ingest: every accepted change becomes rows, a version and an audit entry, in one transaction.

The hot path works on dicts and Core bulk statements (no ORM object per attribute), in
chunks, with Python's cyclic GC paused for the batch (it dominates bulk work on 10^5-object
payloads; reference: performance-anchors §2.3). An event whose markings cannot be read is
held in quarantine instead of stored.
"""

from __future__ import annotations

import time
import uuid as uuid_mod
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Conflict, InvalidField
from hub.intel.drafts import (
    Draft,
    digest_and_snapshot,
    draft_event,
)
from hub.intel.exercise_marks import check_open, claims_exercise, exercise_marked
from hub.intel.ingest_checks import (
    check_reserved_elements,
    existing_event,
    held_for_another,
    not_newer,
)
from hub.intel.outcomes import ForeignEvent, Outcome, UuidClash
from hub.intel.rows import (
    drop_never_shared,
    write_version,
)
from hub.intel.sightings import take_sightings
from hub.intel.snapshots import gc_paused
from hub.intel.validation import normalise_event
from hub.intel.versions import (
    Recorded,
    Seal,
    apply_new,
    drafted_new,
    next_version,
    quarantined,
    record_version,
)
from hub.lineage import service as lineage
from hub.models import (
    Event,
    Partner,
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
    draft_identity(
        prepared, orgc={"uuid": source.uuid, "name": source.name}, policy=policy, sqlite=sqlite
    )


def draft_identity(
    prepared: Prepared, *, orgc: dict[str, Any], policy: tlp.Policy, sqlite: bool
) -> None:
    """``draft_new_events`` for the submitter's identity alone (``{"uuid", "name"}``), which
    is all a draft needs: it can be made in another process (``hub.intel.offload``)."""
    for item in prepared.items:
        # A submitted exercise tag is dropped in the unit (``exercise_marked``): such an
        # event is built there, so the draft never stores what the unit would have removed.
        if item.error is None and item.draft is None and not claims_exercise(item.event):
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

    The audit entries of the whole batch are appended last (``hub.intel.versions.Seal``):
    the audit head, which every audited read of every partner appends to, is held from then
    until the commit, not for the whole batch (on PostgreSQL its row lock made other partners' reads
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
        check_open(session, exercise)
    lock_event_uuids(session, (i.uuid for i in items if i.uuid))
    plan = [
        _planned(
            session, item, source=source, channel=channel, keep_orgc=keep_orgc, exercise=exercise
        )
        for item in items
    ]
    seal = Seal(stamp=utcnow())
    recorded = Recorded(actor, channel, original, conversion, seal)
    outcomes = []
    with gc_paused():
        for existing, item in plan:
            if item is None:
                outcomes.append(_unchanged(existing))
                continue
            outcomes.append(
                _apply(
                    session,
                    existing=existing,
                    incoming=item.event,
                    fresh=item.stamped,
                    draft=item.draft,
                    exact_tags=frozenset(exact_tags),
                    now=now,
                    source=source,
                    policy=policy,
                    recorded=recorded,
                    exercise=exercise,
                )
            )
    seal.close(session)
    return outcomes


def _unchanged(existing: Event) -> Outcome:
    """The outcome of an event not newer than its stored version: nothing is written."""
    return Outcome(
        existing.uuid, "unchanged", existing.version, "not newer than the stored version"
    )


def _planned(
    session: Session,
    item: _Item,
    *,
    source: Partner,
    channel: str,
    keep_orgc: bool,
    exercise: str | None,
) -> tuple[Any, _Item | None]:
    """What the batch does with one submitted event, checked before anything is written:
    (stored event, None) when it is not newer than the stored version (unchanged), else
    (stored event or None, the item to apply, its creator and exercise marks set). Raises
    the refusal (another organisation's or exercise's event, a knowledge product, the
    event's validation error, a reserved element uuid)."""
    existing = existing_event(session, item.uuid)
    if existing is not None and (
        existing.source_partner_id != source.id or existing.exercise_id != exercise
    ):
        raise ForeignEvent(existing.uuid)  # before anything tells about that event
    if existing is None and held_for_another(session, item.uuid, source):
        raise ForeignEvent(str(item.uuid).lower())  # reserved for its source, as if stored
    if existing is not None and not_newer(existing, item.stamp):
        return existing, None
    if existing is not None and channel not in _PRODUCT_CHANNELS and _is_product(existing):
        raise Conflict(
            f"event {existing.uuid} is a knowledge product: it changes only through "
            "/api/v1/knowledge (a reviewed version, published)"
        )
    if item.error is not None:
        raise item.error
    normalised = item.event
    check_reserved_elements(session, normalised, source)
    if not keep_orgc:
        normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
    elif not isinstance(normalised.get("Orgc"), dict) or not normalised["Orgc"].get("uuid"):
        normalised["Orgc"] = {"uuid": source.uuid, "name": source.name}
    exercise_marked(normalised, exercise)
    return existing, item


def _unwrap(payload: Any, index: int) -> dict[str, Any]:
    if isinstance(payload, dict) and isinstance(payload.get("Event"), dict):
        return payload["Event"]  # type: ignore[no-any-return]
    if isinstance(payload, dict):
        return payload
    raise InvalidField(f"item {index} is not a MISP event object", field=str(index))


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
    policy: tlp.Policy,
    recorded: Recorded,
    exercise: str | None = None,
) -> Outcome:
    """Store one checked event of the batch: its drafted first version when that is still
    what the unit would build, else the next version merged with the stored one, or hold
    it in quarantine when its markings cannot be read."""
    if existing is not None and existing.source_partner_id != source.id:
        raise ForeignEvent(existing.uuid)
    if draft is not None and draft.error is not None:
        raise draft.error
    new = drafted_new(draft, existing, incoming, source, session) if exercise is None else None
    if new is not None:
        return apply_new(
            session,
            new,
            draft,
            source=source,
            recorded=recorded,
        )
    sightings = draft.sightings if draft is not None else take_sightings(incoming)
    version = next_version(session, existing, incoming, fresh=fresh, exact_tags=exact_tags, now=now)
    merged, changes, stamp = version.merged, version.changes, version.stamp
    labels = tlp.label_misp_event(merged, policy=policy, source_org_uuid=source.uuid)
    if labels.problems and exercise is not None:
        # Quarantine knows no exercise: an operator's release would make an inject real
        # traffic. Refused whole instead (fail closed), naming what to fix.
        raise InvalidField(
            "an exercise submission must carry readable TLP markings (it cannot be held "
            "in quarantine)",
            field="Tag",
        )
    if labels.problems:
        return quarantined(session, incoming, labels, source, recorded)
    digest, snapshot = digest_and_snapshot(merged, labels)
    event_row = write_version(
        session,
        existing=existing,
        event=merged,
        labels=labels,
        source=source,
        digest=digest,
        meta_timestamp=version.meta_timestamp,
        changed=changes.changed if existing is not None else None,
        publications=version.publications,
        withdrawn_ts=stamp if changes.deleted else (existing.withdrawn_ts if existing else 0),
    )
    if existing is None:
        event_row.exercise_id = exercise
    return record_version(
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
