"""``/misp``: the MISP server-sync API and the PyMISP calls partners use (reference/misp-sync.md).

Paths keep MISP's syntax: named parameters as ``key:value`` path segments, arrays as
``key[]:v``, an optional ``.json`` suffix, and both spellings of camelCase controllers
(CakePHP routes ``shadowAttributes`` and ``shadow_attributes`` alike). Every route needs a
partner or sync key; the key's organisation decides what it sees.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from hub.errors import NotFound
from hub.intel.endpoints import submitting_partner
from hub.intel.service import ForeignEvent, UuidClash, record_refusal
from hub.intel.snapshots import parse_body
from hub.intel.validation import describe_types
from hub.misp_compat import index, push, search, service, shapes, sightings
from hub.misp_compat.errors import PREFIX, SaveRefused, misp_url, render_misp_error
from hub.misp_compat.params import named_params, strip_json, truthy
from hub.misp_compat.service import Caller
from hub.responses import JSONResponse
from hub.routing import (
    HubRoute,
    PartnerKey,
    PolicyDep,
    SessionDep,
    SettingsDep,
    body_of,
    public_base_url,
    read_page,
)
from hub.sharing.records import headers
from hub.vocabulary import Role

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class MispRoute(HubRoute):
    """MISP answers JSON whatever ``Accept`` says, and its sync client sends
    ``Content-Type: application/json`` even on GET and HEAD (AppModel.php:3471-3474)."""

    def check_media(self, request: Request) -> None:
        return None


router = APIRouter(prefix=PREFIX, tags=["misp"], route_class=MispRoute)


def misp_route(
    methods: list[str], *bases: str, tail: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register one endpoint under each spelling of its path: ``base``, ``base.json``, and
    with ``tail`` also ``base/<named params>``."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for base in bases:
            paths = [base] if "{" in base else [base, base + ".json"]
            if tail:
                paths.append(base + "/{params:path}")
            for path in paths:
                for method in methods:  # one route per method: OpenAPI ids stay unique
                    router.api_route(path, methods=[method], name=endpoint.__name__)(endpoint)
        return endpoint

    return register


def url_params(request: Request) -> tuple[list[str], dict[str, Any]]:
    return named_params(str(request.path_params.get("params", "")))


def ident_of(request: Request) -> str:
    return strip_json(str(request.path_params["ident"]))


def json_body(request: Request) -> Any:
    raw = body_of(request)
    if not raw.strip():
        return {}
    return parse_body(raw)


def filters(request: Request) -> dict[str, Any]:
    """Named URL parameters and the JSON body together (the body wins), as MISP merges them."""
    _, named = url_params(request)
    body = json_body(request)
    if isinstance(body, dict):
        for key in ("request", "Event"):  # {"request": {...}} is accepted by MISP's searches
            if isinstance(body.get(key), dict) and len(body) == 1:
                body = body[key]
        return {**named, **body}
    return named


def base_url(request: Request, settings: Any) -> str:
    return public_base_url(request) + PREFIX


def _seq(audit_seq: int | None) -> dict[str, str]:
    """``X-Hub-Audit-Seq``: the audit entry of what this response carries (its proof)."""
    return {"X-Hub-Audit-Seq": str(audit_seq)} if audit_seq is not None else {}


def get_caller(who: PartnerKey, policy: PolicyDep, settings: SettingsDep) -> Caller:
    return Caller.of(who, policy, settings)


CallerDep = Annotated[Caller, Depends(get_caller)]


def returned_error(request: Request, err: Any) -> Response:
    """An error answered rather than raised, so the denial's audit entry is committed."""
    return render_misp_error(request, err)


# --- capability and connection test (reference §2.1, §7.2) ----------------------------------


