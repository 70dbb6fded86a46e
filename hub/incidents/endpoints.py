"""Incident handling over REST: the incident support registry (operators and the partner
itself), the reporting-obligation table (operators), "who helps me now" (a public route and
a richer partner route) and incident cases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

import tlp
from hub.incidents import advisories, cases, referral, repository, service
from hub.incidents.schemas import (
    CaseClose,
    CaseCreate,
    CaseLink,
    CaseRead,
    CaseReferral,
    CaseSummary,
    CaseToProduct,
    HelpAnswer,
    HelpRequest,
    IncidentSupportBody,
    IncidentSupportRead,
    ObligationRead,
    SectorObligations,
)
from hub.intel.submission import submitting_partner
from hub.knowledge import lessons
from hub.knowledge import views as knowledge_views
from hub.knowledge.schemas import ProductOut
from hub.partners import service as partners
from hub.responses import JSONResponse
from hub.routing import (
    HubRoute,
    Operator,
    OperatorOrAuditor,
    PageCursor,
    PageLimit,
    PartnerKey,
    PolicyDep,
    RoleGuard,
    SessionDep,
    SettingsDep,
    Submitter,
    limit_public,
    public,
    real_traffic_only,
)
from hub.schemas import Page, decode_id_cursor, encode_cursor
from hub.sharing.recipients import Recipient
from hub.sharing.records import headers, obligation, obligation_body
from hub.vocabulary import OrganisationSize, OrganisationType, Region, Role, Sector

router = APIRouter(
    tags=["incidents"], route_class=HubRoute, dependencies=[Depends(real_traffic_only)]
)
PartnerOnly = Annotated[Any, Depends(RoleGuard(Role.PARTNER))]
THROTTLE_SCOPE = "incident-help"


# --- the incident support registry -----------------------------------------------------------


@router.get("/api/v1/admin/partners/{uuid}/incident-support", response_model=IncidentSupportRead)
def admin_get_support(uuid: str, session: SessionDep, who: OperatorOrAuditor) -> Any:
    """The incident support the partner offers (404 when it registered none)."""
    partner = partners.get(session, ref=uuid)
    return service.support_read(partner, service.get_support(session, partner=partner))


@router.put("/api/v1/admin/partners/{uuid}/incident-support", response_model=IncidentSupportRead)
def admin_put_support(
    uuid: str, body: IncidentSupportBody, session: SessionDep, who: Operator
) -> Any:
    """Set the incident support the partner offers; the change goes to its history."""
    partner = partners.get(session, ref=uuid)
    row = service.put_support(session, partner=partner, body=body, actor=who.actor)
    return service.support_read(partner, row)


@router.delete("/api/v1/admin/partners/{uuid}/incident-support", status_code=204)
def admin_delete_support(uuid: str, session: SessionDep, who: Operator) -> Response:
    """Remove the partner's incident support entry; kept in its history."""
    partner = partners.get(session, ref=uuid)
    service.delete_support(session, partner=partner, actor=who.actor)
    return Response(status_code=204)


@router.get(
    "/api/v1/me/incident-support",
    response_model=IncidentSupportRead,
    responses={404: {"description": "Your organisation has registered no incident support"}},
)
def my_support(session: SessionDep, who: PartnerKey) -> Any:
    """The incident support the caller's organisation offers."""
    partner = partners.get(session, ref=who.partner_uuid)
    return service.support_read(partner, service.get_support(session, partner=partner))


@router.put("/api/v1/me/incident-support", response_model=IncidentSupportRead)
def put_my_support(body: IncidentSupportBody, session: SessionDep, who: PartnerOnly) -> Any:
    """Set the incident support the caller's organisation offers (a partner key; machine
    keys do not maintain the registry)."""
    partner = partners.get(session, ref=who.partner_uuid)
    row = service.put_support(session, partner=partner, body=body, actor=who.actor)
    return service.support_read(partner, row)


# --- the reporting-obligation table ----------------------------------------------------------


@router.get("/api/v1/admin/reporting-obligations", response_model=list[ObligationRead])
def list_obligations(
    session: SessionDep, who: OperatorOrAuditor, sector: Sector | None = None
) -> Any:
    """The legal reporting obligations per sector, as the hub answers them."""
    rows = repository.obligations(session, sector=sector.value if sector else None)
    return [service.obligation_read(r) for r in rows]


