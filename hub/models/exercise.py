"""Exercises (OTO): practising information sharing on the real hub, isolated by one rule.

An event, a key and a delivery carry the exercise's uuid (``exercise_id``; None is real
traffic): an item reaches a recipient only when both carry the same one (``tlp.in_scope``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, UUIDMixin, utcnow


class Exercise(UUIDMixin, Base):
    """An exercise: its period, its controller and whether it is running or closed."""

    __tablename__ = "exercises"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    controller: Mapped[str] = mapped_column(String(255))  # the operator who runs it
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned|running|closed
    # Match exercise items against participants' real constituencies for notification
    # (default: never; DESIGN of issue #20).
    match_real_constituencies: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(255))


class ExerciseParticipant(Base):
    """A partner taking part in an exercise."""

    __tablename__ = "exercise_participants"

    exercise_id: Mapped[int] = mapped_column(
        ForeignKey("exercises.id", ondelete="CASCADE"), primary_key=True
    )
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[str] = mapped_column(String(255))


class ExerciseInject(Base):
    """One inject of an exercise's scenario: a MISP event to send at ``send_at`` (None: by
    hand), and once sent, the event it became."""

    __tablename__ = "exercise_injects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exercise_id: Mapped[int] = mapped_column(
        ForeignKey("exercises.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    send_at: Mapped[datetime | None]
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # the MISP event, JSON
    event_uuid: Mapped[str | None] = mapped_column(String(36))
    sent_at: Mapped[datetime | None]


class ExerciseTarget(Base):
    """A fictional constituent of a participant in one exercise's scenario (the hospital the
    scenario is about): an IP prefix, AS number, domain or sector, matched for that
    exercise's items only and notified through the participant. Stored as constituency
    entries are, so the same indexed matching serves it; real traffic never meets it."""

    __tablename__ = "exercise_targets"
    __table_args__ = (
        Index("ix_exercise_targets_exercise_kind_value", "exercise_id", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    exercise_id: Mapped[int] = mapped_column(ForeignKey("exercises.id", ondelete="CASCADE"))
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
