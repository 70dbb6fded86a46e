"""Partner REST for shared information: submit, list, fetch, search, my releases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

import tlp
from hub import cursors
from hub.audit import releases
from hub.db import heavy_unit
from hub.errors import HubError, InvalidField, NotFound, recorded
from hub.intel import moments, offload, repository, schemas, service, stix
from hub.intel.submission import (
    STIX_MEDIA,
    check_may_submit,
    submitting_partner,
)
from hub.models import Attribute, Event, Partner, Release
from hub.responses import JSONResponse, stream_event
from hub.routing import (
    HubRoute,
    PageCursor,
    PageLimit,
    PartnerKey,
    PolicyDep,
    SessionDep,
    SettingsDep,
    Submitter,
    body_of,
    read_page,
    runtime_of,
)
from hub.sharing import feed, pages, rendered
from hub.sharing import stix as stix_release
from hub.sharing.events import release_event
from hub.sharing.recipients import Recipient
from hub.sharing.records import headers, obligation_body
from hub.sharing.view import EventSummary

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=HubRoute)


@router.post(
    "/events",
    status_code=201,
    response_model=schemas.Submitted,
    responses={
        200: {"model": schemas.Submitted, "description": "Nothing changed"},
        403: {"description": "This key may not submit, or an event of another organisation"},
    },
    openapi_extra=schemas.SUBMISSION_BODY,
)
def submit_events(
    request: Request,
    session: SessionDep,
    who: Submitter,
    policy: PolicyDep,
    settings: SettingsDep,
) -> Response:
    """Submit MISP events (one, or a list) or a STIX 2.1 bundle (`application/stix+json`)."""
    # The body is parsed, validated and converted before the first statement: the unit of
    # work (SQLite: the write lock) spans the database work only (DESIGN §4 rule 10).
    check_may_submit(who)
    body = body_of(request)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    prepared: stix.PreparedBundle | service.Prepared
    if media == STIX_MEDIA:
        prepared = stix.prepare_bundle(body, source_uuid=who.partner_uuid, policy=policy)
    else:
        drafted_for = _submitter_before_unit(request, who)
        prepared = offload.prepared_submission(
            body,
            default_distribution=settings.default_distribution,
            orgc=None
            if drafted_for is None
            else {"uuid": drafted_for.uuid, "name": drafted_for.name},
            policy=policy,
            sqlite=session.get_bind().dialect.name == "sqlite",
            offload_bytes=settings.ingest_offload_bytes,
            processes=settings.ingest_offload_processes,
        )
    if settings.ingest_offload_bytes and len(body) >= settings.ingest_offload_bytes:
        heavy_unit(session)  # SQLite: one large unit at a time, small writers first
    source = submitting_partner(session, who)
    if isinstance(prepared, stix.PreparedBundle) and source.uuid != who.partner_uuid:
        # An operator key of another organisation than the hub's own: label for the hub's.
        prepared = stix.prepare_bundle(body, source_uuid=source.uuid, policy=policy)
    try:
        with session.begin_nested():  # a refusal below leaves nothing of the submission
            if isinstance(prepared, service.Prepared):
                outcomes = service.ingest_events(
                    session,
                    payloads=prepared,
                    source=source,
                    actor=who.actor,
                    channel="rest",
                    policy=policy,
                    exercise=who.exercise_id,
                )
            else:
                outcomes = stix.ingest_bundle(
                    session,
                    body=prepared,
                    source=source,
                    actor=who.actor,
                    channel="rest",
                    policy=policy,
                    exercise=who.exercise_id,
                )
    except (service.ForeignEvent, service.UuidClash) as err:
        service.record_refusal(
            session, err, actor=who.actor, org_uuid=who.partner_uuid, channel="rest"
        )
        raise recorded(err) from None
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


def _submitter_before_unit(request: Request, who: Submitter) -> Partner | None:
    """The submitting organisation, read in a short read of its own before the unit of work,
    for drafting new events outside it (``hub.intel.drafts``); None when it may not submit
    (the unit refuses it, saying why). The unit reads it again: a draft made for another
    identity than the unit's is ignored."""
    maker = runtime_of(request).sessions
    with maker(bind=request.app.state.binds["plain"]) as reading:
        try:
            return submitting_partner(reading, who)
        except HubError:
            return None


