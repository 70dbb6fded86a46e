"""The after-action report: per exercise item and participant, when it was first received,
acknowledged (notification feedback) and answered (a sighting), what the participant passed
on in the exercise, and for who did not receive it or received it late, why.

Receipts come from the audit log's delivery entries (through the ``releases`` index derived
from them, brought up to date first): an allowed release of the item to the participant
whose entry was made for an exercise key or an exercise-mode push connection of this
exercise (its actor names the exercise). Acknowledgements are the audit log's
``notify.feedback`` entries on the exercise's notifications of the item. The reasons
(``why``) are read from what the hub recorded: the participant's exercise keys and
connections, the connection's failed pushes and runs, and refusals in the release index.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import tlp
from hub.audit import releases as release_index
from hub.exercises import service
from hub.models import (
    ApiKey,
    AuditEntry,
    Connection,
    ConnectionJob,
    Event,
    Exercise,
    Notification,
    Partner,
    PushOutboxItem,
    Release,
    Sighting,
)
from hub.sharing.recipients import Recipient
from hub.sharing.records import addressing_of, label_of

DEFAULT_LATE_AFTER = 900  # seconds: received later than this after sending is "late"


@dataclass(frozen=True, slots=True)
class Line:
    """One item and one participant."""

    event_uuid: str
    inject: str | None  # the scenario's name for it; None: a participant's own item
    sent_at: str
    partner_uuid: str
    partner_name: str
    first_receipt_at: str | None
    first_receipt_channel: str | None
    delay_seconds: float | None
    first_feedback_at: str | None
    status: str  # received | late | not-received | source
    # added fields (the shape above stays as it was)
    first_ack_at: str | None = None  # first feedback on the item's notification (audit log)
    ack_kind: str | None = None  # ack, resolved, false-positive, …
    ack_delay_seconds: float | None = None  # from sending to first_ack_at
    feedback_delay_seconds: float | None = None  # from sending to first_feedback_at
    passed_on_sightings: int = 0  # sightings of the item by the participant
    # exercise items the participant submitted after it first received this one
    passed_on_items: tuple[str, ...] = ()
    # for not-received and late: why, from what the hub recorded (see ``_why``)
    why: tuple[str, ...] = ()


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _since(sent: datetime, then: datetime | None) -> float | None:
    return (_aware(then) - _aware(sent)).total_seconds() if then is not None else None


def _receipts(session: Session, exercise: Exercise) -> dict[tuple[str, str], tuple[datetime, str]]:
    """(event uuid, partner uuid) → (first allowed delivery time, its channel), over
    deliveries made to this exercise's keys."""
    release_index.catch_up(session)
    uuids = select(Event.uuid).where(Event.exercise_id == exercise.uuid)
    rows = session.execute(
        select(Release.event_uuid, Release.recipient_uuid, Release.released_at, Release.channel)
        .join(AuditEntry, AuditEntry.seq == Release.audit_seq)
        .where(
            Release.event_uuid.in_(uuids),
            Release.allowed.is_(True),
            AuditEntry.actor.like(f"%, exercise {exercise.uuid})"),
        )
        .order_by(Release.released_at, Release.id)
    )
    out: dict[tuple[str, str], tuple[datetime, str]] = {}
    for event_uuid, partner_uuid, at, channel in rows:
        out.setdefault((event_uuid, partner_uuid), (at, channel))
    return out


def _feedback(session: Session, exercise: Exercise) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(Event.uuid, Sighting.org_uuid, func.min(Sighting.date_sighting))
        .join(Sighting, Sighting.event_id == Event.id)
        .where(Event.exercise_id == exercise.uuid)
        .group_by(Event.uuid, Sighting.org_uuid)
    )
    return {(e, o): int(t) for e, o, t in rows if o}


def _acks(session: Session, exercise: Exercise) -> dict[tuple[str, str], tuple[datetime, str]]:
    """(event uuid, partner uuid) → (time, kind) of the participant's first feedback on one
    of the exercise's notifications of the item, as the audit log recorded it."""
    tickets = dict(
        session.execute(
            select(Notification.ticket, Notification.case_ref).where(
                Notification.exercise_id == exercise.uuid
            )
        ).all()
    )
    if not tickets:
        return {}
    rows = session.execute(
        select(
            AuditEntry.object_ref,
            AuditEntry.recipient_uuid,
            AuditEntry.recorded_at,
            AuditEntry.body,
        )
        .where(
            AuditEntry.action == "notify.feedback",
            AuditEntry.object_ref.in_([f"notification:{t}" for t in tickets]),
        )
        .order_by(AuditEntry.seq)
    )
    out: dict[tuple[str, str], tuple[datetime, str]] = {}
    for ref, partner_uuid, at, body in rows:
        case = tickets[ref.removeprefix("notification:")]
        kind = str(((body or {}).get("details") or {}).get("kind") or "")
        out.setdefault((case, partner_uuid), (at, kind))
    return out


