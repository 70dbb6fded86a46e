"""Organisations of the network: partners, the hub's own organisation, their constituencies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hub.models.base import Base, JSONType, UUIDMixin, utcnow


class Partner(UUIDMixin, Base):
    """An organisation known to the hub; its uuid is also its MISP organisation uuid."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Case-folded name: names are unique regardless of case ("Z-CERT" == "z-cert").
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(32))
    tier: Mapped[str] = mapped_column(String(16), index=True)
    region: Mapped[str] = mapped_column(String(32))
    legal_status: Mapped[str] = mapped_column(String(32), default="none")
    status: Mapped[str] = mapped_column(String(16), default="prospect", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    tlp_accepted_at: Mapped[datetime | None]
    is_hub_org: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    sectors: Mapped[list[PartnerSector]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="PartnerSector.sector"
    )
    functions: Mapped[list[PartnerFunction]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="PartnerFunction.function"
    )
    constituency: Mapped[list[ConstituencyEntry]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="ConstituencyEntry.id"
    )
    contacts: Mapped[list[PartnerContact]] = relationship(
        cascade="all, delete-orphan", lazy="raise", order_by="PartnerContact.id"
    )


class PartnerSector(Base):
    __tablename__ = "partner_sectors"

    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    sector: Mapped[str] = mapped_column(String(48), primary_key=True, index=True)


class PartnerFunction(Base):
    __tablename__ = "partner_functions"

    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True
    )
    function: Mapped[str] = mapped_column(String(48), primary_key=True, index=True)


class ConstituencyEntry(Base):
    """One thing a partner's constituency covers: an IP prefix, an AS number, a domain or a sector.

    Prefixes also store their first and last address as fixed-width hex strings
    (32 digits, IPv4 mapped into the low bits), so containment is an indexed range
    comparison that works the same on SQLite and PostgreSQL.
    """

    __tablename__ = "constituency_entries"
    __table_args__ = (
        Index("ix_constituency_entries_kind_value", "kind", "value"),
        Index("ix_constituency_entries_range", "family", "net_start", "net_end"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # prefix | asn | domain | sector
    value: Mapped[str] = mapped_column(String(255))  # canonical text form
    family: Mapped[int | None] = mapped_column(Integer)  # 4 or 6 for prefixes
    prefix_len: Mapped[int | None] = mapped_column(Integer)
    net_start: Mapped[str | None] = mapped_column(String(32))
    net_end: Mapped[str | None] = mapped_column(String(32))
    asn: Mapped[int | None] = mapped_column(BigInteger)


class PartnerContact(Base):
    __tablename__ = "partner_contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str | None] = mapped_column(String(100))
    pgp_key: Mapped[str | None] = mapped_column(Text)


class PartnerChange(Base):
    """History of a partner: who changed which fields when, old → new. Never updated."""

    __tablename__ = "partner_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), index=True
    )
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))  # create | update | status | import
    changes: Mapped[dict[str, object]] = mapped_column(JSONType)
