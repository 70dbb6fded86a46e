"""Incident handling (issue #19): the support partners offer, the legal reporting
obligations per sector, and incident cases with their linked items and referrals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, UUIDMixin, utcnow


class IncidentSupport(Base):
    """What incident support one partner offers, to whom, when and how to reach it.

    Lists are small (a handful of enumeration values) and read for every active partner at
    once by the referral, so they are JSON columns rather than join tables.
    """

    __tablename__ = "incident_support"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), unique=True
    )
    services: Mapped[list[str]] = mapped_column(JSONType)
    audience: Mapped[list[str]] = mapped_column(JSONType)
    sectors: Mapped[list[str]] = mapped_column(JSONType)
    regions: Mapped[list[str]] = mapped_column(JSONType)
    availability: Mapped[str] = mapped_column(String(16))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(320))
    contact_phone: Mapped[str] = mapped_column(String(32))
    # Listed on the public route: off unless the partner or an operator says so.
    public: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


class ReportingObligation(Base):
    """One step of the legal reporting duty of one sector (NIS2 art. 23, the Cbw)."""

    __tablename__ = "reporting_obligations"
    __table_args__ = (UniqueConstraint("sector", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sector: Mapped[str] = mapped_column(String(48), index=True)
    step: Mapped[str] = mapped_column(String(32))
    deadline: Mapped[str] = mapped_column(String(64))  # "24 hours", "72 hours", "one month"
    deadline_hours: Mapped[int] = mapped_column(Integer)  # for ordering; a month as 720
    report_to: Mapped[list[str]] = mapped_column(JSONType)
    content: Mapped[str] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(255))


class IncidentCase(UUIDMixin, Base):
    """An incident a partner or the NCSC follows in the network (the warm phase)."""

    __tablename__ = "incident_cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    sector: Mapped[str] = mapped_column(String(48))
    tlp: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opener_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    opened_by: Mapped[str] = mapped_column(String(255))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closer_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    closed_by: Mapped[str | None] = mapped_column(String(255))
    closed_at: Mapped[datetime | None]
    lessons_learned: Mapped[str | None] = mapped_column(Text)


class IncidentCaseItem(Base):
    """A shared item (event) linked to a case during the incident."""

    __tablename__ = "incident_case_items"
    __table_args__ = (UniqueConstraint("case_id", "event_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("incident_cases.id", ondelete="CASCADE"), index=True
    )
    event_uuid: Mapped[str] = mapped_column(String(36))
    linker_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    linked_by: Mapped[str] = mapped_column(String(255))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class IncidentReferral(Base):
    """Who (an organisation, named as the case knows it) was referred to which partner,
    by whom, when."""

    __tablename__ = "incident_referrals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("incident_cases.id", ondelete="CASCADE"), index=True
    )
    referred: Mapped[str] = mapped_column(String(200))
    to_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    referred_by: Mapped[str] = mapped_column(String(255))
    referred_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)
