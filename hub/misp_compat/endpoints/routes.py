"""What every ``/misp`` endpoint module shares: the route classes (MISP's answers and the
not-served catch-all), ``MispRouter`` and its registering decorators (one route per path
spelling and method), the readers of MISP's path parameters and bodies, the caller, and the
write helpers (a write in a savepoint, a refusal recorded, MISP's "saved" answer)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.routing import Match
from starlette.types import Scope

from hub.errors import allowed_methods, recorded, route_path
from hub.intel.outcomes import ForeignEvent, UuidClash
from hub.intel.service import record_refusal
from hub.intel.snapshots import parse_body
from hub.intel.submission import submitting_partner
from hub.misp_compat import edits, elements, schemas, service
from hub.misp_compat.errors import PREFIX, MispErrorBody, SaveRefused, misp_url
from hub.misp_compat.params import named_params, strip_json, truthy
from hub.misp_compat.schemas import ID_PARAMS
from hub.misp_compat.service import Caller
from hub.responses import JSONResponse
from hub.routing import HubRoute, PartnerKey, PolicyDep, SettingsDep, body_of, public_base_url
from hub.sharing.records import headers

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


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


class MispRouter(APIRouter):
    """One module's ``/misp`` routes. The package ``__init__`` includes each module's router
    in the order the routes must be tried (a more specific path before a parametrised one)."""

    def __init__(self) -> None:
        super().__init__(prefix=PREFIX, tags=["misp"], route_class=MispRoute)

    def register(
        self, path: str, method: str, endpoint: Callable[..., Any], doc: dict[str, Any]
    ) -> None:
        """One route per method (OpenAPI ids stay unique). ``doc``: ``model`` (the JSON
        answer), ``body`` (the JSON schema of the body the endpoint reads itself),
        ``responses``."""
        extra = {}
        if doc.get("body") is not None and method in ("POST", "PUT"):
            extra = schemas.json_body(doc["body"])
        head = method == "HEAD"  # answers 200 or 404, without a body
        self.api_route(
            path,
            methods=[method],
            name=endpoint.__name__,
            response_model=None if head else doc.get("model"),
            response_class=Response if head else JSONResponse,
            responses=None if head else doc.get("responses"),
            openapi_extra=extra or None,
        )(endpoint)

    def misp_route(
        self, methods: list[str], *bases: str, tail: bool = False, **doc: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register one endpoint under each spelling of its path: ``base``, ``base.json``,
        and with ``tail`` also ``base/<named params>``; ``doc`` as for ``register``."""

        def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            for base in bases:
                paths = [base] if "{" in base else [base, base + ".json"]
                if tail:
                    paths.append(base + "/{params:path}")
                for path in paths:
                    for method in methods:
                        self.register(path, method, endpoint, doc)
            return endpoint

        return register

    def ident_route(
        self, methods: list[str], *bases: str, param: str, **doc: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register ``base/{param}`` and ``base/{param}/<named params>`` for each spelling;
        ``param`` is named as in MISP's OpenAPI document (``eventId``, ``attributeId`` …)."""
        assert param in ID_PARAMS, param

        def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
            for base in bases:
                for path in (f"{base}/{{{param}}}", f"{base}/{{{param}}}/{{params:path}}"):
                    for method in methods:
                        self.register(path, method, endpoint, doc)
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


def carried(found: Any) -> dict[str, str]:
    """``X-Hub-TLP`` and ``X-Hub-Audit-Seq`` of an answer that releases content: the handling
    obligation of the strictest element it released (CLEAR when nothing) and the audit
    entry that recorded it."""
    return headers(found.obligation, found.audit_seq)


def head_answer(found: Any) -> Response:
    """A HEAD answer: 200 with the view's headers, or 404 exactly as for a uuid the hub never
    had (no audit entry number: the refusal's entry would tell a hidden element from a
    missing one)."""
    if found.items:
        return Response(status_code=200, headers=carried(found))
    return Response(status_code=404, headers=carried(elements.Released()))


def get_caller(who: PartnerKey, policy: PolicyDep, settings: SettingsDep) -> Caller:
    return Caller.of(who, policy, settings)


CallerDep = Annotated[Caller, Depends(get_caller)]


def _writer(session: Any, caller: Caller, settings: Any) -> edits.Writer:
    return edits.Writer(
        caller, submitting_partner(session, caller.principal), settings.default_distribution
    )


def write(
    request: Request,
    session: Any,
    caller: Caller,
    settings: Any,
    do: Callable[[edits.Writer], Response],
    *,
    name: str,
) -> Response:
    """Run one write in a savepoint: a refusal that touched another organisation's element
    leaves nothing of it and is recorded (as the push does, ``sync``)."""
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


#: Answers a write with the element written, as the caller now receives it.
ElementAnswer = Callable[[Request, Any, Caller, edits.Written, str], Response]


def write_element(
    request: Request,
    session: Any,
    caller: Caller,
    settings: Any,
    *,
    change: Callable[[Any, edits.Writer, str, Any], tuple[edits.Written, str]],
    answer: ElementAnswer,
    name: str,
) -> Response:
    """Add or edit one element of the caller's event (``change(session, writer, ident,
    body)``, the ident from the URL: the event added to, or the element edited) and answer
    with it as the caller now receives it; ``name`` heads MISP's refusal."""
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuid = change(session, w, ident, body)
        return answer(request, session, caller, written, uuid)

    return write(request, session, caller, settings, do, name=name)


def delete_element(
    request: Request,
    session: Any,
    caller: Caller,
    settings: Any,
    *,
    delete: Callable[..., tuple[edits.Written, str]],
    message: Callable[[str], str],
    name: str,
) -> Response:
    """Delete one element of the caller's event (``delete(session, writer, ident,
    hard=…)``; soft unless asked hard, ``hard_delete``) and answer MISP's ``saved`` with
    ``message(uuid)``; a deletion held in quarantine answers as the hold."""
    ident = ident_of(request)
    hard = hard_delete(request, json_body(request))

    def do(w: edits.Writer) -> Response:
        written, uuid = delete(session, w, ident, hard=hard)
        if written.held is not None:
            raise recorded(written.held)
        return saved(request, message(uuid))

    return write(request, session, caller, settings, do, name=name)


def hard_delete(request: Request, body: Any) -> bool:
    """A hard delete: ``{"hard": 1}`` in the body, or a ``/true`` or ``hard:1`` path tail."""
    positional, named = url_params(request)
    return (
        (isinstance(body, dict) and truthy(body.get("hard", False)))
        or truthy(named.get("hard", False))
        or "true" in positional
    )


def saved(request: Request, message: str, **extra: Any) -> Response:
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
