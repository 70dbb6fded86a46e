"""Queries of incident handling."""

from __future__ import annotations

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session, selectinload

from hub.models import (
    IncidentCase,
    IncidentCaseItem,
    IncidentReferral,
    IncidentSupport,
    Partner,
    PartnerFunction,
    ReportingObligation,
)
from hub.vocabulary import NetworkFunction, PartnerStatus


def support_of(session: Session, partner_id: int) -> IncidentSupport | None:
    return session.scalar(select(IncidentSupport).where(IncidentSupport.partner_id == partner_id))


def obligations(session: Session, *, sector: str | None = None) -> list[ReportingObligation]:
    stmt = select(ReportingObligation)
    if sector is not None:
        stmt = stmt.where(ReportingObligation.sector == sector)
    order = (ReportingObligation.sector, ReportingObligation.deadline_hours)
    return list(session.scalars(stmt.order_by(*order)))


def clear_obligations(session: Session, *, sector: str) -> None:
    session.execute(delete(ReportingObligation).where(ReportingObligation.sector == sector))


def incident_handlers(session: Session) -> list[tuple[Partner, IncidentSupport | None]]:
    """Active partners that take part in incident handling, with their support entry (few:
    the network has about 200 partners), their sectors and constituency loaded."""
    stmt = (
        select(Partner, IncidentSupport)
        .outerjoin(IncidentSupport, IncidentSupport.partner_id == Partner.id)
        .where(
            Partner.status == PartnerStatus.ACTIVE.value,
            exists().where(
                PartnerFunction.partner_id == Partner.id,
                PartnerFunction.function == NetworkFunction.INCIDENT_HANDLING.value,
            ),
        )
        .options(selectinload(Partner.sectors), selectinload(Partner.constituency))
        .order_by(Partner.id)
    )
    return [(p, s) for p, s in session.execute(stmt).all()]


def case_by_uuid(session: Session, uuid: str) -> IncidentCase | None:
    return session.scalar(select(IncidentCase).where(IncidentCase.uuid == uuid))


def case_items(session: Session, case_id: int) -> list[IncidentCaseItem]:
    stmt = select(IncidentCaseItem).where(IncidentCaseItem.case_id == case_id)
    return list(session.scalars(stmt.order_by(IncidentCaseItem.id)))


def case_referrals(session: Session, case_id: int) -> list[IncidentReferral]:
    stmt = select(IncidentReferral).where(IncidentReferral.case_id == case_id)
    return list(session.scalars(stmt.order_by(IncidentReferral.id)))


def referred_partner_ids(session: Session, case_id: int) -> set[int]:
    stmt = select(IncidentReferral.to_partner_id).where(IncidentReferral.case_id == case_id)
    return set(session.scalars(stmt))


def partners_by_id(session: Session, ids: set[int]) -> dict[int, Partner]:
    if not ids:
        return {}
    return {p.id: p for p in session.scalars(select(Partner).where(Partner.id.in_(sorted(ids))))}


def cases_for(
    session: Session, *, partner_id: int | None, after_id: int | None, limit: int
) -> list[IncidentCase]:
    """Cases newest first: all of them (``partner_id`` None, an operator), or those the
    organisation opened or was referred to (its visibility is decided per case after)."""
    stmt = select(IncidentCase)
    if partner_id is not None:
        referred = select(IncidentReferral.case_id).where(
            IncidentReferral.to_partner_id == partner_id
        )
        stmt = stmt.where((IncidentCase.opener_id == partner_id) | IncidentCase.id.in_(referred))
    if after_id is not None:
        stmt = stmt.where(IncidentCase.id < after_id)
    return list(session.scalars(stmt.order_by(IncidentCase.id.desc()).limit(limit)))
