"""Knowledge exchange REST (`/api/v1/knowledge`), the operators' lineage query, and the public
page and Atom feed of CLEAR products (`/public/knowledge`).

DESIGN §2 lets only /health and the documentation answer without a key; issue #19 asks for a
public page of CLEAR products "for a broader public". These two routes follow the issue, and
serve only what the release path gives an open feed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

import tlp
from hub import cursors
from hub.errors import InvalidField, NotFound
from hub.intel.submission import submitting_partner
from hub.knowledge import public, repository, schemas, service, taxonomy, views
from hub.knowledge.schemas import ProductIn, ProductList, ProductOut, ReviewIn
from hub.lineage import service as lineage
from hub.models import KnowledgeProduct
from hub.responses import JSONResponse
from hub.routing import (
    AnyKey,
    HubRoute,
    OperatorOrAuditor,
    PageCursor,
    PageLimit,
    PolicyDep,
    SessionDep,
    SettingsDep,
    Submitter,
    limit_public,
    public_base_url,
    read_page,
    real_traffic_only,
)
from hub.routing import (
    public as public_route,
)
from hub.sharing.records import headers, obligation

_CLEAR = {"X-Hub-TLP": tlp.Tlp.CLEAR.display}


class PublicRoute(HubRoute):
    """HTML or Atom for browsers and feed readers: any Accept header; errors in REST JSON."""

    def check_media(self, request: Request) -> None:
        return None


router = APIRouter(
    prefix="/api/v1/knowledge",
    tags=["knowledge"],
    route_class=HubRoute,
    dependencies=[Depends(real_traffic_only)],
)
admin_router = APIRouter(
    prefix="/api/v1/admin/knowledge",
    tags=["knowledge"],
    route_class=HubRoute,
    dependencies=[Depends(real_traffic_only)],
)
THROTTLE_SCOPE = "public-knowledge"
public_router = APIRouter(prefix="/public", tags=["knowledge"], route_class=PublicRoute)


@router.get("/taxonomy", response_model=schemas.Taxonomy)
def get_taxonomy(who: AnyKey) -> Response:
    """The maintained vocabulary (a MISP taxonomy): kinds and themes as machine tags."""
    return JSONResponse(taxonomy.taxonomy())


@router.post("", status_code=201, response_model=ProductOut)
def create_product(
    body: ProductIn, session: SessionDep, who: Submitter, policy: PolicyDep
) -> Response:
    """A new product as a draft of the caller's organisation, with its sources checked."""
    owner = submitting_partner(session, who)
    product = service.create_draft(session, who=who, owner=owner, body=body, policy=policy)
    return _own(views.owner_view(session, product), 201)


