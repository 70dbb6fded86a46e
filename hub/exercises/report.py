"""The after-action report: per exercise item and participant, when it was first received
and first answered (a sighting), and who did not receive it or received it late.

Receipts come from the audit log's delivery entries (through the ``releases`` index derived
from them, brought up to date first): an allowed release of the item to the participant
whose entry was made for an exercise key of this exercise (its actor names the exercise).
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.audit import releases as release_index
from hub.exercises import service
from hub.models import AuditEntry, Event, Exercise, Release, Sighting

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


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


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
    events = session.execute(
        select(Event.uuid, Event.created_at, Event.orgc_uuid)
        .where(Event.exercise_id == exercise.uuid)
        .order_by(Event.id)
    ).all()
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
                    first_feedback_at=_iso(datetime.fromtimestamp(seen, UTC)) if seen else None,
                    status=status,
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
        writer.writerow(asdict(line))
    return buffer.getvalue()
