"""/api/v1/me: who am I, for any key."""

from __future__ import annotations

from fastapi import APIRouter

from hub.auth import service
from hub.partners import service as partners
from hub.partners.endpoints import key_read
from hub.partners.schemas import Me, OrganisationSummary
from hub.routing import AnyKey, HubRoute, SessionDep

router = APIRouter(prefix="/api/v1", tags=["me"], route_class=HubRoute)


@router.get("/me", response_model=Me)
def me(session: SessionDep, who: AnyKey) -> Me:
    """The calling key, its role and its organisation."""
    partner = partners.get(session, ref=who.partner_uuid)
    record = service.get_key(session, key_uuid=who.key_uuid)
    return Me(
        role=who.role,
        key=key_read(record, partner),
        organisation=OrganisationSummary(
            uuid=partner.uuid,
            name=partner.name,
            type=partner.type,
            tier=partner.tier,  # type: ignore[arg-type]
            status=partner.status,
            tlp_accepted=partner.tlp_accepted_at is not None,  # type: ignore[arg-type]
            hub_organisation=partner.is_hub_org,
        ),
    )
