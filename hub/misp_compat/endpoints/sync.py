"""``/misp`` server sync (reference §2.2-2.4, §7.3): the pull (event index, view and its HEAD
probe), the push (add, edit, which offered events the hub wants), ``restSearch`` of events
and attributes in every export format, and sightings (add, search, list, push filter, bulk
save)."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from hub.errors import NotFound, recorded
from hub.intel.outcomes import ForeignEvent, UuidClash
from hub.intel.service import record_refusal
from hub.intel.submission import check_may_submit, submitting_partner
from hub.misp_compat import (
    attribute_search,
    exports,
    index,
    push,
    schemas,
    search,
    service,
    shapes,
    sightings,
)
from hub.misp_compat.endpoints.routes import (
    CallerDep,
    MispRouter,
    base_url,
    carried,
    filters,
    ident_of,
    json_body,
    url_params,
)
from hub.misp_compat.errors import SaveRefused
from hub.misp_compat.params import strip_json, truthy
from hub.misp_compat.service import Caller
from hub.responses import JSONResponse
from hub.routing import SessionDep, SettingsDep, read_page
from hub.sharing.records import headers, obligation

router = MispRouter()


# --- pull (reference §2.2) -------------------------------------------------------------------


@router.misp_route(
    ["GET", "POST"],
    "/events/index",
    tail=True,
    model=list[schemas.MispIndexRow],
    body=schemas.FILTERS,
)
@read_page
def events_index(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """The events this key may receive, minimal (sync pull) or full (``search_index``)."""
    body = filters(request)
    page = index.index(session, caller, body)
    extra = carried(page)
    return JSONResponse(page.rows, headers={"X-Result-Count": str(page.total), **extra})


@router.misp_route(
    ["GET", "HEAD", "POST"],
    "/events/view/{eventId}",
    tail=True,
    model=schemas.MispEventEnvelope,
    body=schemas.FILTERS,
)
@read_page
def view_event(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """One event, TLP-filtered for the caller and streamed; HEAD answers 200 or 404 only
    (ServerSyncTool:60-73)."""
    ident = ident_of(request)
    row = service.find_event(session, caller, ident)
    if row is None:
        if request.method == "HEAD":
            return Response(status_code=404, headers=headers(obligation([]), None))
        raise NotFound("Invalid event")
    if request.method == "HEAD":
        seen = service.listed(session, caller, row)
        if not seen.items:  # answered as a missing event: no audit entry named either
            return Response(status_code=404, headers=headers(obligation([]), None))
        return Response(status_code=200, headers=carried(seen))
    options = filters(request) if request.method == "POST" else url_params(request)[1]
    deleted = options.get("deleted", False)
    include_deleted = truthy(deleted)  # 1, true or [0, 1]: deleted elements too
    delivery = service.view(session, caller, row, include_deleted=include_deleted)
    if delivery is None or delivery.event is None or delivery.obligation is None:
        raise recorded(NotFound("Invalid event"))
    numbering = shapes.Numbering.load(session, caller.ids, row)
    with_sightings = not truthy(options.get("noSightings", False))
    return StreamingResponse(
        shapes.stream_event(delivery.event["Event"], row, numbering, sightings=with_sightings),
        media_type="application/json",
        headers=headers(delivery.obligation, delivery.audit_seq),
    )


@router.misp_route(["GET"], "/events/{eventId}", model=schemas.MispEventEnvelope)
@read_page
def preview_event(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """``GET /events/{id}``: "Explore remote server" in the MISP UI, and the target of the
    ``Location`` header of a repeated add."""
    return view_event(request, session, caller)


# --- push (reference §2.3) -------------------------------------------------------------------


def _push(
    request: Request,
    session: SessionDep,
    caller: Caller,
    settings: SettingsDep,
    target: str | None,
) -> Response:
    _, named = url_params(request)
    payload = json_body(request)
    who = caller.principal
    if target is None:  # validated before the first statement (DESIGN §4 rule 10)
        check_may_submit(who)
        payload = push.prepare_add(payload, default_distribution=settings.default_distribution)
    source = submitting_partner(session, who)
    try:
        with session.begin_nested():  # a refusal below leaves nothing of the push
            pushed = push.push(
                session,
                caller,
                source=source,
                payload=payload,
                target=target,
                default_distribution=settings.default_distribution,
            )
    except push.ExistsElsewhere as exists:
        raise NotFound(
            "Event already exists, if you would like to edit it, use the url in the location "
            "header.",
            headers={
                "Location": f"{base_url(request, settings)}/events/{caller.event_id(exists.row.id)}"
            },
        ) from None
    except (ForeignEvent, UuidClash) as err:
        # Recorded, then answered (raised as recorded: the audit entry is committed).
        record_refusal(
            session, err, actor=who.actor, org_uuid=who.partner_uuid, channel=service.CHANNEL.value
        )
        name = "Could not edit Event" if target is not None else "Could not add Event"
        raise recorded(SaveRefused(err.detail, name=name)) from None
    outcome = pushed.outcome
    if pushed.row is None:
        # Held in quarantine: kept (raised as recorded, so it is committed) but not stored,
        # answered as MISP answers a save that failed, so no client takes it for an event.
        name = "Could not edit Event" if target is not None else "Could not add Event"
        raise recorded(
            SaveRefused(
                f"Event held in quarantine ({outcome.quarantine_uuid}) until an operator "
                f"decides: {outcome.detail or 'unreadable marking'}",
                name=name,
            ),
        )
    row = pushed.row
    if truthy(named.get("metadata", False)):
        return JSONResponse(push.metadata(caller, row))
    delivery = service.view(session, caller, row, include_deleted=False, write_answer=True)
    if delivery is None or delivery.event is None:
        return JSONResponse(push.metadata(caller, row))
    numbering = shapes.Numbering.load(session, caller.ids, row)
    return JSONResponse(
        shapes.full_event(delivery.event["Event"], row, numbering),
        headers=headers(delivery.obligation or obligation([]), delivery.audit_seq),
    )


@router.misp_route(
    ["POST"],
    "/events/add",
    tail=True,
    model=schemas.MispEventEnvelope,
    body=schemas.MISP_EVENT_PAYLOAD,
    responses=schemas.PUSH_ERRORS,
)
def add_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A new event from the caller's organisation; an existing uuid answers MISP's 404 with
    ``Location`` (EventsController.php:2222-2227) and the pusher retries as an edit."""
    return _push(request, session, caller, settings, None)


