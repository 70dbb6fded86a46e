"""``/misp``: the MISP server-sync API and the PyMISP calls partners use (reference/misp-sync.md).

Paths keep MISP's syntax: named parameters as ``key:value`` path segments, arrays as
``key[]:v``, an optional ``.json`` suffix, and both spellings of camelCase controllers
(CakePHP routes ``shadowAttributes`` and ``shadow_attributes`` alike). Every route needs a
partner or sync key; the key's organisation decides what it sees.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.routing import Match
from starlette.types import Scope

from hub.errors import InvalidField, NotFound, allowed_methods, recorded, route_path
from hub.intel.outcomes import ForeignEvent, UuidClash
from hub.intel.service import record_refusal
from hub.intel.snapshots import parse_body
from hub.intel.submission import check_may_submit, submitting_partner
from hub.intel.validation import describe_types
from hub.misp_compat import (
    edits,
    elements,
    exports,
    index,
    push,
    schemas,
    search,
    service,
    shapes,
    sightings,
)
from hub.misp_compat.errors import PREFIX, MispErrorBody, SaveRefused, misp_url
from hub.misp_compat.params import named_params, strip_json, truthy
from hub.misp_compat.schemas import ID_PARAMS
from hub.misp_compat.service import Caller
from hub.models import Attribute, Event, EventObject
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
from hub.sharing.records import headers, obligation
from hub.vocabulary import Role

_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


class MispRoute(HubRoute):
    """MISP answers JSON whatever ``Accept`` says, and its sync client sends
    ``Content-Type: application/json`` even on GET and HEAD (AppModel.php:3471-3474).

    The endpoints read their path parameters from the request (one endpoint serves several
    spellings of a path); each route declares them in the OpenAPI document."""

    error_model = MispErrorBody
    checks_media = False

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        declared = {p.alias for p in self.dependant.path_params}
        missing = [n for n in re.findall(r"\{(\w+)(?::\w+)?\}", self.path) if n not in declared]
        if missing and self.include_in_schema:
            extra = dict(self.openapi_extra or {})
            extra["parameters"] = [*extra.get("parameters", []), *map(schemas.path_param, missing)]
            self.openapi_extra = extra

    def error_codes(self) -> set[int]:
        """A write names what it touches in its body too (an attribute by uuid, a tag's
        target): MISP answers 404 for one it cannot find."""
        codes = super().error_codes()
        if self.methods & {"POST", "PUT", "DELETE"}:
            codes.add(404)
        return codes

    def check_media(self, request: Request) -> None:
        return None


class NotServedRoute(MispRoute):
    """The catch-all after every MISP route: a path the hub does not serve is MISP's 404
    (after the key check). It steps aside for a path some route serves with another method,
    which is then a 405 with ``Allow`` (``hub.errors.method_not_allowed``)."""

    fallback = True

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and allowed_methods(scope["app"], route_path(scope)):
            return Match.NONE, {}
        return match, child


router = APIRouter(prefix=PREFIX, tags=["misp"], route_class=MispRoute)


def _register(path: str, method: str, endpoint: Callable[..., Any], doc: dict[str, Any]) -> None:
    """One route per method (OpenAPI ids stay unique). ``doc``: ``model`` (the JSON answer),
    ``body`` (the JSON schema of the body the endpoint reads itself), ``responses``."""
    extra = {}
    if doc.get("body") is not None and method in ("POST", "PUT"):
        extra = schemas.json_body(doc["body"])
    head = method == "HEAD"  # answers 200 or 404, without a body
    router.api_route(
        path,
        methods=[method],
        name=endpoint.__name__,
        response_model=None if head else doc.get("model"),
        response_class=Response if head else JSONResponse,
        responses=None if head else doc.get("responses"),
        openapi_extra=extra or None,
    )(endpoint)


def misp_route(
    methods: list[str], *bases: str, tail: bool = False, **doc: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register one endpoint under each spelling of its path: ``base``, ``base.json``, and
    with ``tail`` also ``base/<named params>``; ``doc`` as for ``_register``."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for base in bases:
            paths = [base] if "{" in base else [base, base + ".json"]
            if tail:
                paths.append(base + "/{params:path}")
            for path in paths:
                for method in methods:
                    _register(path, method, endpoint, doc)
        return endpoint

    return register


def ident_route(
    methods: list[str], *bases: str, param: str, **doc: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``base/{param}`` and ``base/{param}/<named params>`` for each spelling;
    ``param`` is named as in MISP's OpenAPI document (``eventId``, ``attributeId`` …)."""
    assert param in ID_PARAMS, param

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for base in bases:
            for path in (f"{base}/{{{param}}}", f"{base}/{{{param}}}/{{params:path}}"):
                for method in methods:
                    _register(path, method, endpoint, doc)
        return endpoint

    return register