def _sightings(session: Session, exercise: Exercise) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(Event.uuid, Sighting.org_uuid, func.count(Sighting.id))
        .join(Sighting, Sighting.event_id == Event.id)
        .where(Event.exercise_id == exercise.uuid)
        .group_by(Event.uuid, Sighting.org_uuid)
    )
    return {(e, o): int(n) for e, o, n in rows if o}


@dataclass(frozen=True, slots=True)
class _Means:
    """How each participant could receive the exercise's items, and what went wrong."""

    keys: dict[str, list[tuple[str, datetime | None]]]  # partner uuid → [(key uuid, last use)]
    connections: dict[str, list[Connection]]  # partner uuid → exercise push connections
    failed_pushes: dict[tuple[int, str], str]  # (connection id, event uuid) → last error
    failed_runs: dict[int, str]  # connection id → last error of its latest failed run
    refusals: dict[tuple[str, str], list[str]]  # (event, partner) → refusal reasons


def _means(session: Session, exercise: Exercise) -> _Means:
    keys: dict[str, list[tuple[str, datetime | None]]] = {}
    for partner_uuid, key_uuid, used in session.execute(
        select(Partner.uuid, ApiKey.uuid, ApiKey.last_used_at)
        .join(Partner, Partner.id == ApiKey.partner_id)
        .where(ApiKey.exercise_id == exercise.uuid)
        .order_by(ApiKey.id)
    ):
        keys.setdefault(partner_uuid, []).append((key_uuid, used))
    connections: dict[str, list[Connection]] = {}
    for partner_uuid, connection in session.execute(
        select(Partner.uuid, Connection)
        .join(Partner, Partner.id == Connection.partner_id)
        .where(Connection.exercise_id == exercise.uuid)
        .order_by(Connection.id)
    ):
        connections.setdefault(partner_uuid, []).append(connection)
    ids = [c.id for found in connections.values() for c in found]
    failed_pushes: dict[tuple[int, str], str] = {}
    failed_runs: dict[int, str] = {}
    if ids:
        for connection_id, event_uuid, state, error in session.execute(
            select(
                PushOutboxItem.connection_id,
                PushOutboxItem.event_uuid,
                PushOutboxItem.state,
                PushOutboxItem.last_error,
            )
            .where(
                PushOutboxItem.connection_id.in_(ids),
                PushOutboxItem.last_error.is_not(None),
            )
            .order_by(PushOutboxItem.id)
        ):
            failed_pushes[(connection_id, event_uuid)] = f"{state}: {error}"
        for connection_id, state, error in session.execute(
            select(ConnectionJob.connection_id, ConnectionJob.state, ConnectionJob.last_error)
            .where(ConnectionJob.connection_id.in_(ids), ConnectionJob.last_error.is_not(None))
            .order_by(ConnectionJob.id)
        ):
            failed_runs[connection_id] = f"run {state}: {error}"
    refusals: dict[tuple[str, str], list[str]] = {}
    uuids = select(Event.uuid).where(Event.exercise_id == exercise.uuid)
    for event_uuid, partner_uuid, reason, channel in session.execute(
        select(Release.event_uuid, Release.recipient_uuid, Release.reason, Release.channel)
        .join(AuditEntry, AuditEntry.seq == Release.audit_seq)
        .where(
            Release.event_uuid.in_(uuids),
            Release.allowed.is_(False),
            AuditEntry.actor.like(f"%, exercise {exercise.uuid})"),
        )
        .order_by(Release.id)
    ):
        found = refusals.setdefault((event_uuid, partner_uuid), [])
        text = f"tlp-refused: {reason} ({channel})"
        if text not in found:
            found.append(text)
    return _Means(keys, connections, failed_pushes, failed_runs, refusals)


def _tlp_now(event: Any, partner: Any, exercise: Exercise) -> str | None:
    """Why TLP keeps the item from the participant altogether, decided now (its least
    restricted element, its addressing, the participant's tier and agreement; the default
    policy): a listing's SQL pre-filter leaves no refusal in the audit log for such an item."""
    rank = event.min_rank if event.min_rank is not None else event.tlp_rank
    decision = tlp.decide(
        label=label_of(rank),
        recipient=Recipient.of_partner(partner, actor="report", exercise_id=exercise.uuid).tlp,
        channel=tlp.Channel.REST,
        addressing=addressing_of(event.distribution, event.sg_members),
        source_org_uuid=event.orgc_uuid,
        policy=tlp.DEFAULT_POLICY,
    )
    return None if decision.allowed else f"tlp-refused: {decision.reason.value} (decided now)"


