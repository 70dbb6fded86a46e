"""Partner REST for shared information: submit, list, fetch, search, my releases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import and_, or_, select

import tlp
from hub.audit import releases
from hub.auth.principal import Principal
from hub.errors import Forbidden, InvalidField, NotFound, error_response
from hub.intel import repository, service, stix
from hub.models import Attribute, Event, Partner, Release
from hub.partners import repository as partners
from hub.responses import JSONResponse
from hub.routing import HubRoute, PartnerKey, PolicyDep, SessionDep, Submitter, body_of, read_page
from hub.schemas import decode_cursor, decode_id_cursor, encode_cursor
from hub.sharing import service as sharing
from hub.vocabulary import PartnerStatus, Role

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=HubRoute)

STIX_MEDIA = "application/stix+json"
Limit = Annotated[int, Query(ge=1, le=500, description="page size (at most 500)")]
Cursor = Annotated[str | None, Query(max_length=300)]


def tlp_headers(obligation: tlp.Obligation) -> dict[str, str]:
    return {"X-Hub-TLP": obligation.label.display}


def obligation_body(obligation: tlp.Obligation) -> dict[str, Any]:
    return {
        "label": obligation.label.value,
        "handling": obligation.sentence,
        "strip_attribution": obligation.strip_attribution,
    }


def submitting_partner(session: Any, principal: Principal) -> Partner:
    """Whose submission this is: the key's partner, or the hub's own organisation for operators."""
    if principal.role is Role.OPERATOR:
        org = partners.hub_org(session)
        if org is None:
            raise Forbidden("the hub's own organisation does not exist yet; run `hub init`")
        return org
    partner = partners.by_uuid(session, principal.partner_uuid)
    assert partner is not None
    if partner.status != PartnerStatus.ACTIVE.value:
        raise Forbidden(f"a {partner.status} partner cannot submit information")
    if partner.tlp_accepted_at is None:
        raise Forbidden("a partner that has not accepted the network's TLP rules cannot submit")
    return partner


def parse_misp_payload(body: bytes) -> list[Any]:
    doc = service.parse_body(body)
    if isinstance(doc, dict) and "response" in doc:
        doc = doc["response"]
    if isinstance(doc, dict) and "request" in doc:
        doc = doc["request"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise InvalidField("no event in the request", field="Event")
    if isinstance(doc, dict) and doc.get("type") == "bundle":
        raise InvalidField(
            f"this is a STIX bundle: send it with Content-Type: {STIX_MEDIA}", field="Content-Type"
        )
    return items


@router.post("/events", status_code=201)
def submit_events(
    request: Request,
    session: SessionDep,
    who: Submitter,
    policy: PolicyDep,
) -> Response:
    """Submit MISP events (one, or a list) or a STIX 2.1 bundle (`application/stix+json`)."""
    source = submitting_partner(session, who)
    body = body_of(request)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media == STIX_MEDIA:
        outcomes = stix.ingest_bundle(
            session, body=body, source=source, actor=who.actor, channel="rest", policy=policy
        )
    else:
        outcomes = service.ingest_events(
            session,
            payloads=parse_misp_payload(body),
            source=source,
            actor=who.actor,
            channel="rest",
            policy=policy,
        )
    changed = any(o.status in ("stored", "updated", "quarantined") for o in outcomes)
    return JSONResponse(
        {
            "items": [o.as_dict() for o in outcomes],
            "stored": [o.uuid for o in outcomes if o.status in ("stored", "updated")],
            "unchanged": [o.uuid for o in outcomes if o.status == "unchanged"],
            "quarantined": [o.uuid for o in outcomes if o.status == "quarantined"],
        },
        status_code=201 if changed else 200,
    )


def summary(event: Event) -> dict[str, Any]:
    out = {
        "uuid": event.uuid,
        "info": event.info,
        "date": event.date,
        "timestamp": event.timestamp,
        "published": event.published,
        "tlp": sharing.label_of(event.tlp_rank).value,
        "version": event.version,
        "attribute_count": event.attribute_count,
        "tags": orjson.Fragment(event.tags),  # stored as JSON text; sent as it is
    }
    if not event.chr:
        out["orgc"] = {"uuid": event.orgc_uuid, "name": event.orgc_name}
    return out


@router.get("/events")
@read_page
def list_events(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    since: Annotated[int | None, Query(ge=0, description="event timestamp ≥ (epoch)")] = None,
    tag: Annotated[str | None, Query(max_length=255)] = None,
    type: Annotated[
        str | None, Query(max_length=64, description="has an attribute of type")
    ] = None,
    published: bool | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Events this partner may see, oldest change first (keyset cursor)."""
    after = None
    if cursor:
        pos = decode_cursor(cursor, keys=("t", "id"))
        try:
            t = datetime.fromisoformat(str(pos["t"]))  # a forged one may be naive: UTC
            after = (t if t.tzinfo else t.replace(tzinfo=UTC), int(pos["id"]))  # type: ignore[call-overload]
        except ValueError:
            raise InvalidField("cursor is not one this API handed out", field="cursor") from None
    audience = tlp.audience_for(sharing.recipient_of(who), tlp.Channel.REST, policy)
    stmt, params = repository.event_page(
        audience=audience,
        since=since,
        tag=tag,
        published=published,
        type=type,
        after=after,
        limit=limit + 1,
    )
    rows = session.connection().execute(stmt, params).all()  # Core rows: no ORM per row
    more = len(rows) > limit
    rows = rows[:limit]
    page = sharing.release_index(session, principal=who, events=rows, channel="rest", policy=policy)
    next_cursor = (
        encode_cursor({"t": rows[-1].changed_at.isoformat(), "id": rows[-1].id}) if more else None
    )
    return JSONResponse(
        {
            "items": [summary(e) for e in page.items],
            "next_cursor": next_cursor,
            "tlp": obligation_body(page.obligation),
        },
        headers=tlp_headers(page.obligation),
    )