def summary(item: EventSummary) -> dict[str, Any]:
    """An event as a listing shows it to its recipient: counts, timestamp and tags over what
    it receives (DESIGN.md §3, "What leaves the hub")."""
    row = item.row
    out = {
        "uuid": row.uuid,
        "info": row.info,
        "date": row.date,
        "timestamp": item.timestamp,
        "published": item.published,
        "tlp": item.label.value,
        "attribute_count": item.attribute_count,
        "tags": item.tags,
    }
    if not item.creator_hidden:
        out["orgc"] = {"uuid": row.orgc_uuid, "name": row.orgc_name}
    return out


def _is_tlp_tag(name: str) -> bool:
    try:
        return tlp.parse_tag(name).label is not None
    except tlp.TLPError:
        return True  # something TLP-like that is no label: never a stored tag either


@router.get("/events", response_model=schemas.EventList)
@read_page
def list_events(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    since: Annotated[int | None, Query(ge=0, description="event timestamp ≥ (epoch)")] = None,
    tag: Annotated[str | None, Query(max_length=255)] = None,
    type: Annotated[
        str | None, Query(max_length=64, description="has an attribute of type")
    ] = None,
    published: bool | None = None,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Response:
    """Events this partner may see, oldest change first (keyset cursor). Filters, counts,
    timestamps and pages are computed over what the partner receives."""
    secret = settings.secret
    query = cursors.fingerprint("events", since, tag, type, published)
    start, shown = _feed_position(session, secret, cursor, who=who, query=query)
    audience = tlp.audience_for(Recipient.of_principal(who).tlp, tlp.Channel.REST, policy)
    sql_tag = tag if tag and not _is_tlp_tag(tag) else None

    def fetch(position: Any, n: int) -> Any:
        stmt, params = repository.event_page(
            audience=audience,
            since=since,
            tag=sql_tag,
            published=published,
            type=type,
            after=position if position is not None else start,
            limit=n,
        )
        rows = session.connection().execute(stmt, params).all()  # Core rows: no ORM per row
        if shown is not None:
            shown.read(rows)
        return rows

    page = pages.release_event_page(
        session,
        to=who,
        channel=tlp.Channel.REST,
        policy=policy,
        fetch=fetch,
        position=lambda row: (row.changed_at, row.id),
        limit=limit,
        accept=_feed_filter(since, tag, published, type, shown),
        rows_for_partial=type is not None,
    )
    next_cursor = None
    if page.more:
        last = page.items[-1].row
        next_cursor = cursors.seal(
            secret,
            caller=who.scope,
            query=query,
            position=[last.changed_at.isoformat(), last.id, moments.now(session).isoformat()],
        )
    return JSONResponse(
        {
            "items": [summary(e) for e in page.items],
            "next_cursor": next_cursor,
            "tlp": obligation_body(page.obligation),
        },
        headers=headers(page.obligation, page.audit_seq),
    )


def _feed_filter(
    since: int | None,
    tag: str | None,
    published: bool | None,
    type: str | None,
    shown: feed.Shown | None,
) -> Callable[[EventSummary], bool]:
    """The change feed's filters, applied to what the partner receives of each event."""
    wanted = tag.casefold() if tag else None

    def accept(item: EventSummary) -> bool:
        if shown is not None and shown.unchanged(item):
            return False  # shown before, as it is now: only a hidden change moved it
        if since is not None and item.timestamp < since:
            return False
        if wanted is not None and not any(t.casefold() == wanted for t in item.tags):
            return False
        if published is not None and item.published is not published:
            return False
        if type is not None and not item.whole:
            # the SQL found an attribute of that type: is it one the partner receives?
            return item.release is not None and any(a.type == type for a in item.release.live)
        return True

    return accept


def _feed_position(
    session: Any, secret: str, cursor: str | None, *, who: Any, query: str
) -> tuple[tuple[datetime, int] | None, feed.Shown | None]:
    """The change feed's position from a cursor, and what the listing that issued it showed
    (None for a cursor from before cursors carried their issue time)."""
    if not cursor:
        return None, None
    pos = cursors.open_(secret, cursor, caller=who.scope, query=query)
    try:
        start = (datetime.fromisoformat(str(pos[0])), int(pos[1]))
        issued = datetime.fromisoformat(str(pos[2])) if len(pos) > 2 else None
    except (ValueError, TypeError, IndexError):
        raise InvalidField("cursor is not one this API handed out", field="cursor") from None
    return start, (feed.Shown(session, start, issued) if issued is not None else None)


@router.get(
    "/events/{uuid}",
    response_model=schemas.EventView,
    responses={
        200: {
            "description": "MISP JSON, or with `format=stix` a STIX 2.1 bundle",
            "content": {STIX_MEDIA: {"schema": schemas.StixBundle.model_json_schema()}},
        }
    },
)
@read_page
def get_event(
    uuid: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    format: Annotated[str, Query(pattern="^(misp|stix)$")] = "misp",
    include_deleted: bool = False,
) -> Response:
    """One event as MISP JSON (or `?format=stix`: a STIX 2.1 bundle), filtered for the caller.
    `include_deleted` adds the withdrawn elements this organisation had received, as
    deletions."""
    event = repository.by_uuid(session, uuid.lower())
    if event is None or not tlp.in_scope(event.exercise_id, Recipient.of_principal(who).tlp):
        # Another exercise's (or real traffic, for an exercise key) does not exist for the
        # caller: as the SQL pre-filters, nothing is decided or recorded about it.
        raise NotFound(f"no event {uuid}")
    if format == "misp" and rendered.wanted(event, settings.render_offload_attributes):
        # Large: decided and serialised in the pool, not in this process's GIL (L1).
        done = rendered.release_rendered(
            session,
            to=who,
            event=event,
            channel=tlp.Channel.REST,
            policy=policy,
            include_deleted=include_deleted,
            processes=settings.ingest_offload_processes,
        )
        if done.rendered is None or done.obligation is None:
            raise recorded(NotFound(f"no event {uuid}"))
        return Response(
            done.rendered,
            media_type="application/json",
            headers=headers(done.obligation, done.audit_seq),
        )
    delivery = release_event(
        session,
        to=who,
        event=event,
        # A STIX bundle is an export (DESIGN §3 lists it apart): RED never goes in one.
        channel=tlp.Channel.EXPORT if format == "stix" else tlp.Channel.REST,
        policy=policy,
        include_deleted=include_deleted,
    )
    if delivery.event is None or delivery.obligation is None:
        # Same answer as for an unknown uuid (a refusal must not confirm the event exists);
        # the denial's audit entry is committed all the same.
        raise recorded(NotFound(f"no event {uuid}"))
    out_headers = headers(delivery.obligation, delivery.audit_seq)
    if format == "stix":
        # Sightings are not rendered to STIX (a STIX sighting would name who saw it).
        bundle = stix_release.bundle_marked(
            stix.event_to_bundle(without_sightings(delivery.event)), event.exercise_id
        )
        return Response(orjson.dumps(bundle), media_type=STIX_MEDIA, headers=out_headers)
    # Recorded and committed before the first byte; streamed a chunk of elements at a time,
    # each let go once sent (the delivery was decided for this answer alone).
    return stream_event(
        delivery.event["Event"],
        after={"tlp": obligation_body(delivery.obligation)},
        headers=out_headers,
        release=True,
    )


def without_sightings(event: dict[str, Any]) -> dict[str, Any]:
    """A released event (``{"Event": …}``) without its attributes' sightings, for STIX."""
    inner = dict(event["Event"])

    def strip(attrs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in a.items() if k != "Sighting"} for a in attrs]

    inner["Attribute"] = strip(inner.get("Attribute") or [])
    inner["Object"] = [
        {**o, "Attribute": strip(o.get("Attribute") or [])} for o in inner.get("Object") or []
    ]
    return {"Event": inner}