@misp_route(["GET"], "/servers/getVersion")
def get_version(session: SessionDep, who: PartnerKey, settings: SettingsDep) -> Response:
    """What a MISP reads before pulling or pushing (ServerSyncTool:465-501): the version
    (configured, HUB_MISP_VERSION; must be 2.x), whether this key may push, and that
    request bodies must not be compressed."""
    return JSONResponse(
        {
            "version": settings.misp_version,
            "pymisp_recommended_version": settings.misp_version,
            "perm_sync": who.role is Role.SYNC,
            "perm_sighting": True,
            "perm_galaxy_editor": False,
            "perm_analyst_data": False,
            "uuid": service.hub_org_uuid(session) or "",
            "request_encoding": [],
            "filter_sightings": True,
        }
    )


@misp_route(["POST"], "/servers/postTest")
def post_test(request: Request, who: PartnerKey) -> Response:
    """The "Test connection" POST round trip: echo the body and the headers as received, so
    a proxy that rewrites them shows up (ServersController.php:1720-1748)."""
    body = json_body(request)
    return JSONResponse(
        {
            "body": body if isinstance(body, dict) else {},
            "headers": {
                "Content-type": request.headers.get("content-type", ""),
                "Accept": request.headers.get("accept", ""),
                "Authorization": "OK",
            },
        }
    )


@misp_route(["GET"], "/users/view/me")
def view_me(request: Request, who: PartnerKey, settings: SettingsDep) -> Response:
    """The calling key as a MISP user (UsersController.php:46-104); PyMISP needs ``User``,
    ``Role`` and ``UserSetting`` to initialise."""
    sync = who.role is Role.SYNC
    host = public_base_url(request).split("//", 1)[-1].split("/")[0]
    org = {"id": str(who.partner_id), "name": who.partner_name, "uuid": who.partner_uuid}
    return JSONResponse(
        {
            "User": {
                "id": str(who.key_id),
                "email": f"{who.role.value}.{who.key_uuid}@{host.split(':')[0]}",
                "org_id": org["id"],
                "role_id": "5" if sync else "3",
                "disabled": False,
                "autoalert": False,
                "termsaccepted": True,
            },
            "Role": {
                "id": "5" if sync else "3",
                "name": "Sync user" if sync else "User",
                "perm_add": True,
                "perm_modify": True,
                "perm_modify_org": False,
                "perm_publish": True,
                "perm_delegate": False,
                "perm_sync": sync,
                "perm_admin": False,
                "perm_audit": False,
                "perm_auth": True,
                "perm_site_admin": False,
                "perm_regexp_access": False,
                "perm_tagger": True,
                "perm_template": False,
                "perm_sharing_group": False,
                "perm_tag_editor": False,
                "perm_sighting": True,
                "perm_object_template": False,
                "perm_galaxy_editor": False,
                "perm_analyst_data": False,
            },
            "UserSetting": {},
            "Organisation": {**org, "local": True},
        }
    )


@misp_route(["GET"], "/attributes/describeTypes")
def describe(who: PartnerKey) -> Response:
    """The attribute types the hub accepts: PyMISP's own describeTypes.json."""
    return JSONResponse({"result": describe_types()})


# --- pull (reference §2.2) -------------------------------------------------------------------