@router.put("/api/v1/admin/reporting-obligations/{sector}", response_model=list[ObligationRead])
def put_obligations(
    sector: Sector, body: SectorObligations, session: SessionDep, who: Operator
) -> Any:
    """Replace the sector's reporting steps (audited, old → new)."""
    rows = service.replace_obligations(session, sector=sector, body=body, actor=who.actor)
    return [service.obligation_read(r) for r in rows]


# --- who helps me now ------------------------------------------------------------------------


def _answer(
    session: Any,
    *,
    request: HelpRequest,
    values: list[Any],
    to: Recipient,
    channel: tlp.Channel,
    policy: tlp.Policy,
    public_route: bool,
) -> JSONResponse:
    chosen = referral.candidates(
        session, sector=request.sector, region=request.region, values=values
    )
    organisations = [
        item for c in chosen if (item := referral.listed(c, public=public_route)) is not None
    ]
    duties = referral.obligations(
        session, sector=request.sector, region=request.region, size=request.size, chosen=chosen
    )
    page = advisories.released(
        session, to=to, channel=channel, policy=policy, sector=request.sector.value
    )
    body = {
        "organisation": {
            "sector": request.sector.value,
            "region": request.region.value,
            "type": request.type.value,
            "size": request.size.value,
        },
        "organisations": organisations,
        "reporting_obligations": duties,
        "advisories": [advisories.shown(item) for item in page.items],
        "tlp": obligation_body(page.obligation),
    }
    return JSONResponse(body, headers=headers(page.obligation, page.audit_seq))


@router.get(
    "/public/incident-help",
    response_model=HelpAnswer,
    dependencies=[Depends(public)],
    responses={429: {"description": "Too many requests from this address (Retry-After)"}},
)
def public_incident_help(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    sector: Sector,
    region: Region,
    type: OrganisationType,
    size: OrganisationSize,
) -> Response:
    """Who helps an organisation with an incident, without a key: the organisations to turn
    to and why, the sector's reporting duties, and TLP:CLEAR advisories only. No network
    identifiers here (the constituency registry cannot be probed); rate-limited per address."""
    limit_public(request, session, settings, THROTTLE_SCOPE)
    asked = HelpRequest(sector=sector, region=region, type=type, size=size)
    return _answer(
        session,
        request=asked,
        values=[],
        to=advisories.PUBLIC,
        channel=tlp.Channel.FEED,
        policy=policy,
        public_route=True,
    )


@router.post("/api/v1/incidents/help", response_model=HelpAnswer)
def incident_help(
    body: HelpRequest, session: SessionDep, who: PartnerKey, policy: PolicyDep
) -> Response:
    """Who helps an organisation with an incident, for a partner: also matched on IP
    addresses, AS numbers and domains against constituencies, and with the CLEAR and GREEN
    advisories this partner may receive."""
    return _answer(
        session,
        request=body,
        values=referral.network_values(body),
        to=Recipient.of_principal(who),
        channel=tlp.Channel.REST,
        policy=policy,
        public_route=False,
    )


# --- incident cases --------------------------------------------------------------------------


def _case_answer(
    session: SessionDep, who: Any, case: Any, policy: Any, status: int = 200
) -> JSONResponse:
    """The case as the caller sees it, under the case's own label (``X-Hub-TLP``; the
    linked items are named by uuid only) and the audit entry that recorded the view."""
    body, seq = cases.read_recorded(session, who=who, case=case, policy=policy)
    duty = obligation([tlp.parse_label(f"tlp:{case.tlp}")])
    return JSONResponse(
        CaseRead.model_validate(body).model_dump(mode="json"),
        status_code=status,
        headers=headers(duty, seq),
    )


@router.post("/api/v1/incidents", status_code=201, response_model=CaseRead)
def open_case(body: CaseCreate, session: SessionDep, who: Submitter, policy: PolicyDep) -> Any:
    """Open an incident case for the caller's organisation (an operator: the hub's own)."""
    case = cases.open_case(session, who=who, body=body)
    return _case_answer(session, who, case, policy, 201)