def url_params(request: Request) -> tuple[list[str], dict[str, Any]]:
    return named_params(str(request.path_params.get("params", "")))


def ident_of(request: Request) -> str:
    """The element a path names (``eventId``, ``attributeId`` …): a number or a uuid."""
    name = next(n for n in ID_PARAMS if n in request.path_params)
    return strip_json(str(request.path_params[name]))


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


def _carried(found: Any) -> dict[str, str]:
    """``X-Hub-TLP`` and ``X-Hub-Audit-Seq`` of an answer that releases content: the handling
    obligation of the strictest element it released (CLEAR when nothing) and the audit
    entry that recorded it."""
    return headers(found.obligation, found.audit_seq)


def _head(found: Any) -> Response:
    """A HEAD answer: 200 with the view's headers, or 404 exactly as for a uuid the hub never
    had (no audit entry number: the refusal's entry would tell a hidden element from a
    missing one)."""
    if found.items:
        return Response(status_code=200, headers=_carried(found))
    return Response(status_code=404, headers=_carried(elements.Released()))


def get_caller(who: PartnerKey, policy: PolicyDep, settings: SettingsDep) -> Caller:
    return Caller.of(who, policy, settings)


CallerDep = Annotated[Caller, Depends(get_caller)]


# --- capability and connection test (reference §2.1, §7.2) ----------------------------------


@misp_route(["GET"], "/servers/getVersion", model=schemas.MispVersion)
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


@misp_route(["POST"], "/servers/postTest", model=schemas.MispPostTest, body=schemas.ANY_JSON)
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


@misp_route(["GET"], "/users/view/me", model=schemas.MispMe)
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


@misp_route(["GET"], "/attributes/describeTypes", model=schemas.MispDescribeTypes)
def describe(who: PartnerKey) -> Response:
    """The attribute types the hub accepts: PyMISP's own describeTypes.json."""
    return JSONResponse({"result": describe_types()})


# --- pull (reference §2.2) -------------------------------------------------------------------