@misp_route(["GET", "POST"], "/events/index", tail=True)
@read_page
def events_index(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """The events this key may receive, minimal (sync pull) or full (``search_index``)."""
    body = filters(request)
    page = index.index(session, caller, body)
    extra = _seq(page.audit_seq)
    return JSONResponse(page.rows, headers={"X-Result-Count": str(page.total), **extra})


@misp_route(["GET", "HEAD", "POST"], "/events/view/{ident}", tail=True)
@read_page
def view_event(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """One event, TLP-filtered for the caller and streamed; HEAD answers 200 or 404 only
    (ServerSyncTool:60-73)."""
    ident = ident_of(request)
    row = service.find_event(session, caller, ident)
    if row is None:
        if request.method == "HEAD":
            return Response(status_code=404)
        raise NotFound("Invalid event")
    if request.method == "HEAD":
        seen = service.visible(session, caller, row)
        return Response(status_code=200 if seen else 404)
    options = filters(request) if request.method == "POST" else url_params(request)[1]
    deleted = options.get("deleted", False)
    include_deleted = "1" in deleted if isinstance(deleted, list) else truthy(deleted)
    delivery = service.view(session, caller, row, include_deleted=include_deleted)
    if delivery is None or delivery.event is None or delivery.obligation is None:
        return returned_error(request, NotFound("Invalid event"))
    numbering = shapes.Numbering.load(session, caller.ids, row)
    return StreamingResponse(
        shapes.stream_event(delivery.event["Event"], row, numbering),
        media_type="application/json",
        headers=headers(delivery.obligation, delivery.audit_seq),
    )


@router.api_route("/events/{ident}", methods=["GET"], name="preview_event")
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
    source = submitting_partner(session, who)
    try:
        with session.begin_nested():  # a refusal below leaves nothing of the push
            pushed = push.push(session, caller, source=source, payload=payload, target=target)
    except push.ExistsElsewhere as exists:
        raise NotFound(
            "Event already exists, if you would like to edit it, use the url in the location "
            "header.",
            headers={
                "Location": f"{base_url(request, settings)}/events/{caller.event_id(exists.row.id)}"
            },
        ) from None
    except (ForeignEvent, UuidClash) as err:
        # Recorded, then answered (returned, not raised: the audit entry must be committed).
        record_refusal(
            session, err, actor=who.actor, org_uuid=who.partner_uuid, channel=service.CHANNEL.value
        )
        name = "Could not edit Event" if target is not None else "Could not add Event"
        return returned_error(request, SaveRefused(err.detail, name=name))
    outcome = pushed.outcome
    if pushed.row is None:  # held in quarantine: accepted, so MISP does not push it again
        return JSONResponse(
            {
                "saved": True,
                "success": True,
                "name": "Event held in quarantine",
                "message": outcome.detail or "unreadable marking",
                "url": misp_url(request),
                "Event": {"id": "0", "uuid": outcome.uuid},
            },
            status_code=202,
        )
    row = pushed.row
    if truthy(named.get("metadata", False)):
        return JSONResponse(push.metadata(caller, row))
    delivery = service.view(session, caller, row, include_deleted=False)
    if delivery is None or delivery.event is None:
        return JSONResponse(push.metadata(caller, row))
    numbering = shapes.Numbering.load(session, caller.ids, row)
    return JSONResponse(shapes.full_event(delivery.event["Event"], row, numbering))


@misp_route(["POST"], "/events/add", tail=True)
def add_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A new event from the caller's organisation; an existing uuid answers MISP's 404 with
    ``Location`` (EventsController.php:2222-2227) and the pusher retries as an edit."""
    return _push(request, session, caller, settings, None)


@misp_route(["POST", "PUT"], "/events/edit/{ident}", tail=True)
def edit_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A newer version of the caller's own event; not newer is MISP's exact 403
    (Event.php:946-954), which the pushing MISP treats as "nothing to do"."""
    return _push(request, session, caller, settings, ident_of(request))


@misp_route(["POST"], "/events/filterEventIdsForPush")
def filter_for_push(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Which of the offered events the hub wants ("push all", Server.php:1348-1371)."""
    body = json_body(request)
    return JSONResponse(push.uuids_to_push(session, caller, body=body))


# --- search (reference §7.3) -----------------------------------------------------------------


@misp_route(["POST"], "/events/restSearch", tail=True)
@read_page
def search_events(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    body = filters(request)
    found = search.search_events(session, caller, body)
    return JSONResponse(
        {"response": found.items},
        headers={"X-Result-Count": str(len(found.items)), **_seq(found.audit_seq)},
    )


@misp_route(["POST"], "/attributes/restSearch", tail=True)
@read_page
def search_attributes(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    body = filters(request)
    found = search.search_attributes(session, caller, body)
    return JSONResponse(
        {"response": {"Attribute": found.items}},
        headers={"X-Result-Count": str(len(found.items)), **_seq(found.audit_seq)},
    )


# --- sightings (reference §2.4) --------------------------------------------------------------


@misp_route(["POST"], "/sightings/add")
@router.api_route("/sightings/add/{ident}", methods=["POST"], name="add_sighting")
def add_sighting(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """A sighting on an attribute the caller may see (by uuid or id), or on every such
    attribute with the given value."""
    body = json_body(request)
    target = ident_of(request) if "ident" in request.path_params else None
    made = sightings.add_sighting(
        session, caller, body=body if isinstance(body, dict) else {}, target=target
    )
    if not made:
        return returned_error(request, NotFound("Invalid attribute or no attribute to sight"))
    return JSONResponse({"Sighting": made[0]})


@router.api_route("/sightings/restSearch/{context}", methods=["POST"], name="search_sightings")
def search_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Sightings on events (the sync pull) or attributes, for attributes the caller may see."""
    context = strip_json(str(request.path_params["context"]))
    if context not in ("event", "attribute"):
        raise NotFound(f"context {context!r} is not served; use event or attribute")
    body = json_body(request)
    found = sightings.search_sightings(
        session, caller, body=body if isinstance(body, dict) else {}, context=context
    )
    return JSONResponse({"response": found})


@router.api_route(
    "/sightings/filterSightingUuidsForPush/{ident}", methods=["POST"], name="filter_sightings"
)
def filter_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    body = json_body(request)
    known = sightings.known_sightings(session, caller, event_uuid=ident_of(request), body=body)
    return JSONResponse(known)


@router.api_route(
    "/sightings/bulkSaveSightings/{ident}", methods=["POST"], name="bulk_save_sightings"
)
def bulk_save_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Sightings on an event the caller may see; one it may not see answers as an unknown
    one (returned, not raised, so the visibility decision's audit entry is kept)."""
    ident = ident_of(request)
    body = json_body(request)
    count = sightings.save_sightings(session, caller, event_uuid=ident, body=body)
    if count is None:
        return returned_error(request, NotFound(f"Invalid event {ident}"))
    return JSONResponse({"saved": True, "success": f"{count} sightings added."})


# --- what the hub does not take part in: answered so MISP skips it quietly (§2.5-2.7) --------


@misp_route(["GET"], "/shadow_attributes/index", "/shadowAttributes/index", tail=True)
def proposals(who: PartnerKey) -> Response:
    """Proposals are not shared through the hub: an empty list ends MISP's paging."""
    return JSONResponse([])


@router.api_route("/events/pushProposals/{ident}", methods=["POST"], name="push_proposals")
def push_proposals(who: PartnerKey) -> Response:
    return JSONResponse({"success": True, "message": "Nothing to update.", "counter": 0})


@misp_route(["POST"], "/galaxy_clusters/restSearch", "/galaxyClusters/restSearch", tail=True)
def galaxy_clusters(who: PartnerKey) -> Response:
    """Custom galaxy clusters are not synced (galaxies travel as ``misp-galaxy:`` tags)."""
    return JSONResponse({"response": []})


@misp_route(
    ["POST"],
    "/analyst_data/indexMinimal",
    "/analystData/indexMinimal",
    "/analyst_data/filterAnalystDataForPush",
    "/analystData/filterAnalystDataForPush",
    tail=True,
)
def analyst_data(who: PartnerKey) -> Response:
    """Analyst data is off (``perm_analyst_data: false``); an empty answer if asked anyway."""
    return JSONResponse([])


@misp_route(["GET"], "/eventReports/add", "/event_reports/add")
def event_reports_probe(who: PartnerKey) -> Response:
    """The push-time probe: a ``description`` tells the pushing MISP to include event
    reports in the events it sends (Event.php:1240-1289)."""
    return JSONResponse(
        {
            "name": "Add Event Report",
            "description": "Event reports travel inside the events pushed to /events/add.",
            "url": "/eventReports/add",
        }
    )


def not_served(request: Request, who: PartnerKey) -> Response:
    """Any other MISP path: a key is still required, then MISP's 404."""
    raise NotFound(f"{misp_url(request)} is not part of the hub's MISP API")


for _method in _ALL_METHODS:  # last: only what no route above serves reaches it
    router.api_route("/{anything:path}", methods=[_method], name="not_served")(not_served)
