"""Target and victim notification (DSN): observations, matches with their evidence and routing
decisions, notifications with tickets, feedback and corrections.

The pipeline follows IntelMQ/mailgen (reference §1): observations → contact resolution (stored
with its evidence) → directives (one per observation × recipient, with the rule version and
each hop's TLP decision) → aggregation into one notification with a ticket → delivery record.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, UUIDMixin, utcnow


class NotifyMark(Base):
    """An event version the matching job has processed (the job picks versions without one)."""

    __tablename__ = "notify_marks"

    event_version_id: Mapped[int] = mapped_column(
        ForeignKey("event_versions.id", ondelete="CASCADE"), primary_key=True
    )
    matched_at: Mapped[datetime] = mapped_column(default=utcnow)
    observations: Mapped[int] = mapped_column(Integer, default=0)
    activity_id: Mapped[int | None] = mapped_column(Integer)


class TargetEntry(Base):
    """A network, AS number or domain of an organisation registered directly as a target: the
    organisation is a partner and is notified itself, not through another partner."""

    __tablename__ = "notify_target_entries"
    __table_args__ = (
        Index("ix_notify_target_entries_kind_value", "kind", "value"),
        Index("ix_notify_target_entries_range", "family", "net_start", "net_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # prefix | asn | domain | sector
    value: Mapped[str] = mapped_column(String(255))
    family: Mapped[int | None] = mapped_column(Integer)
    prefix_len: Mapped[int | None] = mapped_column(Integer)
    net_start: Mapped[str | None] = mapped_column(String(32))
    net_end: Mapped[str | None] = mapped_column(String(32))
    asn: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Observation(Base):
    """One matchable value of one attribute in one event version (immutable)."""

    __tablename__ = "notify_observations"
    __table_args__ = (Index("ix_notify_observations_event", "event_uuid", "attribute_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_version_id: Mapped[int] = mapped_column(
        ForeignKey("event_versions.id", ondelete="CASCADE"), index=True
    )
    event_uuid: Mapped[str] = mapped_column(String(36))
    event_version: Mapped[int] = mapped_column(Integer)
    attribute_uuid: Mapped[str | None] = mapped_column(String(36))
    attribute_type: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(16))  # ip | asn | domain | sector
    value: Mapped[str] = mapped_column(String(255))  # canonical form of the matched value
    kind: Mapped[str] = mapped_column(String(16))  # target | victim
    tlp_rank: Mapped[int] = mapped_column(Integer)
    distribution: Mapped[int] = mapped_column(Integer)  # effective (narrowed) addressing
    sg_members: Mapped[str | None] = mapped_column(Text)
    source_uuid: Mapped[str] = mapped_column(String(36))


class Directive(Base):
    """ "Notify recipient R of observation O": the match evidence and each hop's TLP decision.

    ``route`` is ``direct`` (a registered target: one hop, NCSC → organisation) or ``via``
    (a partner's constituency: NCSC → partner, partner → constituent). ``state`` is
    ``pending`` (waiting for aggregation), ``notified``, ``denied``, ``suppressed`` (a repeat
    within the window) or ``withdrawn`` (its attribute was retracted before it went out).
    """

    __tablename__ = "notify_directives"
    __table_args__ = (
        Index("ix_notify_directives_pending", "state", "recipient_ref"),
        Index("ix_notify_directives_repeat", "recipient_ref", "kind", "field", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observation_id: Mapped[int] = mapped_column(
        ForeignKey("notify_observations.id", ondelete="CASCADE"), index=True
    )
    # evidence
    field: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))  # the observed value
    entry_table: Mapped[str] = mapped_column(String(16))  # constituency | target
    entry_id: Mapped[int] = mapped_column(Integer)
    entry_kind: Mapped[str] = mapped_column(String(16))
    entry_value: Mapped[str] = mapped_column(String(255))  # the matched prefix/ASN/domain/sector
    rule_version: Mapped[str] = mapped_column(String(64))
    # routing
    route: Mapped[str] = mapped_column(String(8))  # direct | via
    recipient_ref: Mapped[str] = mapped_column(String(64))  # partner uuid or constituent ref
    recipient_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    via_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    case_ref: Mapped[str] = mapped_column(String(64))
    hops: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{channel, reason, ...}]
    allowed: Mapped[bool] = mapped_column(Boolean)
    policy_version: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    activity_id: Mapped[int | None] = mapped_column(Integer)
    notification_id: Mapped[int | None] = mapped_column(
        ForeignKey("notifications.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(UUIDMixin, Base):
    """One ticket: the observations of one case and kind for one recipient."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_recipient", "recipient_partner_id", "id"),
        Index("ix_notifications_via", "via_partner_id", "id"),
        Index("ix_notifications_ref_created", "recipient_ref", "created_at"),
        Index("ix_notifications_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket: Mapped[str] = mapped_column(String(24), unique=True)
    route: Mapped[str] = mapped_column(String(8))
    recipient_ref: Mapped[str] = mapped_column(String(64))
    recipient_name: Mapped[str] = mapped_column(String(255))
    recipient_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    via_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(String(16))
    case_ref: Mapped[str] = mapped_column(String(64))
    # The exercise whose item it tells of (None: real traffic): released only to keys of that
    # exercise (``tlp.in_scope``), mailed only to its participants, marked in the subject.
    exercise_id: Mapped[str | None] = mapped_column(
        ForeignKey("exercises.uuid", ondelete="RESTRICT"), index=True
    )
    tlp: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(24), default="pending")
    template: Mapped[str] = mapped_column(String(64))  # id@version
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)  # {"json": …, "text": {"nl", "en"}}
    body_sha256: Mapped[str] = mapped_column(String(64))
    correction: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class NotificationItem(Base):
    """An observation a notification carries (mailgen's directive ↔ sent, many to one)."""

    __tablename__ = "notification_items"

    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    directive_id: Mapped[int] = mapped_column(
        ForeignKey("notify_directives.id", ondelete="CASCADE"), primary_key=True
    )
    observation_id: Mapped[int] = mapped_column(
        ForeignKey("notify_observations.id", ondelete="CASCADE"), index=True
    )
    retracted: Mapped[bool] = mapped_column(Boolean, default=False)


class NotificationFeedback(UUIDMixin, Base):
    """What a recipient (or the partner passing it on) said about a notification."""

    __tablename__ = "notification_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    from_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    source_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    case_ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str | None] = mapped_column(Text)
    forward: Mapped[str] = mapped_column(String(16))  # anonymised | attributed
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationCorrection(Base):
    """A retraction or correction sent after the source withdrew or changed an item."""

    __tablename__ = "notification_corrections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # retraction | correction
    attribute_uuids: Mapped[list[str]] = mapped_column(JSONType)
    event_version: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationMail(Base):
    """The e-mail of one notification to its addressee's notification contacts.

    Its idempotency record: a notification with a row is never mailed again. Sending is
    send-then-mark in one transaction; the Message-ID is derived from the notification, so a
    send repeated after a crash before the commit carries the same Message-ID and the
    receiving side can drop the copy. ``state`` is ``queued`` (a failed attempt waits until
    ``next_attempt_at``), ``sent``, or ``withheld`` (the release path refused it: never sent).
    """

    __tablename__ = "notification_mails"
    __table_args__ = (Index("ix_notification_mails_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), unique=True
    )
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    recipients: Mapped[list[str]] = mapped_column(JSONType)
    language: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