@router.get("", response_model=ProductList)
@read_page
def list_products(
    session: SessionDep,
    who: AnyKey,
    policy: PolicyDep,
    settings: SettingsDep,
    mine: bool = False,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Response:
    """`mine=true`: the caller's organisation's products, drafts included (operators and
    auditors: all). Otherwise the published products the release path gives the caller."""
    query = cursors.fingerprint("knowledge", mine)
    start = None
    if cursor:
        start = cursors.open_(settings.secret, cursor, caller=who.scope, query=query)
    if mine:
        return _own_page(session, who, start, limit, settings.secret, query)
    after = None
    if start is not None:
        try:
            after = (datetime.fromisoformat(str(start[0])), int(start[1]))
        except (ValueError, TypeError, IndexError):
            raise InvalidField("cursor is not one this API handed out", field="cursor") from None
    items, last, seq = views.released_page(
        session, who=who, policy=policy, after=after, limit=limit
    )
    next_cursor = None
    if last is not None:
        next_cursor = cursors.seal(
            settings.secret,
            caller=who.scope,
            query=query,
            position=[last[0].isoformat(), last[1]],
        )
    labels = [_label(i["tlp"]) for i in items]
    return JSONResponse(
        {"items": items, "next_cursor": next_cursor}, headers=headers(obligation(labels), seq)
    )


def _own_page(session: Any, who: Any, start: Any, limit: int, secret: str, query: str) -> Response:
    after = None
    if start is not None:
        if not isinstance(start, list) or len(start) != 1 or not isinstance(start[0], int):
            raise InvalidField("cursor is not one this API handed out", field="cursor")
        after = start[0]
    owner = None if service.is_staff(who) else who.partner_id
    rows = repository.owned_page(session, owner_id=owner, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        cursors.seal(secret, caller=who.scope, query=query, position=[rows[-1].id])
        if more
        else None
    )
    items = [views.owner_view(session, p) for p in rows]
    return JSONResponse(
        {"items": items, "next_cursor": next_cursor},
        headers=headers(obligation([_label(i["tlp"]) for i in items]), None),
    )


def _label(name: str) -> tlp.Tlp:
    return tlp.Tlp(name)


def _own(view: dict[str, Any], status_code: int = 200) -> Response:
    """An answer about the caller's own product (or any, to an operator): its label travels
    in ``X-Hub-TLP`` as on every answer that carries shared information."""
    return JSONResponse(
        view, status_code=status_code, headers=headers(obligation([_label(view["tlp"])]), None)
    )


def _product(session: Any, uuid: str) -> KnowledgeProduct:
    product = repository.product_by_uuid(session, uuid)
    if product is None:
        raise NotFound(f"no knowledge product {uuid}")
    return product


@router.get("/{uuid}", response_model=ProductOut)
def get_product(
    uuid: str,
    session: SessionDep,
    who: AnyKey,
    policy: PolicyDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """One product: every version for its owner and operators; otherwise the published one,
    as the release path gives it (a product the caller may not receive is a 404)."""
    product = _product(session, uuid)
    if views.may_read_rows(who, product):
        if version is not None and version > product.version:
            raise NotFound(f"product {uuid} has no version {version}")
        return _own(views.owner_view(session, product, version))
    if version is not None and version != product.published_version:
        raise NotFound(f"no knowledge product {uuid}")
    view, seq = views.release_one(session, who=who, product=product, policy=policy)
    return JSONResponse(view, headers=headers(obligation([_label(view["tlp"])]), seq))


@router.post("/{uuid}/versions", status_code=201, response_model=ProductOut)
def add_version(
    uuid: str, body: ProductIn, session: SessionDep, who: Submitter, policy: PolicyDep
) -> Response:
    """A new draft version (the published one stays out until this one is published)."""
    product = service.new_version(
        session, who=who, product=_product(session, uuid), body=body, policy=policy
    )
    return _own(views.owner_view(session, product), 201)


@router.post("/{uuid}/review", response_model=ProductOut)
def review_product(uuid: str, body: ReviewIn, session: SessionDep, who: Submitter) -> Response:
    """Approve the current version (the reviewer is not its author)."""
    product = service.review(session, who=who, product=_product(session, uuid), note=body.note)
    return _own(views.owner_view(session, product))


@router.post("/{uuid}/publish", response_model=ProductOut)
def publish_product(uuid: str, session: SessionDep, who: Submitter, policy: PolicyDep) -> Response:
    """Publish the reviewed version as the owner's event, released on every channel."""
    product = service.publish(session, who=who, product=_product(session, uuid), policy=policy)
    return _own(views.owner_view(session, product))


@admin_router.get("/used-by/{item_uuid}", response_model=schemas.UsedBy)
def used_by(item_uuid: str, session: SessionDep, who: OperatorOrAuditor) -> Response:
    """Lineage, forward: every product version that used this item (event or attribute)."""
    rows = repository.products_using(session, item_uuids=[item_uuid.lower()], event_uuid=None)
    return JSONResponse(
        {
            "item": item_uuid.lower(),
            "products": [
                {"uuid": p.uuid, "version": v.version, "state": p.state, "title": v.title}
                for p, v, _s in rows
            ],
        }
    )


@admin_router.get("/{uuid}/lineage", response_model=schemas.ProductLineage)
def product_lineage(uuid: str, session: SessionDep, who: OperatorOrAuditor) -> Response:
    """Lineage, backward: the source event versions every published version derives from."""
    product = _product(session, uuid)
    graph = lineage.derived_from(session, kind="knowledge", external_id=product.uuid)
    return JSONResponse({"product": product.uuid, "graph": graph})


@public_router.get("/knowledge", dependencies=[Depends(public_route)], response_class=Response)
def public_page(
    request: Request, session: SessionDep, settings: SettingsDep, policy: PolicyDep
) -> Response:
    """CLEAR products released to the public (HTML); rate-limited per address."""
    limit_public(request, session, settings, THROTTLE_SCOPE)
    products = views.public_products(session, policy=policy)
    html = public.html_page(products, base=public_base_url(request))
    return Response(html, media_type="text/html; charset=utf-8", headers=_CLEAR)


@public_router.get("/knowledge.atom", dependencies=[Depends(public_route)], response_class=Response)
def public_feed(
    request: Request, session: SessionDep, settings: SettingsDep, policy: PolicyDep
) -> Response:
    """CLEAR products released to the public (Atom 1.0); rate-limited per address."""
    limit_public(request, session, settings, THROTTLE_SCOPE)
    products = views.public_products(session, policy=policy)
    feed = public.atom_feed(products, base=public_base_url(request))
    return Response(feed, media_type=public.ATOM_MEDIA, headers=_CLEAR)
