"""Answers and their absence: recipients' feedback on notifications (and MISP sightings read as
feedback), the source's view of it, and expiry of what nobody acknowledged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.context import current_request_id
from hub.jobs import claiming
from hub.lineage import service as lineage
from hub.models import (
    Event,
    Notification,
    NotificationFeedback,
    NotificationItem,
    Observation,
    Partner,
)
from hub.models.base import utcnow
from hub.notifications.release import latest_artifact
from hub.notifications.service import (
    FEEDBACK_STATUS,
    JOB_AGENT,
    SIGHTING_FEEDBACK,
    UNANSWERED,
    agent_for,
)


def feedback(
    session: Session,
    *,
    principal: Principal,
    note: Notification,
    kind: str,
    text: str | None,
    allow_attribution: bool,
) -> NotificationFeedback:
    """Record feedback on a notification; it goes to the item's source anonymised ("via hub")
    unless the sender allows attribution."""
    event = session.scalar(select(Event).where(Event.uuid == note.case_ref))
    row = NotificationFeedback(
        notification_id=note.id,
        from_partner_id=principal.partner_id,
        source_partner_id=event.source_partner_id if event is not None else None,
        case_ref=note.case_ref,
        kind=kind,
        text=text,
        forward="attributed" if allow_attribution else "anonymised",
    )
    session.add(row)
    status = FEEDBACK_STATUS[kind]
    if status is not None and (kind != "ack" or note.status in UNANSWERED):
        note.status = status
    session.flush()
    act = lineage.activity(
        session,
        kind="feedback",
        agent=principal.actor,
        plan=f"feedback:{kind}",
        on_behalf_of=principal.partner_uuid,
        params={"ticket": note.ticket, "forward": row.forward},
    )
    art = lineage.artifact(
        session, kind="feedback", external_id=row.uuid, version=1, generated_by=act
    )
    source = latest_artifact(session, note.ticket)
    if source is not None:
        lineage.derive(session, derived=art, sources=[source], rel="derived_from", by=act)
    audit.append(
        session,
        [
            audit.Record(
                action="notify.feedback",
                actor=principal.actor,
                object_ref=f"notification:{note.ticket}",
                recipient_uuid=principal.partner_uuid,
                request_id=current_request_id(),
                details={"kind": kind, "feedback": row.uuid, "forward": row.forward},
            )
        ],
    )
    return row


def feedback_for_source(
    session: Session, *, principal: Principal, limit: int, after: int | None
) -> list[dict[str, Any]]:
    """Feedback on the caller's own items, anonymised unless its sender allowed attribution;
    the release to the source is audited."""
    stmt = (
        select(NotificationFeedback, Partner.uuid, Partner.name)
        .join(Partner, Partner.id == NotificationFeedback.from_partner_id)
        .where(NotificationFeedback.source_partner_id == principal.partner_id)
        .order_by(NotificationFeedback.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(NotificationFeedback.id > after)
    out = []
    for fb, org_uuid, org_name in session.execute(stmt):
        attributed = fb.forward == "attributed"
        out.append(
            {
                "id": fb.id,
                "uuid": fb.uuid,
                "event_uuid": fb.case_ref,
                "kind": fb.kind,
                "text": fb.text,
                "received_at": fb.received_at.isoformat(),
                "from": {"uuid": org_uuid, "name": org_name} if attributed else "via hub",
            }
        )
    if out:
        audit.append(
            session,
            [
                audit.Record(
                    action="feedback.release",
                    actor=principal.actor,
                    recipient_uuid=principal.partner_uuid,
                    channel=tlp.Channel.REST.value,
                    decision="allow",
                    request_id=current_request_id(),
                    details={"feedback": [f["uuid"] for f in out]},
                )
            ],
        )
    return out


def sightings_feedback(
    session: Session, *, principal: Principal, sightings: Sequence[tuple[str, int]]
) -> int:
    """MISP sightings (attribute uuid, type) a partner added, as feedback on the delivered
    notifications that carried those attributes to it or, through it, to its constituents:
    one feedback per notification, a false positive if any sighting said so. Forwarded to
    the source anonymised (a MISP sighting carries no consent to attribution)."""
    kinds: dict[str, str] = {}
    for attribute_uuid, sighting_type in sightings:
        kind = SIGHTING_FEEDBACK.get(sighting_type)
        if kind is not None and kinds.get(attribute_uuid) != "false-positive":
            kinds[attribute_uuid] = kind
    if not kinds:
        return 0
    rows = session.execute(
        select(Notification, Observation.attribute_uuid)
        .join(NotificationItem, NotificationItem.notification_id == Notification.id)
        .join(Observation, Observation.id == NotificationItem.observation_id)
        .where(
            Observation.attribute_uuid.in_(sorted(kinds)),
            Notification.sent_at.is_not(None),
            or_(
                Notification.recipient_partner_id == principal.partner_id,
                Notification.via_partner_id == principal.partner_id,
            ),
        )
        .order_by(Notification.id)
    ).all()
    per_note: dict[int, tuple[Notification, set[str]]] = {}
    for note, attribute_uuid in rows:
        per_note.setdefault(note.id, (note, set()))[1].add(attribute_uuid)
    for note, attributes in per_note.values():
        found = {kinds[a] for a in attributes}
        feedback(
            session,
            principal=principal,
            note=note,
            kind="false-positive" if "false-positive" in found else "ack",
            text="MISP sighting on " + ", ".join(sorted(attributes)),
            allow_attribution=False,
        )
    return len(per_note)


def expire_due(
    session: Session, *, days: int, now: datetime | None = None, limit: int = 100
) -> int:
    """Notifications nobody acknowledged within ``days`` of being made go to ``expired``:
    each recorded in the audit log and as a lineage ``expire`` activity on the notification.
    They stay readable by their recipient. Returns how many expired (at most ``limit``)."""
    now = now or utcnow()
    notes = list(
        session.scalars(
            claiming(
                select(Notification)
                .where(
                    Notification.status.in_(("pending", "sent")),
                    Notification.created_at <= now - timedelta(days=days),
                )
                .order_by(Notification.id)
                .limit(limit)
            )
        )
    )
    if not notes:
        return 0
    partner_ids = {n.recipient_partner_id or n.via_partner_id for n in notes}
    uuids = dict(
        session.execute(select(Partner.id, Partner.uuid).where(Partner.id.in_(partner_ids))).all()
    )
    records = []
    for note in notes:
        records.append(
            audit.Record(
                action="notify.expire",
                actor=agent_for(JOB_AGENT, note.exercise_id),  # an exercise's: its scope
                object_ref=f"notification:{note.ticket}",
                recipient_uuid=uuids.get(note.recipient_partner_id or note.via_partner_id),
                details={"was": note.status, "after_days": days},
            )
        )
        note.status = "expired"
        act = lineage.activity(
            session,
            kind="expire",
            agent=JOB_AGENT,
            plan=f"expire-after:{days}d",
            params={"ticket": note.ticket},
        )
        art = latest_artifact(session, note.ticket)
        if art is not None:
            lineage.use(session, by=act, artifact_id=art, role="expired")
    audit.append(session, records)
    session.flush()
    return len(notes)
