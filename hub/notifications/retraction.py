"""Retraction: when a source withdraws what a notification carried, its recipients are told, and
only they."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.intel import withdrawal
from hub.lineage import retraction
from hub.lineage import service as lineage
from hub.models import (
    Directive,
    Event,
    EventVersion,
    LineageArtifact,
    Notification,
    NotificationCorrection,
    NotificationItem,
    Observation,
    Partner,
)
from hub.notifications import matching
from hub.notifications.release import latest_artifact
from hub.notifications.service import JOB_AGENT


def retract(
    session: Session,
    *,
    event: dict[str, Any],
    event_uuid: str,
    version: int,
    event_art: int,
    agent: str = JOB_AGENT,
) -> int:
    """A new version withdrew (deleted, marked false positive) or changed attributes: record
    the retraction of every earlier release that carried them (``hub.lineage.retraction``);
    for notifications, find them by their observations, record a retraction or correction
    on each affected notification (and a new version of its lineage artifact), and withdraw
    pending ones."""
    retraction.retract_releases(
        session,
        event_uuid=event_uuid,
        version=version,
        state=event,
        event_art=event_art,
        agent=agent,
    )
    affected = _affected(session, _attribute_states(event), event_uuid, version)
    if not affected:
        return 0
    notes = session.scalars(select(Notification).where(Notification.id.in_(affected))).all()
    who = _withdrawn_by(session, event_uuid, version)
    records = [
        _correct(
            session,
            note,
            affected[note.id],
            who=who,
            version=version,
            event_art=event_art,
            agent=agent,
        )
        for note in notes
    ]
    audit.append(session, records)
    session.flush()
    return len(notes)


def _attribute_states(event: dict[str, Any]) -> dict[str, tuple[bool, str]]:
    """Attribute uuid → (gone, value) in the new version; an object's attributes are gone
    with it."""
    current: dict[str, tuple[bool, str]] = {}
    for attr in event.get("Attribute", []):
        current[attr["uuid"]] = (bool(attr.get("deleted")), str(attr.get("value")))
    for obj in event.get("Object", []):
        for attr in obj.get("Attribute", []):
            gone = bool(attr.get("deleted") or obj.get("deleted"))
            current[attr["uuid"]] = (gone, str(attr.get("value")))
    return current


def _affected(
    session: Session, current: dict[str, tuple[bool, str]], event_uuid: str, version: int
) -> dict[int, dict[str, list[str]]]:
    """Notification id → {"retraction" | "correction": attribute uuids} for the directives of
    earlier versions whose observation is gone or changed; pending ones are withdrawn here
    (nothing went out yet: nobody is told)."""
    rows = session.execute(
        select(Directive, Observation)
        .join(Observation, Observation.id == Directive.observation_id)
        .where(
            Observation.event_uuid == event_uuid,
            Observation.event_version < version,
            Observation.attribute_uuid.is_not(None),
            Directive.state.in_(("pending", "notified")),
        )
    ).all()
    affected: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    withdrawn = []
    for d, o in rows:
        assert o.attribute_uuid is not None
        state = current.get(o.attribute_uuid)
        deleted = state is None or state[0]
        changed = False
        if not deleted:
            assert state is not None
            new_values = {v.value for v in matching.values_of(o.attribute_type, state[1])}
            changed = o.value not in new_values
        if not (deleted or changed):
            continue
        if d.state == "pending":
            withdrawn.append(d.id)
        elif d.notification_id is not None:
            affected[d.notification_id]["retraction" if deleted else "correction"].append(
                o.attribute_uuid
            )
    if withdrawn:
        session.execute(
            update(Directive).where(Directive.id.in_(withdrawn)).values(state="withdrawn")
        )
    return affected


def _correct(
    session: Session,
    note: Notification,
    kinds: dict[str, list[str]],
    *,
    who: str,
    version: int,
    event_art: int,
    agent: str = JOB_AGENT,
) -> audit.Record:
    """Mark the notification's withdrawn or changed items, record the correction (and the
    notification retracted when nothing is left), its new lineage version; the audit record
    to append."""
    gone = sorted(set(kinds.get("retraction", [])))
    fixed = sorted(set(kinds.get("correction", [])))
    retracted_uuids = gone + fixed
    session.execute(
        update(NotificationItem)
        .where(
            NotificationItem.notification_id == note.id,
            NotificationItem.observation_id.in_(
                select(Observation.id).where(Observation.attribute_uuid.in_(retracted_uuids))
            ),
        )
        .values(retracted=True)
    )
    parts = []
    if gone:
        parts.append(
            f"{who} withdrew {len(gone)} observation(s) of this notification: " + ", ".join(gone)
        )
    if fixed:
        parts.append(f"The source corrected {len(fixed)} observation(s): " + ", ".join(fixed))
    message = " ".join(parts)
    kind = "retraction" if gone else "correction"
    session.add(
        NotificationCorrection(
            notification_id=note.id,
            kind=kind,
            attribute_uuids=retracted_uuids,
            event_version=version,
            message=message,
        )
    )
    note.correction = message
    left = session.scalar(
        select(func.count()).where(
            NotificationItem.notification_id == note.id, NotificationItem.retracted.is_(False)
        )
    )
    if not left:
        note.status = "retracted"
    partner_id = note.recipient_partner_id or note.via_partner_id
    partner = session.get(Partner, partner_id) if partner_id else None
    params = {"ticket": note.ticket, "attributes": retracted_uuids, "kind": kind}
    _new_lineage_version(session, note, partner=partner, params=params, event_art=event_art)
    return audit.Record(
        action="notify.retract",
        actor=agent,
        object_ref=f"notification:{note.ticket}",
        recipient_uuid=partner.uuid if partner else None,
        channel=tlp.Channel.NOTIFY_PARTNER.value,
        details={"kind": kind, "attributes": retracted_uuids, "event_version": version},
    )


def _new_lineage_version(
    session: Session,
    note: Notification,
    *,
    partner: Partner | None,
    params: dict[str, Any],
    event_art: int,
) -> None:
    """The retraction as a lineage activity, and the notification's next artifact version,
    a revision of the last one, derived from the event's new version."""
    act = lineage.activity(
        session,
        kind="retract",
        agent=JOB_AGENT,
        plan=retraction.PLAN,
        on_behalf_of=partner.uuid if partner else None,
        params=params,
    )
    old = latest_artifact(session, note.ticket)
    old_version = session.scalar(
        select(func.max(LineageArtifact.version)).where(
            LineageArtifact.kind == "notification",
            LineageArtifact.external_id == note.ticket,
        )
    )
    art = lineage.artifact(
        session,
        kind="notification",
        external_id=note.ticket,
        version=(old_version or 1) + 1,
        generated_by=act,
        tlp=note.tlp,
    )
    if old is not None:
        lineage.derive(session, derived=art, sources=[old], rel="revision_of", by=act)
    lineage.derive(session, derived=art, sources=[event_art], rel="derived_from", by=act)


def _withdrawn_by(session: Session, event_uuid: str, version: int) -> str:
    """Who withdrew, for the message: the source, or the hub (a verdict, a deletion)."""
    channel = session.scalar(
        select(EventVersion.channel)
        .join(Event, Event.id == EventVersion.event_id)
        .where(Event.uuid == event_uuid, EventVersion.version == version)
    )
    if channel == withdrawal.VERDICT_CHANNEL:
        return "The hub, finding them false positives,"
    if channel == withdrawal.DELETE_CHANNEL:
        return "The hub, deleting the event,"
    return "The source"