@router.get("/api/v1/incidents", response_model=Page[CaseSummary])
def list_cases(
    session: SessionDep,
    who: Submitter,
    policy: PolicyDep,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Any:
    """The cases the caller sees (opened by its organisation, or referred to it; an
    operator: all), newest first."""
    items, next_id = cases.listing(
        session, who=who, after_id=decode_id_cursor(cursor), limit=limit, policy=policy
    )
    body = Page[CaseSummary].model_validate(
        {
            "items": items,
            "next_cursor": encode_cursor({"id": next_id}) if next_id is not None else None,
        }
    )
    # the titles listed go under the strictest label among the cases (CLEAR: none listed)
    duty = obligation(tlp.parse_label(f"tlp:{item['tlp']}") for item in items)
    return JSONResponse(body.model_dump(mode="json"), headers=headers(duty, None))


@router.get("/api/v1/incidents/{uuid}", response_model=CaseRead)
def get_case(uuid: str, session: SessionDep, who: Submitter, policy: PolicyDep) -> Any:
    """The case: for its opener, the partners referred in it and operators; else 404."""
    case = cases.visible(session, who=who, uuid=uuid, policy=policy)
    return _case_answer(session, who, case, policy)


@router.post(
    "/api/v1/incidents/{uuid}/items",
    status_code=201,
    response_model=CaseRead,
    responses={409: {"description": "The case is closed, or the event is linked already"}},
)
def link_item(
    uuid: str, body: CaseLink, session: SessionDep, who: Submitter, policy: PolicyDep
) -> Any:
    """Link a shared event the caller may receive to the case (404 for one it may not)."""
    case = cases.visible(session, who=who, uuid=uuid, policy=policy)
    cases.link_item(session, who=who, case=case, event_uuid=str(body.event_uuid), policy=policy)
    return _case_answer(session, who, case, policy, 201)


@router.post(
    "/api/v1/incidents/{uuid}/referrals",
    status_code=201,
    response_model=CaseRead,
    responses={409: {"description": "The case is closed, or its label may not go to them"}},
)
def refer(
    uuid: str, body: CaseReferral, session: SessionDep, who: Submitter, policy: PolicyDep
) -> Any:
    """Record a referral: who was sent to which partner (which then sees the case)."""
    case = cases.visible(session, who=who, uuid=uuid, policy=policy)
    cases.refer(session, who=who, case=case, body=body, policy=policy)
    return _case_answer(session, who, case, policy, 201)


@router.post(
    "/api/v1/incidents/{uuid}/close",
    response_model=CaseRead,
    responses={409: {"description": "The case is closed already"}},
)
def close_case(
    uuid: str, body: CaseClose, session: SessionDep, who: Submitter, policy: PolicyDep
) -> Any:
    """Close the case with its lessons learned (its opener or an operator)."""
    case = cases.visible(session, who=who, uuid=uuid, policy=policy)
    cases.close(session, who=who, case=case, body=body)
    return _case_answer(session, who, case, policy)


@router.post(
    "/api/v1/incidents/{uuid}/knowledge",
    status_code=201,
    response_model=ProductOut,
    responses={
        409: {"description": "The case is open, has a product already, or is AMBER+STRICT/RED"}
    },
)
def lessons_to_product(
    uuid: str, body: CaseToProduct, session: SessionDep, who: Submitter, policy: PolicyDep
) -> Response:
    """Turn a closed case's lessons learned into a knowledge product draft of the caller's
    organisation (its opener only; an operator for the hub's own cases): the case's label or
    stricter, its linked items and its opener as sources (credited by the knowledge rules),
    the case in its lineage. The draft then goes through review and publication as any
    product."""
    case = cases.visible(session, who=who, uuid=uuid, policy=policy)
    given = cases.lessons_of(session, who=who, case=case, policy=policy)
    product = lessons.draft_from_case(
        session,
        who=who,
        owner=submitting_partner(session, who),
        case=lessons.CaseLessons(**given),
        kind=body.kind,
        label=body.tlp,
        title=body.title,
        body=body.body,
        themes=body.themes,
        name_opener=body.name_opener,
        policy=policy,
    )
    view = knowledge_views.owner_view(session, product)
    return JSONResponse(
        view, status_code=201, headers=headers(obligation([tlp.Tlp(view["tlp"])]), None)
    )
