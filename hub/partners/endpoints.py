"""Operator REST for the partner registry: /api/v1/admin/partners."""

from __future__ import annotations

from fastapi import APIRouter

from hub.auth import service as keys
from hub.models import ApiKey, Partner
from hub.partners import repository, service
from hub.partners.schemas import (
    KeyCreate,
    KeyIssued,
    KeyRead,
    Me,
    OrganisationSummary,
    PartnerChangeRead,
    PartnerCreate,
    PartnerRead,
    PartnerUpdate,
    StatusChange,
)
from hub.routing import (
    AnyKey,
    HubRoute,
    Operator,
    OperatorOrAuditor,
    PageCursor,
    PageLimit,
    SessionDep,
    SettingsDep,
)
from hub.schemas import Page, decode_id_cursor, encode_cursor
from hub.vocabulary import NetworkFunction, PartnerStatus, PartnerType, Region, Sector, Tier

router = APIRouter(prefix="/api/v1/admin/partners", tags=["partners"], route_class=HubRoute)
# /api/v1/me: who am I, for any key.
me_router = APIRouter(prefix="/api/v1", tags=["me"], route_class=HubRoute)


def key_read(record: ApiKey, partner: Partner) -> KeyRead:
    return KeyRead(
        uuid=record.uuid,
        role=record.role,
        partner_uuid=partner.uuid,
        key_hint=record.key_hint,  # type: ignore[arg-type]
        comment=record.comment,
        created_at=record.created_at,
        created_by=record.created_by,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        last_used_at=record.last_used_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=PartnerRead,
    responses={409: {"description": "The name or uuid is taken"}},
)
def create_partner(body: PartnerCreate, session: SessionDep, who: Operator) -> PartnerRead:
    """Register a partner; it starts as a prospect."""
    partner = service.create(session, data=body, actor=who.actor)
    return service.to_read(partner)


@router.get("", response_model=Page[PartnerRead])
def list_partners(
    session: SessionDep,
    who: OperatorOrAuditor,
    tier: Tier | None = None,
    type: PartnerType | None = None,
    sector: Sector | None = None,
    function: NetworkFunction | None = None,
    region: Region | None = None,
    status: PartnerStatus | None = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Page[PartnerRead]:
    """List partners, oldest first, filtered; follow ``next_cursor`` for the next page."""
    after = decode_id_cursor(cursor)
    stmt = repository.filtered(
        tier=tier,
        type=type,
        sector=sector,
        function=function,
        region=region,
        status=status,
        after_id=after,
    )
    rows = repository.page(session, stmt, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[service.to_read(p) for p in rows],
        next_cursor=encode_cursor({"id": rows[-1].id}) if more else None,
    )


@router.get("/{uuid}", response_model=PartnerRead)
def get_partner(uuid: str, session: SessionDep, who: OperatorOrAuditor) -> PartnerRead:
    """One partner by uuid (or name)."""
    return service.to_read(service.get(session, ref=uuid))


@router.patch(
    "/{uuid}",
    response_model=PartnerRead,
    responses={409: {"description": "The name is taken"}},
)
def update_partner(
    uuid: str, body: PartnerUpdate, session: SessionDep, who: Operator
) -> PartnerRead:
    """Change the fields given; each change is kept in the history."""
    partner = service.get(session, ref=uuid)
    service.update(session, partner=partner, data=body, actor=who.actor)
    return service.to_read(partner)


@router.post(
    "/{uuid}/status",
    response_model=PartnerRead,
    responses={409: {"description": "The lifecycle does not allow this change"}},
)
def change_status(uuid: str, body: StatusChange, session: SessionDep, who: Operator) -> PartnerRead:
    """Move a partner along its lifecycle (409 when the lifecycle does not allow it)."""
    partner = service.get(session, ref=uuid)
    service.change_status(
        session, partner=partner, status=body.status, reason=body.reason, actor=who.actor
    )
    return service.to_read(partner)


@router.get("/{uuid}/history", response_model=Page[PartnerChangeRead])
def partner_history(
    uuid: str,
    session: SessionDep,
    who: OperatorOrAuditor,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Page[PartnerChangeRead]:
    """Every change to the partner: who, when, which fields, old → new."""
    partner = service.get(session, ref=uuid)
    after = decode_id_cursor(cursor)
    rows = repository.history(session, partner=partner, after_id=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[
            PartnerChangeRead(
                changed_at=r.changed_at, actor=r.actor, action=r.action, changes=r.changes
            )  # type: ignore[arg-type]
            for r in rows
        ],
        next_cursor=encode_cursor({"id": rows[-1].id}) if more else None,
    )


@router.post(
    "/{uuid}/keys",
    status_code=201,
    response_model=KeyIssued,
    responses={409: {"description": "A suspended or withdrawn partner gets no keys"}},
)
def create_key(
    uuid: str, body: KeyCreate, session: SessionDep, settings: SettingsDep, who: Operator
) -> KeyIssued:
    """Issue a key for the partner; the answer is the only time the key is shown."""
    partner = service.get(session, ref=uuid)
    issued = keys.create_key(
        session,
        partner=partner,
        role=body.role,
        expires_at=body.expires_at,
        comment=body.comment,
        actor=who.actor,
        secret=settings.secret,
    )
    return KeyIssued(key=issued.key, **key_read(issued.record, partner).model_dump())


@router.get("/{uuid}/keys", response_model=Page[KeyRead])
def list_keys(uuid: str, session: SessionDep, who: OperatorOrAuditor) -> Page[KeyRead]:
    """The partner's keys (never the keys themselves), revoked ones included."""
    partner = service.get(session, ref=uuid)
    return Page(
        items=[key_read(k, partner) for k in keys.list_keys(session, partner=partner)],
        next_cursor=None,
    )


@router.delete("/{uuid}/keys/{key_uuid}", response_model=KeyRead)
def revoke_key(uuid: str, key_uuid: str, session: SessionDep, who: Operator) -> KeyRead:
    """Revoke a key; it stops working at once."""
    partner = service.get(session, ref=uuid)
    record = keys.get_key(session, key_uuid=key_uuid, partner=partner)
    keys.revoke_key(session, record=record, actor=who.actor)
    return key_read(record, partner)


@me_router.get("/me", response_model=Me)
def me(session: SessionDep, who: AnyKey) -> Me:
    """The calling key, its role and its organisation."""
    partner = service.get(session, ref=who.partner_uuid)
    record = keys.get_key(session, key_uuid=who.key_uuid)
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