@misp_route(
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
    extra = _carried(page)
    return JSONResponse(page.rows, headers={"X-Result-Count": str(page.total), **extra})


@misp_route(
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
        return Response(status_code=200, headers=_carried(seen))
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


@misp_route(["GET"], "/events/{eventId}", model=schemas.MispEventEnvelope)
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


@misp_route(
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


@misp_route(
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


@misp_route(["POST"], "/events/filterEventIdsForPush", model=list[str], body=schemas.PUSH_OFFER)
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
    headers = {"X-Result-Count": str(len(found.items)), **_carried(found)}
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


@misp_route(
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


@misp_route(
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
    found = search.search_attributes(session, caller, body)
    return _export(found, fmt, body, events=False)


# --- sightings (reference §2.4) --------------------------------------------------------------


@misp_route(["POST"], "/sightings/add", model=schemas.MispSightingAnswer, body=schemas.SIGHTING)
@misp_route(
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
    return JSONResponse({"Sighting": made.items[0]}, headers=_carried(made))


@misp_route(
    ["POST"], "/sightings/restSearch", model=schemas.MispSightingSearch, body=schemas.FILTERS
)
@misp_route(
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
    return JSONResponse({"response": found.items}, headers=_carried(found))


@misp_route(
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
    return JSONResponse(found.items, headers=_carried(found))


@misp_route(
    ["POST"],
    "/sightings/filterSightingUuidsForPush/{eventId}",
    model=list[str],
    body=schemas.ANY_JSON,
)
def filter_sightings(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    body = json_body(request)
    known = sightings.known_sightings(session, caller, event_uuid=ident_of(request), body=body)
    return JSONResponse(known)


@misp_route(
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


# --- attributes, objects, references, reports, tags, publication (reference §7.3) -----------
# Writes go through ingest as a new version of the caller's event (``edits``); reads through
# the released view (``elements``), one audit entry per answer.


def _writer(session: Any, caller: Caller, settings: Any) -> edits.Writer:
    return edits.Writer(
        caller, submitting_partner(session, caller.principal), settings.default_distribution
    )


def _write(
    request: Request,
    session: Any,
    caller: Caller,
    settings: Any,
    do: Callable[[edits.Writer], Response],
    *,
    name: str,
) -> Response:
    """Run one write in a savepoint: a refusal that touched another organisation's element
    leaves nothing of it and is recorded (as ``_push`` does)."""
    w = _writer(session, caller, settings)
    try:
        with session.begin_nested():
            return do(w)
    except (ForeignEvent, UuidClash) as err:
        who = caller.principal
        record_refusal(
            session, err, actor=who.actor, org_uuid=who.partner_uuid, channel=service.CHANNEL.value
        )
        raise recorded(SaveRefused(err.detail, name=name)) from None


def _hard(request: Request, body: Any) -> bool:
    """A hard delete: ``{"hard": 1}`` in the body, or a ``/true`` or ``hard:1`` path tail."""
    positional, named = url_params(request)
    return (
        (isinstance(body, dict) and truthy(body.get("hard", False)))
        or truthy(named.get("hard", False))
        or "true" in positional
    )


def _saved(request: Request, message: str, **extra: Any) -> Response:
    """MISP's answer to a save that needs no element back (RestResponseComponent)."""
    return JSONResponse(
        {
            "saved": True,
            "success": True,
            "name": message,
            "message": message,
            "url": misp_url(request),
            **extra,
        }
    )


def _released_attribute(
    request: Request, session: Any, caller: Caller, written: edits.Written, uuid: str
) -> Response:
    """The answer to an attribute write: the attribute as the caller now receives it."""
    if written.held is not None:
        raise recorded(written.held)
    attr = session.scalar(select(Attribute).where(Attribute.uuid == uuid))
    event = written.event
    found = elements.attributes(
        session, caller, [(attr, event)], include_deleted=True, write_answer=True
    )
    if not found.items:  # stored, not released over /misp even to its source: RED never
        # travels in MISP sync (DESIGN.md §3), nor does what is held in quarantine
        return JSONResponse(
            {"Attribute": {"uuid": uuid, "event_id": caller.event_id(event.id)}},  # type: ignore[union-attr]
            headers=_carried(found),
        )
    return JSONResponse({"Attribute": found.items[0]}, headers=_carried(found))


@ident_route(
    ["POST"],
    "/attributes/add",
    param="eventId",
    model=schemas.MispAttributeAnswer,
    body=schemas.ATTRIBUTE_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_attribute(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """One attribute (or a list) on one of the caller's events; a value already in the
    event is refused as MISP refuses it, or touched with ``breakOnDuplicate:0``."""
    _, named = url_params(request)
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuids, errors = edits.add_attributes(
            session,
            w,
            ident,
            body,
            break_on_duplicate=truthy(named.get("breakOnDuplicate", True)),
        )
        if written.held is not None:
            raise recorded(written.held)
        if not isinstance(body, list):
            return _released_attribute(request, session, caller, written, uuids[0])
        rows = session.execute(
            select(Attribute, Event)
            .join(Event, Event.id == Attribute.event_id)
            .where(Attribute.uuid.in_(uuids))
            .order_by(Attribute.id)
        ).all()
        found = elements.attributes(session, caller, [(a, e) for a, e in rows], write_answer=True)
        out: dict[str, Any] = {
            "Attribute": found.items[0] if len(found.items) == 1 else found.items
        }
        if errors:
            out["errors"] = errors
        return JSONResponse(out, headers=_carried(found))

    return _write(request, session, caller, settings, do, name="Could not add Attribute")


@ident_route(
    ["POST", "PUT"],
    "/attributes/edit",
    param="attributeId",
    model=schemas.MispAttributeAnswer,
    body=schemas.ATTRIBUTE_IN,
    responses=schemas.SAVE_REFUSED,
)
def edit_attribute(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuid = edits.edit_attribute(session, w, ident, body)
        return _released_attribute(request, session, caller, written, uuid)

    return _write(request, session, caller, settings, do, name="Could not edit Attribute")


@ident_route(
    ["POST", "DELETE"],
    "/attributes/delete",
    param="attributeId",
    model=schemas.MispSaved,
    body=schemas.DELETE_IN,
    responses=schemas.SAVE_REFUSED,
)
def delete_attribute(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    ident = ident_of(request)
    hard = _hard(request, json_body(request))

    def do(w: edits.Writer) -> Response:
        written, _uuid = edits.delete_attribute(session, w, ident, hard=hard)
        if written.held is not None:
            raise recorded(written.held)
        return _saved(request, "Attribute deleted.")

    return _write(request, session, caller, settings, do, name="Could not delete Attribute")


@ident_route(
    ["GET", "HEAD"], "/attributes/view", param="attributeId", model=schemas.MispAttributeAnswer
)
@read_page
def view_attribute(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """One attribute as the caller receives it; HEAD answers 200 or 404 only
    (``attribute_exists``)."""
    attr = service.find_attribute(session, caller, ident_of(request))
    event = session.get(Event, attr.event_id) if attr is not None else None
    found = (
        elements.attributes(session, caller, [(attr, event)])
        if attr is not None and event is not None
        else elements.Released()
    )
    if request.method == "HEAD":
        return _head(found)
    if not found.items:
        raise recorded(NotFound("Invalid attribute"))
    return JSONResponse({"Attribute": found.items[0]}, headers=_carried(found))


@misp_route(
    ["GET", "POST"],
    "/attributes/index",
    tail=True,
    model=list[schemas.MispAttribute],
    body=schemas.FILTERS,
)
@read_page
def attribute_index(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Every attribute the caller receives, a bounded page at a time (``limit`` default
    100, at most 1000; ``page``)."""
    found = elements.attribute_index(session, caller, filters(request))
    return JSONResponse(found.items, headers=_carried(found))


def _released_object(
    request: Request, session: Any, caller: Caller, written: edits.Written, uuid: str
) -> Response:
    if written.held is not None:
        raise recorded(written.held)
    obj = session.scalar(select(EventObject).where(EventObject.uuid == uuid))
    found = elements.objects(
        session, caller, [(obj, written.event)], include_deleted=True, write_answer=True
    )
    if not found.items:
        return JSONResponse({"Object": {"uuid": uuid}}, headers=_carried(found))
    return JSONResponse({"Object": found.items[0]}, headers=_carried(found))


@ident_route(
    ["POST"],
    "/objects/add",
    param="eventId",
    model=schemas.MispObjectAnswer,
    body=schemas.OBJECT_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_object(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuid = edits.add_object(session, w, ident, body)
        return _released_object(request, session, caller, written, uuid)

    return _write(request, session, caller, settings, do, name="Could not add Object")


@ident_route(
    ["POST", "PUT"],
    "/objects/edit",
    param="objectId",
    model=schemas.MispObjectAnswer,
    body=schemas.OBJECT_IN,
    responses=schemas.SAVE_REFUSED,
)
def edit_object(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuid = edits.edit_object(session, w, ident, body)
        return _released_object(request, session, caller, written, uuid)

    return _write(request, session, caller, settings, do, name="Could not edit Object")


@ident_route(
    ["POST", "DELETE"],
    "/objects/delete",
    param="objectId",
    model=schemas.MispSaved,
    body=schemas.DELETE_IN,
    responses=schemas.SAVE_REFUSED,
)
def delete_object(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    ident = ident_of(request)
    hard = _hard(request, json_body(request))

    def do(w: edits.Writer) -> Response:
        written, _uuid = edits.delete_object(session, w, ident, hard=hard)
        if written.held is not None:
            raise recorded(written.held)
        return _saved(request, "Object deleted")

    return _write(request, session, caller, settings, do, name="Could not delete Object")


@ident_route(["GET", "HEAD"], "/objects/view", param="objectId", model=schemas.MispObjectAnswer)
@read_page
def view_object(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """One MISP object (whole) as the caller receives it; HEAD answers 200 or 404 only."""
    obj = service.find_object(session, caller, ident_of(request))
    event = session.get(Event, obj.event_id) if obj is not None else None
    found = (
        elements.objects(session, caller, [(obj, event)])
        if obj is not None and event is not None
        else elements.Released()
    )
    if request.method == "HEAD":
        return _head(found)
    if not found.items:
        raise recorded(NotFound("Invalid object"))
    return JSONResponse({"Object": found.items[0]}, headers=_carried(found))


@misp_route(
    ["POST"], "/objects/restSearch", tail=True, model=schemas.MispObjectSearch, body=schemas.FILTERS
)
@read_page
def search_objects(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Objects the caller receives, by ``object_name``, uuid, event or attribute filters; a
    bounded page (``limit`` default 100, at most 1000)."""
    body = filters(request)
    search.json_only(body)
    found = elements.search_objects(session, caller, body)
    return JSONResponse(
        {"response": [{"Object": o} for o in found.items]},
        headers={"X-Result-Count": str(len(found.items)), **_carried(found)},
    )


@misp_route(
    ["POST"],
    "/objectReferences/add",
    "/object_references/add",
    tail=True,
    model=schemas.MispReferenceAnswer,
    body=schemas.REFERENCE_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_reference(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)

    def do(w: edits.Writer) -> Response:
        written, ref = edits.add_reference(session, w, body)
        if written.held is not None:
            raise recorded(written.held)
        obj = session.scalar(select(EventObject).where(EventObject.uuid == ref["object_uuid"]))
        event = written.event
        assert obj is not None and event is not None
        out = {
            **ref,
            "source_uuid": ref["object_uuid"],
            "object_id": caller.ids.public_str("object", obj.id),
            "event_id": caller.event_id(event.id),
            "deleted": False,
        }
        return JSONResponse({"ObjectReference": out})

    return _write(request, session, caller, settings, do, name="Could not add ObjectReference")


@ident_route(
    ["POST", "DELETE"],
    "/objectReferences/delete",
    "/object_references/delete",
    param="objectReferenceId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def delete_reference(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A reference of one of the caller's objects, by uuid (references have no numbers)."""
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.delete_reference(session, w, ident)
        if written.held is not None:
            raise recorded(written.held)
        return _saved(request, "ObjectReference deleted")

    return _write(request, session, caller, settings, do, name="Could not delete ObjectReference")


def _released_report(
    request: Request, session: Any, caller: Caller, written: edits.Written, uuid: str
) -> Response:
    if written.held is not None:
        raise recorded(written.held)
    event = written.event
    assert event is not None
    found = elements.reports(
        session, caller, event, uuids=frozenset({uuid}), include_deleted=True, write_answer=True
    )
    if not found.items:
        return JSONResponse(
            {"EventReport": {"uuid": uuid, "event_id": caller.event_id(event.id)}},
            headers=_carried(found),
        )
    return JSONResponse({"EventReport": found.items[0]}, headers=_carried(found))


@ident_route(
    ["POST"],
    "/eventReports/add",
    "/event_reports/add",
    param="eventId",
    model=schemas.MispReportAnswer,
    body=schemas.REPORT_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_report(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuid = edits.add_report(session, w, ident, body)
        return _released_report(request, session, caller, written, uuid)

    return _write(request, session, caller, settings, do, name="Could not add Event Report")


@ident_route(
    ["POST", "PUT"],
    "/eventReports/edit",
    "/event_reports/edit",
    param="eventReportId",
    model=schemas.MispReportAnswer,
    body=schemas.REPORT_IN,
    responses=schemas.SAVE_REFUSED,
)
def edit_report(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuid = edits.edit_report(session, w, ident, body)
        return _released_report(request, session, caller, written, uuid)

    return _write(request, session, caller, settings, do, name="Could not edit Event Report")


@ident_route(
    ["POST", "DELETE"],
    "/eventReports/delete",
    "/event_reports/delete",
    param="eventReportId",
    model=schemas.MispSaved,
    body=schemas.DELETE_IN,
    responses=schemas.SAVE_REFUSED,
)
def delete_report(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    ident = ident_of(request)
    hard = _hard(request, json_body(request))

    def do(w: edits.Writer) -> Response:
        written, uuid = edits.delete_report(session, w, ident, hard=hard)
        if written.held is not None:
            raise recorded(written.held)
        return _saved(request, f"Event Report {uuid} soft deleted")

    return _write(request, session, caller, settings, do, name="Could not delete Event Report")


@ident_route(
    ["GET"],
    "/eventReports/view",
    "/event_reports/view",
    param="eventReportId",
    model=schemas.MispReportAnswer,
)
@read_page
def view_report(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    row = service.find_report(session, caller, ident_of(request))
    event = session.get(Event, row.event_id) if row is not None else None
    found = (
        elements.reports(session, caller, event, uuids=frozenset({row.uuid}))
        if row is not None and event is not None
        else elements.Released()
    )
    if not found.items:
        raise recorded(NotFound("Invalid Event Report"))
    return JSONResponse({"EventReport": found.items[0]}, headers=_carried(found))


@misp_route(
    ["GET", "POST"],
    "/eventReports/index",
    "/event_reports/index",
    tail=True,
    model=list[schemas.MispReportAnswer],
    body=schemas.FILTERS,
)
@read_page
def report_index(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """The reports of one event (``event_id:N``, by id or uuid) the caller receives, as
    ``[{"EventReport": …}]``; the hub lists reports per event only."""
    body = filters(request)
    ident = str(body.get("event_id") or body.get("eventid") or "")
    event = service.find_event(session, caller, ident) if ident else None
    if event is None:
        if not ident:
            raise InvalidField("name the event: eventReports/index/event_id:<id>", field="event_id")
        return JSONResponse([])
    found = elements.reports(session, caller, event)
    return JSONResponse([{"EventReport": r} for r in found.items], headers=_carried(found))


@misp_route(
    ["POST"],
    "/tags/attachTagToObject",
    "/tags/attach_tag_to_object",
    tail=True,
    model=schemas.MispSaved,
    body=schemas.TAGGING,
    responses=schemas.SAVE_REFUSED,
)
def attach_tag(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A tag on one of the caller's events or attributes (by uuid); TLP tags may only make
    an element stricter; a local tag is accepted and kept nowhere (it never leaves)."""
    body = filters(request)

    def do(w: edits.Writer) -> Response:
        tagged = edits.attach_tag(session, w, body)
        if tagged.written is not None and tagged.written.held is not None:
            raise recorded(tagged.written.held)
        tag = str(body.get("tag"))
        if tagged.written is None:
            return _saved(
                request,
                f"Local tag {tag} not kept: local tags stay on your own MISP "
                f"({tagged.kind}({tagged.public_id})).",
                check_publish=False,
            )
        return _saved(
            request,
            f"Tag {tag} successfully attached to {tagged.kind}({tagged.public_id}).",
            check_publish=True,
        )

    return _write(request, session, caller, settings, do, name="Could not attach Tag")


@misp_route(
    ["POST"],
    "/tags/removeTagFromObject",
    "/tags/remove_tag_from_object",
    tail=True,
    model=schemas.MispSaved,
    body=schemas.TAGGING,
    responses=schemas.SAVE_REFUSED,
)
def remove_tag(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = filters(request)

    def do(w: edits.Writer) -> Response:
        tagged = edits.remove_tag(session, w, body)
        if tagged.written is not None and tagged.written.held is not None:
            raise recorded(tagged.written.held)
        return _saved(
            request,
            f"Tag {body.get('tag')} successfully removed from {tagged.kind}({tagged.public_id}).",
        )

    return _write(request, session, caller, settings, do, name="Could not remove Tag")


@misp_route(["GET"], "/tags/index", tail=True, model=schemas.MispTagIndex)
def tag_index(who: PartnerKey) -> Response:
    """The hub keeps no tag registry (a tag exists on the elements that carry it, and any
    name can be attached): the list of defined tags is empty."""
    return JSONResponse({"Tag": []})


@misp_route(["POST"], "/tags/add", tail=True, model=schemas.MispTagAnswer, body=schemas.TAG_IN)
def add_tag(request: Request, who: PartnerKey) -> Response:
    """Tags need no creating on the hub: the tag is answered as given, nothing is stored."""
    body = json_body(request)
    if isinstance(body, dict) and isinstance(body.get("Tag"), dict):
        body = body["Tag"]
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise InvalidField("a tag needs a name", field="name")
    return JSONResponse(
        {
            "Tag": {
                "id": "0",
                "name": name.strip(),
                "colour": str(body.get("colour") or ""),
                "exportable": bool(body.get("exportable", True)),
                "hide_tag": False,
                "local_only": False,
            }
        }
    )


@ident_route(
    ["POST"],
    "/events/publish",
    "/events/alert",
    param="eventId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def publish_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Publish one of the caller's events (``events/alert`` too: the hub sends no alert
    mails); stamps ``publish_timestamp``."""
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.publish(session, w, ident, published=True)
        if written.held is not None:
            raise recorded(written.held)
        event_id = caller.event_id(written.event.id)  # type: ignore[union-attr]
        return _saved(request, "Event published without alerts", id=event_id)

    return _write(request, session, caller, settings, do, name="Could not publish Event")


@ident_route(
    ["POST"],
    "/events/unpublish",
    param="eventId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def unpublish_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.publish(session, w, ident, published=False)
        if written.held is not None:
            raise recorded(written.held)
        event_id = caller.event_id(written.event.id)  # type: ignore[union-attr]
        return _saved(request, "Event unpublished.", id=event_id)

    return _write(request, session, caller, settings, do, name="Could not unpublish Event")


@ident_route(
    ["POST", "DELETE"],
    "/events/delete",
    param="eventId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def delete_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Delete one of the caller's events: its elements are withdrawn (those who had them get
    the deletions) and the caller no longer sees it."""
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.delete_event(session, w, ident)
        if written.held is not None:
            raise recorded(written.held)
        return _saved(request, "Event deleted.", id=caller.event_id(written.event.id))  # type: ignore[union-attr]

    return _write(request, session, caller, settings, do, name="Could not delete Event")


# --- what the hub does not take part in: answered so MISP skips it quietly (§2.5-2.7) --------


@misp_route(
    ["GET"],
    "/shadow_attributes/index",
    "/shadowAttributes/index",
    tail=True,
    model=list[dict[str, Any]],
)
def proposals(who: PartnerKey) -> Response:
    """Proposals are not shared through the hub: an empty list ends MISP's paging."""
    return JSONResponse([])


@misp_route(
    ["POST"],
    "/events/pushProposals/{eventId}",
    model=schemas.MispProposalsPush,
    body=schemas.ANY_JSON,
)
def push_proposals(who: PartnerKey) -> Response:
    return JSONResponse({"success": True, "message": "Nothing to update.", "counter": 0})


@misp_route(
    ["POST"],
    "/galaxy_clusters/restSearch",
    "/galaxyClusters/restSearch",
    tail=True,
    model=schemas.MispEmptyResponse,
    body=schemas.FILTERS,
)
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
    model=list[Any],
    body=schemas.ANY_JSON,
)
def analyst_data(who: PartnerKey) -> Response:
    """Analyst data is off (``perm_analyst_data: false``); an empty answer if asked anyway."""
    return JSONResponse([])


@misp_route(["GET"], "/eventReports/add", "/event_reports/add", model=schemas.MispProbe)
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
    router.add_api_route(
        "/{anything:path}",
        not_served,
        methods=[_method],
        name="not_served",
        route_class_override=NotServedRoute,
        include_in_schema=False,  # not an operation: the answer for paths that are none
    )
