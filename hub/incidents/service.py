"""The incident support registry and the reporting-obligation table. They flush, never
commit: the caller owns the transaction. Every change is audited; a change of a partner's
support is also kept in that partner's history (``hub.partners.service.record_change``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import InvalidField, NotFound
from hub.incidents import repository
from hub.incidents.schemas import (
    IncidentSupportBody,
    IncidentSupportRead,
    ObligationRead,
    SectorObligations,
)
from hub.models import IncidentSupport, Partner, ReportingObligation
from hub.partners import service as partners
from hub.vocabulary import Sector, SupportAudience

SUPPORT_ACTION = "incident-support"


def check_support(body: IncidentSupportBody) -> None:
    """Cross-field rules, each a 422 naming the field: ``members-only`` stands alone;
    ``sectors`` and ``regions`` go with audiences ``sector`` and ``region``, and only then."""
    scopes = set(body.audience)
    if SupportAudience.MEMBERS_ONLY in scopes and len(scopes) > 1:
        raise InvalidField(
            "audience: members-only cannot be combined with another audience", field="audience"
        )
    for scope, field, values in (
        (SupportAudience.SECTOR, "sectors", body.sectors),
        (SupportAudience.REGION, "regions", body.regions),
    ):
        if scope in scopes and not values:
            raise InvalidField(
                f"{field}: audience {scope.value} needs at least one {field[:-1]}", field=field
            )
        if scope not in scopes and values:
            raise InvalidField(
                f"{field}: given only with audience {scope.value}, which is not listed",
                field=field,
            )


def support_snapshot(row: IncidentSupport | None) -> dict[str, Any] | None:
    """The entry as the history keeps it (JSON values), None when there is none."""
    if row is None:
        return None
    return {
        "services": list(row.services),
        "audience": list(row.audience),
        "sectors": list(row.sectors),
        "regions": list(row.regions),
        "availability": row.availability,
        "contact": {
            "name": row.contact_name,
            "email": row.contact_email,
            "phone": row.contact_phone,
        },
        "public": row.public,
    }


def support_read(partner: Partner, row: IncidentSupport) -> IncidentSupportRead:
    snap = support_snapshot(row)
    assert snap is not None
    return IncidentSupportRead(
        **snap,
        partner_uuid=partner.uuid,
        partner_name=partner.name,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def get_support(session: Session, *, partner: Partner) -> IncidentSupport:
    row = repository.support_of(session, partner.id)
    if row is None:
        raise NotFound(f"partner {partner.uuid} has registered no incident support")
    return row


def put_support(
    session: Session, *, partner: Partner, body: IncidentSupportBody, actor: str
) -> IncidentSupport:
    """Set the partner's incident support (replacing what it had); the change, old → new,
    goes to the partner history and the audit log. An unchanged entry records nothing."""
    check_support(body)
    row = repository.support_of(session, partner.id)
    before = support_snapshot(row)
    if row is None:
        row = IncidentSupport(partner_id=partner.id)
        session.add(row)
    row.services = [s.value for s in body.services]
    row.audience = [a.value for a in body.audience]
    row.sectors = [s.value for s in body.sectors]
    row.regions = [r.value for r in body.regions]
    row.availability = body.availability.value
    row.contact_name = body.contact.name
    row.contact_email = str(body.contact.email)
    row.contact_phone = body.contact.phone
    row.public = body.public
    after = support_snapshot(row)
    if after != before:
        row.updated_by = actor
        partners.record_change(
            session,
            partner,
            action=SUPPORT_ACTION,
            actor=actor,
            changes={"incident_support": {"old": before, "new": after}},
        )
    session.flush()
    return row


def delete_support(session: Session, *, partner: Partner, actor: str) -> None:
    row = get_support(session, partner=partner)
    before = support_snapshot(row)
    session.delete(row)
    partners.record_change(
        session,
        partner,
        action=SUPPORT_ACTION,
        actor=actor,
        changes={"incident_support": {"old": before, "new": None}},
    )


# --- reporting obligations -------------------------------------------------------------------


def obligation_read(row: ReportingObligation) -> ObligationRead:
    return ObligationRead(
        sector=Sector(row.sector),
        step=row.step,  # type: ignore[arg-type]
        deadline=row.deadline,
        deadline_hours=row.deadline_hours,
        report_to=list(row.report_to),  # type: ignore[arg-type]
        content=row.content,
        legal_basis=row.legal_basis,
        source=row.source,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _obligation_dump(rows: list[ReportingObligation]) -> list[dict[str, Any]]:
    return [
        obligation_read(r).model_dump(mode="json", exclude={"updated_at", "updated_by"})
        for r in rows
    ]


def replace_obligations(
    session: Session, *, sector: Sector, body: SectorObligations, actor: str
) -> list[ReportingObligation]:
    """Replace the sector's steps with those given (none: the sector has no duty in the
    table). Non-vital organisations fall outside NIS2: they get no entry. Audited, old →
    new."""
    steps = [o.step for o in body.obligations]
    if len(steps) != len(set(steps)):
        raise InvalidField("obligations: each step at most once", field="obligations")
    if sector is Sector.NON_VITAL and body.obligations:
        raise InvalidField(
            "sector: non-vital organisations have no NIS2 reporting duty", field="sector"
        )
    before = _obligation_dump(repository.obligations(session, sector=sector.value))
    repository.clear_obligations(session, sector=sector.value)
    session.flush()
    for item in body.obligations:
        session.add(
            ReportingObligation(
                sector=sector.value,
                step=item.step.value,
                deadline=item.deadline,
                deadline_hours=item.deadline_hours,
                report_to=[r.value for r in item.report_to],
                content=item.content,
                legal_basis=item.legal_basis,
                source=item.source,
                updated_by=actor,
            )
        )
    session.flush()
    rows = repository.obligations(session, sector=sector.value)
    audit.append(
        session,
        [
            audit.Record(
                action="incidents.obligations",
                actor=actor,
                object_ref=f"sector:{sector.value}",
                request_id=current_request_id(),
                details={"old": before, "new": _obligation_dump(rows)},
            )
        ],
    )
    return rows