def _why(
    means: _Means, event_uuid: str, partner_uuid: str, tlp_now: str | None = None
) -> tuple[str, ...]:
    """Why a participant did not receive an item, or received it late: no exercise key and
    no exercise connection; keys never used; its connection's failed pushes of the item or
    failed runs; the release path's refusals of the item to it (TLP); else, with keys that
    were used, that they did not fetch it."""
    out: list[str] = []
    keys = means.keys.get(partner_uuid, [])
    connections = means.connections.get(partner_uuid, [])
    if not keys and not connections:
        out.append("no-key: no exercise key and no exercise push connection")
    elif keys and not connections and all(used is None for _, used in keys):
        out.append("key-unused: its exercise key(s) never fetched anything")
    for connection in connections:
        if not connection.enabled:
            out.append(f"connection-disabled: {connection.name}")
        pushed = means.failed_pushes.get((connection.id, event_uuid))
        if pushed:
            out.append(f"connection-failed: {connection.name}: {pushed}")
        run = means.failed_runs.get(connection.id)
        if run:
            out.append(f"connection-failed: {connection.name}: {run}")
    out += means.refusals.get((event_uuid, partner_uuid), [])
    if tlp_now is not None and not any(x.startswith("tlp-refused") for x in out):
        out.append(tlp_now)
    if not out and keys:
        out.append("not-fetched: its exercise key(s) did not fetch this item")
    return tuple(out)


def lines(
    session: Session, exercise: Exercise, *, late_after: int = DEFAULT_LATE_AFTER
) -> list[Line]:
    who = service.participants(session, exercise)
    named = {
        i.event_uuid: (i.name, i.sent_at)
        for i in service.injects(session, exercise)
        if i.event_uuid is not None
    }
    receipts = _receipts(session, exercise)
    feedback = _feedback(session, exercise)
    acks = _acks(session, exercise)
    sightings = _sightings(session, exercise)
    means = _means(session, exercise)
    rows = session.execute(
        select(
            Event.uuid,
            Event.created_at,
            Event.orgc_uuid,
            Event.tlp_rank,
            Event.min_rank,
            Event.distribution,
            Event.sg_members,
        )
        .where(Event.exercise_id == exercise.uuid)
        .order_by(Event.id)
    ).all()
    events = [(r.uuid, r.created_at, r.orgc_uuid) for r in rows]
    placed = {r.uuid: r for r in rows}
    submitted: dict[str, list[tuple[datetime, str]]] = {}
    for uuid, created_at, orgc in events:
        submitted.setdefault(orgc, []).append((created_at, uuid))
    out: list[Line] = []
    for uuid, created_at, orgc in events:
        name, sent_at = named.get(uuid, (None, None))
        sent = sent_at or created_at
        for partner in who:
            got = receipts.get((uuid, partner.uuid))
            delay = (got[0] - sent).total_seconds() if got is not None else None
            if partner.uuid == orgc:
                status = "source"
            elif got is None:
                status = "not-received"
            else:
                status = "late" if delay is not None and delay > late_after else "received"
            seen = feedback.get((uuid, partner.uuid))
            seen_at = datetime.fromtimestamp(seen, UTC) if seen else None
            ack = acks.get((uuid, partner.uuid))
            after = [
                other
                for at, other in submitted.get(partner.uuid, [])
                if got is not None and other != uuid and _aware(at) >= _aware(got[0])
            ]
            out.append(
                Line(
                    event_uuid=uuid,
                    inject=name,
                    sent_at=_iso(sent) or "",
                    partner_uuid=partner.uuid,
                    partner_name=partner.name,
                    first_receipt_at=_iso(got[0]) if got else None,
                    first_receipt_channel=got[1] if got else None,
                    delay_seconds=delay,
                    first_feedback_at=_iso(seen_at),
                    status=status,
                    first_ack_at=_iso(ack[0]) if ack else None,
                    ack_kind=ack[1] if ack else None,
                    ack_delay_seconds=_since(sent, ack[0] if ack else None),
                    feedback_delay_seconds=_since(sent, seen_at),
                    passed_on_sightings=sightings.get((uuid, partner.uuid), 0),
                    passed_on_items=tuple(after),
                    why=_why(means, uuid, partner.uuid, _tlp_now(placed[uuid], partner, exercise))
                    if status in ("late", "not-received")
                    else (),
                )
            )
    return out


def report(
    session: Session, exercise: Exercise, *, late_after: int = DEFAULT_LATE_AFTER
) -> dict[str, Any]:
    found = lines(session, exercise, late_after=late_after)
    return {
        "exercise": exercise.uuid,
        "name": exercise.name,
        "status": exercise.status,
        "late_after_seconds": late_after,
        "lines": [asdict(x) for x in found],
        "not_received": [asdict(x) for x in found if x.status == "not-received"],
        "late": [asdict(x) for x in found if x.status == "late"],
    }


def to_csv(found: list[Line]) -> str:
    buffer = io.StringIO()
    fields = list(Line.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\r\n")
    writer.writeheader()
    for line in found:
        row = asdict(line)
        row["passed_on_items"] = " ".join(line.passed_on_items)
        row["why"] = "; ".join(line.why)
        writer.writerow(row)
    return buffer.getvalue()