@router.misp_route(
    ["POST", "PUT"],
    "/events/edit/{eventId}",
    tail=True,
    model=schemas.MispEventEnvelope,
    body=schemas.MISP_EVENT_PAYLOAD,
    responses=schemas.PUSH_ERRORS,
)
def edit_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A newer version of the caller's own event; not newer is MISP's exact 403
    (Event.php:946-954), which the pushing MISP treats as "nothing to do"."""
    return _push(request, session, caller, settings, ident_of(request))


@router.misp_route(
    ["POST"], "/events/filterEventIdsForPush", model=list[str], body=schemas.PUSH_OFFER
)
def filter_for_push(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Which of the offered events the hub wants ("push all", Server.php:1348-1371)."""
    body = json_body(request)
    # The caller's own offer answered: nothing shared by others, so the obligation of nothing.
    return JSONResponse(
        push.uuids_to_push(session, caller, body=body), headers=headers(obligation([]), None)
    )


# --- search (reference §7.3) -----------------------------------------------------------------


def _export(found: search.Found, fmt: str, body: dict[str, Any], *, events: bool) -> Response:
    """A search's answer in the format asked for (``hub.misp_compat.exports``); every format
    carries the audit entry that recorded the search."""
    headers = {"X-Result-Count": str(len(found.items)), **carried(found)}
    source: dict[str, Any] = {"events": found.items} if events else {"attributes": found.items}
    if fmt == "csv":
        text = exports.to_csv(**source, body=body)
        return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
    if fmt == "text":
        return Response(exports.to_text(**source), media_type="text/plain", headers=headers)
    if fmt == "stix2":
        return JSONResponse(exports.to_stix2(**source), headers=headers)
    if events:
        return JSONResponse({"response": found.items}, headers=headers)
    return JSONResponse({"response": {"Attribute": found.items}}, headers=headers)


