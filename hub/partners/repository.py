"""Queries over partners."""

from __future__ import annotations

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, selectinload

from hub.models import Partner, PartnerChange, PartnerFunction, PartnerSector

LOAD_ALL = (
    selectinload(Partner.sectors),
    selectinload(Partner.functions),
    selectinload(Partner.constituency),
    selectinload(Partner.contacts),
)


def by_uuid(session: Session, uuid: str) -> Partner | None:
    return session.scalar(select(Partner).where(Partner.uuid == uuid).options(*LOAD_ALL))


def by_name(session: Session, name: str) -> Partner | None:
    stmt = select(Partner).where(Partner.name_key == name.casefold()).options(*LOAD_ALL)
    return session.scalar(stmt)


def hub_org(session: Session) -> Partner | None:
    return session.scalar(select(Partner).where(Partner.is_hub_org.is_(True)).options(*LOAD_ALL))


def filtered(
    *,
    tier: str | None = None,
    type: str | None = None,
    sector: str | None = None,
    function: str | None = None,
    region: str | None = None,
    status: str | None = None,
    after_id: int | None = None,
) -> Select[tuple[Partner]]:
    stmt = select(Partner)
    if tier:
        stmt = stmt.where(Partner.tier == tier)
    if type:
        stmt = stmt.where(Partner.type == type)
    if region:
        stmt = stmt.where(Partner.region == region)
    if status:
        stmt = stmt.where(Partner.status == status)
    if sector:
        stmt = stmt.where(
            exists().where(PartnerSector.partner_id == Partner.id, PartnerSector.sector == sector)
        )
    if function:
        stmt = stmt.where(
            exists().where(
                PartnerFunction.partner_id == Partner.id, PartnerFunction.function == function
            )
        )
    if after_id is not None:
        stmt = stmt.where(Partner.id > after_id)
    return stmt.order_by(Partner.id)


def page(session: Session, stmt: Select[tuple[Partner]], *, limit: int) -> list[Partner]:
    return list(session.scalars(stmt.options(*LOAD_ALL).limit(limit)))


def history(
    session: Session, *, partner: Partner, after_id: int | None, limit: int
) -> list[PartnerChange]:
    stmt = select(PartnerChange).where(PartnerChange.partner_id == partner.id)
    if after_id is not None:
        stmt = stmt.where(PartnerChange.id > after_id)
    return list(session.scalars(stmt.order_by(PartnerChange.id).limit(limit)))


def count(session: Session) -> int:
    return session.scalar(select(func.count(Partner.id))) or 0