@router.get("/attributes", response_model=schemas.AttributeList)
@read_page
def search_attributes(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    value: Annotated[str | None, Query(max_length=1024)] = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[int | None, Query(ge=0, description="attribute timestamp ≥ (epoch)")] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Response:
    """Attributes this partner may see (the restSearch use): by value, type, since. Pages are
    filled with released attributes only."""
    secret = settings.secret
    query = cursors.fingerprint("attributes", value, type, since)
    start = None
    if cursor:
        pos = cursors.open_(secret, cursor, caller=who.scope, query=query)
        if len(pos) != 1 or not isinstance(pos[0], int):
            raise InvalidField("cursor is not one this API handed out", field="cursor")
        start = pos[0]
    audience = tlp.audience_for(Recipient.of_principal(who).tlp, tlp.Channel.REST, policy)
    base = (
        select(Attribute, Event)
        .join(Event, Event.id == Attribute.event_id)
        .where(repository.readable(audience), Attribute.deleted.is_(False))
        .where(repository.attribute_cap(audience))
    )
    if value is not None:
        base = base.where(Attribute.value_key == value[:200], Attribute.value == value)
    if type is not None:
        base = base.where(Attribute.type == type)
    if since is not None:
        base = base.where(Attribute.timestamp >= since)

    def fetch(position: Any, n: int) -> Any:
        after = position if position is not None else start
        stmt = base if after is None else base.where(Attribute.id > after)
        return session.execute(stmt.order_by(Attribute.id).limit(n)).all()

    page = pages.release_attribute_page(
        session,
        to=who,
        channel=tlp.Channel.REST,
        policy=policy,
        fetch=fetch,
        position=lambda row: row[0].id,
        limit=limit,
    )
    next_cursor = None
    if page.more:
        next_cursor = cursors.seal(
            secret, caller=who.scope, query=query, position=[page.items[-1][0].id]
        )
    return JSONResponse(
        {
            "items": [doc for _a, _e, doc in page.items],
            "next_cursor": next_cursor,
            "tlp": obligation_body(page.obligation),
        },
        headers=headers(page.obligation, page.audit_seq),
    )


@router.get("/me/releases", response_model=schemas.MyReleases)
def my_releases(
    session: SessionDep,
    who: PartnerKey,
    settings: SettingsDep,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Response:
    """What this organisation received, and when (newest first)."""
    releases.catch_up(session)  # the index is derived in batches; bring it up to date first
    secret = settings.secret
    query = cursors.fingerprint("me/releases")
    before = None
    if cursor:
        pos = cursors.open_(secret, cursor, caller=who.scope, query=query)
        if len(pos) != 1 or not isinstance(pos[0], int):
            raise InvalidField("cursor is not one this API handed out", field="cursor")
        before = pos[0]
    # Only the key's own scope (``tlp.in_scope``): an exercise key's deliveries of its
    # exercise's events; a real key's of real events (and of events no longer stored: the
    # organisation's own history either way).
    scope = (
        Event.exercise_id.is_(None)
        if who.exercise_id is None
        else Event.exercise_id == who.exercise_id
    )
    stmt = (
        select(Release)
        .outerjoin(Event, Event.uuid == Release.event_uuid)
        .where(Release.recipient_uuid == who.partner_uuid, Release.allowed.is_(True), scope)
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
                    "tlp": r.tlp,
                    "audit_seq": r.audit_seq,
                }
                for r in rows
            ],
            "next_cursor": (
                cursors.seal(secret, caller=who.scope, query=query, position=[rows[-1].id])
                if more
                else None
            ),
        }
    )