@router.misp_route(
    ["POST"],
    "/events/restSearch",
    tail=True,
    model=schemas.MispEventSearch | schemas.StixBundle,
    body=schemas.FILTERS,
    responses=schemas.EXPORTS,
)
@read_page
def search_events(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Events the caller receives, narrowed as MISP narrows them; ``returnFormat`` json,
    csv, text or stix2."""
    body = filters(request)
    fmt = search.return_format(body)
    if fmt != "json":
        body["metadata"] = False
    found = search.search_events(session, caller, body)
    return _export(found, fmt, body, events=True)


@router.misp_route(
    ["POST"],
    "/attributes/restSearch",
    tail=True,
    model=schemas.MispAttributeSearch | schemas.StixBundle,
    body=schemas.FILTERS,
    responses=schemas.EXPORTS,
)
@read_page
def search_attributes(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Attributes the caller receives; ``returnFormat`` json, csv, text or stix2."""
    body = filters(request)
    fmt = search.return_format(body)
    if fmt == "stix2":
        body["includeContext"] = True
    found = attribute_search.search_attributes(session, caller, body)
    return _export(found, fmt, body, events=False)


# --- sightings (reference §2.4) --------------------------------------------------------------


@router.misp_route(
    ["POST"], "/sightings/add", model=schemas.MispSightingAnswer, body=schemas.SIGHTING
)
@router.misp_route(
    ["POST"],
    "/sightings/add/{attributeId}",
    model=schemas.MispSightingAnswer,
    body=schemas.SIGHTING,
)
def add_sighting(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """A sighting on an attribute the caller may see (by uuid or id), or on every such
    attribute with the given value."""
    body = json_body(request)
    target = ident_of(request) if "attributeId" in request.path_params else None
    made = sightings.add_sighting(
        session, caller, body=body if isinstance(body, dict) else {}, target=target
    )
    if not made.items:
        raise recorded(NotFound("Invalid attribute or no attribute to sight"))
    return JSONResponse({"Sighting": made.items[0]}, headers=carried(made))


@router.misp_route(
    ["POST"], "/sightings/restSearch", model=schemas.MispSightingSearch, body=schemas.FILTERS
)
@router.misp_route(
    ["POST"],
    "/sightings/restSearch/{context}",
    model=schemas.MispSightingSearch,
    body=schemas.FILTERS,
)
def search_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Sightings on events (the sync pull) or attributes, for attributes the caller may see;
    without a context, every such sighting matching the filters (a bounded page)."""
    context: str | None = None
    if "context" in request.path_params:
        context = strip_json(str(request.path_params["context"]))
        if context not in ("event", "attribute"):
            raise NotFound(f"context {context!r} is not served; use event or attribute")
    body = json_body(request)
    found = sightings.search_sightings(
        session, caller, body=body if isinstance(body, dict) else {}, context=context
    )
    return JSONResponse({"response": found.items}, headers=carried(found))


@router.misp_route(
    ["POST"],
    "/sightings/listSightings",
    tail=True,
    model=list[dict[str, Any]],
    body=schemas.FILTERS,
)
@read_page
def list_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """The sightings on one event or attribute the caller receives (PyMISP ``sightings``)."""
    body = filters(request)
    found = sightings.list_sightings(session, caller, body=body)
    return JSONResponse(found.items, headers=carried(found))


@router.misp_route(
    ["POST"],
    "/sightings/filterSightingUuidsForPush/{eventId}",
    model=list[str],
    body=schemas.ANY_JSON,
)
def filter_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    body = json_body(request)
    known = sightings.known_sightings(session, caller, event_uuid=ident_of(request), body=body)
    return JSONResponse(known)


@router.misp_route(
    ["POST"],
    "/sightings/bulkSaveSightings/{eventId}",
    model=schemas.MispBulkSightings,
    body=schemas.ANY_JSON,
)
def bulk_save_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Sightings on an event the caller may see; one it may not see answers as an unknown
    one (raised as recorded, so the visibility decision's audit entry is kept)."""
    ident = ident_of(request)
    body = json_body(request)
    count = sightings.save_sightings(session, caller, event_uuid=ident, body=body)
    if count is None:
        raise recorded(NotFound(f"Invalid event {ident}"))
    return JSONResponse({"saved": True, "success": f"{count} sightings added."})