@router.get("/events/{uuid}")
@read_page
def get_event(
    uuid: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    format: Annotated[str, Query(pattern="^(misp|stix)$")] = "misp",
    include_deleted: bool = False,
) -> Response:
    """One event as MISP JSON (or `?format=stix`: a STIX 2.1 bundle), filtered for the caller."""
    event = repository.by_uuid(session, uuid.lower())
    if event is None:
        raise NotFound(f"no event {uuid}")
    delivery = sharing.release_event(
        session,
        principal=who,
        event=event,
        channel="rest",
        policy=policy,
        include_deleted=include_deleted,
    )
    if delivery.event is None or delivery.obligation is None:
        # Same answer as for an unknown uuid (a refusal must not confirm the event exists),
        # but returned, not raised: the denial's audit entry must be committed.
        return error_response(NotFound(f"no event {uuid}"))
    if format == "stix":
        bundle = stix.event_to_bundle(delivery.event)
        return Response(
            orjson.dumps(bundle), media_type=STIX_MEDIA, headers=tlp_headers(delivery.obligation)
        )
    body = dict(delivery.event)
    body["tlp"] = obligation_body(delivery.obligation)
    return JSONResponse(body, headers=tlp_headers(delivery.obligation))


@router.get("/attributes")
@read_page
def search_attributes(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    value: Annotated[str | None, Query(max_length=1024)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[int | None, Query(ge=0, description="attribute timestamp ≥ (epoch)")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Attributes this partner may see (the restSearch use): by value, type, since."""
    after = decode_id_cursor(cursor)
    recipient = sharing.recipient_of(who)
    audience = tlp.audience_for(recipient, tlp.Channel.REST, policy)
    cap = audience.max_label.rank if audience.max_label else -1
    stmt = (
        select(Attribute, Event)
        .join(Event, Event.id == Attribute.event_id)
        .where(repository.readable(audience), Attribute.deleted.is_(False))
    )
    if audience.own_max is not None and audience.org_uuid:
        own = and_(
            Event.orgc_uuid == audience.org_uuid, Attribute.tlp_rank <= audience.own_max.rank
        )
        stmt = stmt.where(or_(own, Attribute.tlp_rank <= cap))
    else:
        stmt = stmt.where(Attribute.tlp_rank <= cap)
    if value is not None:
        stmt = stmt.where(Attribute.value_key == value[:200], Attribute.value == value)
    if type is not None:
        stmt = stmt.where(Attribute.type == type)
    if since is not None:
        stmt = stmt.where(Attribute.timestamp >= since)
    if after is not None:
        stmt = stmt.where(Attribute.id > after)
    rows = session.execute(stmt.order_by(Attribute.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    page = sharing.release_attributes(
        session, principal=who, rows=rows, channel="rest", policy=policy
    )
    return JSONResponse(
        {
            "items": page.items,
            "next_cursor": encode_cursor({"id": rows[-1][0].id}) if more else None,
            "tlp": obligation_body(page.obligation),
        },
        headers=tlp_headers(page.obligation),
    )


@router.get("/me/releases")
def my_releases(
    session: SessionDep,
    who: PartnerKey,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """What this organisation received, and when (newest first)."""
    releases.catch_up(session)  # the index is derived in batches; bring it up to date first
    before = decode_id_cursor(cursor)
    stmt = select(Release).where(
        Release.recipient_uuid == who.partner_uuid, Release.allowed.is_(True)
    )
    if before is not None:
        stmt = stmt.where(Release.id < before)
    rows = list(session.scalars(stmt.order_by(Release.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [
                {
                    "released_at": r.released_at.isoformat(),
                    "channel": r.channel,
                    "event_uuid": r.event_uuid,
                    "event_version": r.event_version,
                    "tlp": r.tlp,
                    "audit_seq": r.audit_seq,
                }
                for r in rows
            ],
            "next_cursor": encode_cursor({"id": rows[-1].id}) if more else None,
        }
    )
