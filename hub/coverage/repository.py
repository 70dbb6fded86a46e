"""The rows coverage is counted from: the partner history, replayed in the order it happened."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import (
    Connection,
    ConnectionJob,
    Event,
    EventVersion,
    Notification,
    NotificationFeedback,
    Partner,
    PartnerChange,
    Release,
)


def history_before(session: Session, *, before: datetime) -> Iterator[Any]:
    """Every recorded change to every partner strictly before ``before``, per partner in the
    order the changes were made: ``(partner_id, uuid, is_hub_org, changed_at, changes)``."""
    stmt = (
        select(
            PartnerChange.partner_id,
            Partner.uuid,
            Partner.is_hub_org,
            PartnerChange.changed_at,
            PartnerChange.changes,
        )
        .join(Partner, Partner.id == PartnerChange.partner_id)
        .where(PartnerChange.changed_at < before)
        .order_by(PartnerChange.changed_at, PartnerChange.id)
    )
    yield from session.execute(stmt)


# --- what partners did: one query per kind of activity and period --------------------------
# Each answers the partners (by uuid) with at least one such act in [start, end). Exercise
# traffic (issue #20) is practice, not coverage: deliveries of an exercise's items, versions
# stored in an exercise, answers to an exercise's notifications and runs of exercise-mode
# connections are never counted.


def received(session: Session, *, start: datetime, end: datetime) -> set[str]:
    """Partners something was released to (the release index of the audit log)."""
    stmt = (
        select(Release.recipient_uuid)
        .outerjoin(Event, Event.uuid == Release.event_uuid)
        .where(
            Release.allowed.is_(True),
            Release.released_at >= start,
            Release.released_at < end,
            Event.exercise_id.is_(None),  # a real item's (or one no longer stored)
        )
        .distinct()
    )
    return set(session.scalars(stmt))


def shared(session: Session, *, start: datetime, end: datetime) -> set[str]:
    """Partners that were the source of a stored event version (any channel)."""
    stmt = (
        select(Partner.uuid)
        .join(EventVersion, EventVersion.source_partner_id == Partner.id)
        .join(Event, Event.id == EventVersion.event_id)
        .where(
            EventVersion.arrived_at >= start,
            EventVersion.arrived_at < end,
            Event.exercise_id.is_(None),
        )
        .distinct()
    )
    return set(session.scalars(stmt))


def acknowledged(session: Session, *, start: datetime, end: datetime) -> set[str]:
    """Partners that answered a notification (any feedback but a bare comment)."""
    stmt = (
        select(Partner.uuid)
        .join(NotificationFeedback, NotificationFeedback.from_partner_id == Partner.id)
        .join(Notification, Notification.id == NotificationFeedback.notification_id)
        .where(
            Notification.exercise_id.is_(None),
            NotificationFeedback.kind != "comment",
            NotificationFeedback.received_at >= start,
            NotificationFeedback.received_at < end,
        )
        .distinct()
    )
    return set(session.scalars(stmt))


def synced(session: Session, *, start: datetime, end: datetime) -> set[str]:
    """Partners whose connection (MISP pull or push, TAXII pull) finished a run."""
    stmt = (
        select(Partner.uuid)
        .join(Connection, Connection.partner_id == Partner.id)
        .join(ConnectionJob, ConnectionJob.connection_id == Connection.id)
        .where(
            Connection.exercise_id.is_(None),
            ConnectionJob.state == "done",
            ConnectionJob.finished_at >= start,
            ConnectionJob.finished_at < end,
        )
        .distinct()
    )
    return set(session.scalars(stmt))


def notifications(session: Session, *, start: datetime, end: datetime) -> list[Any]:
    """Notifications made in [start, end): ``(id, partner uuid, created_at, sent_at,
    first answer)`` where the partner is the recipient (direct) or the one passing it on
    (via), and the first answer is the first feedback other than a comment."""
    first = (
        select(
            NotificationFeedback.notification_id.label("nid"),
            func.min(NotificationFeedback.received_at).label("answered_at"),
        )
        .where(NotificationFeedback.kind != "comment", NotificationFeedback.received_at < end)
        .group_by(NotificationFeedback.notification_id)
        .subquery()
    )
    partner_id = func.coalesce(Notification.via_partner_id, Notification.recipient_partner_id)
    stmt = (
        select(
            Notification.id,
            Partner.uuid,
            Notification.created_at,
            Notification.sent_at,
            first.c.answered_at,
        )
        .join(Partner, Partner.id == partner_id)
        .outerjoin(first, first.c.nid == Notification.id)
        .where(
            Notification.created_at >= start,
            Notification.created_at < end,
            Notification.exercise_id.is_(None),
        )
        .order_by(Notification.id)
    )
    return list(session.execute(stmt))
