"""The hub's exception tree, mapped to HTTP once (REST shape here; protocol surfaces add theirs).

::

    HubError                      500 unless a subclass says otherwise
    ├── BadRequest                400  malformed input that is not a field problem
    ├── InvalidField              422  a field is wrong; ``field`` names it
    ├── Unauthenticated           401  no key, or a key that does not work
    ├── Forbidden                 403  a valid key whose role may not do this
    ├── NotFound                  404
    ├── Conflict                  409  e.g. an illegal lifecycle transition, a duplicate name
    ├── NotAcceptable             406
    ├── TooManyRequests           429  e.g. too many failed authentications; ``Retry-After``
    ├── DatabaseUnavailable       503  busy, pool exhausted or too slow; ``Retry-After``
    ├── PayloadTooLarge           413
    └── UnsupportedMediaType      415
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.responses import JSONResponse

log = logging.getLogger("hub.errors")


E = TypeVar("E", bound="HubError")


class HubError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(
        self, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers

    #: Set by :func:`recorded`: the request's unit of work holds the audit entry of this
    #: refusal, so the route commits it before the error is rendered (``hub.routing``).
    commits: bool = False

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field}


def recorded(err: E) -> E:
    """``err``, marked "refused and recorded": raise it after adding the refusal's audit
    entry, and the route commits that entry (and nothing of a savepoint rolled back before)
    instead of rolling the request back. Any other error rolls the request back."""
    err.commits = True
    return err


class BadRequest(HubError):
    status_code = 400
    code = "bad_request"


class InvalidField(HubError):
    status_code = 422
    code = "invalid_field"


class Unauthenticated(HubError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(HubError):
    status_code = 403
    code = "forbidden"


class NotFound(HubError):
    status_code = 404
    code = "not_found"


class Conflict(HubError):
    status_code = 409
    code = "conflict"


class NotAcceptable(HubError):
    status_code = 406
    code = "not_acceptable"


class PayloadTooLarge(HubError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(HubError):
    status_code = 415
    code = "unsupported_media_type"


class TooManyRequests(HubError):
    status_code = 429
    code = "too_many_requests"


class DatabaseUnavailable(HubError):
    status_code = 503
    code = "database_unavailable"


RETRY_AFTER_SECONDS = 2  # a busy database or an exhausted pool clears within seconds


_TYPE_TAGS = {
    "str",
    "int",
    "float",
    "bool",
    "datetime",
    "date",
    "list",
    "dict",
    "none",
    "json-or-python",
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """``("body", "constituency", "ip_prefixes", 0)`` → ``"constituency.ip_prefixes.0"``."""
    parts = [
        str(p)
        for p in loc
        if p not in ("body", "query", "path", "header")
        # pydantic names the union member it tried ("str", "function-after[...]"); drop those
        and not (isinstance(p, str) and ("[" in p or p in _TYPE_TAGS))
    ]
    return ".".join(parts) or None


def validation_error(exc: RequestValidationError) -> HubError:
    """Turn FastAPI's validation error into one clear error naming the first bad field."""
    errors = exc.errors()
    if not errors:
        return InvalidField("request is invalid")
    first = errors[0]
    if first.get("type") == "json_invalid":
        ctx = first.get("ctx") or {}
        where = ctx.get("error") or "not valid JSON"
        return BadRequest(f"request body is not valid JSON: {where}")
    loc = tuple(first.get("loc", ()))
    field = field_path(loc)
    msg = first.get("msg", "invalid value")
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    if first.get("type") == "missing" and loc[:1] == ("body",) and len(loc) == 1:
        return BadRequest("request body is required")
    extra = f" ({len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return InvalidField(f"{field or 'request'}: {msg}{extra}", field=field)


def _unavailable(what: str) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"{what}; nothing was changed, try again shortly",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def error_response(err: HubError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers)


# Protocol surfaces (/misp, /taxii2) answer errors in their own shapes: the app factory
# names a renderer per path prefix (``add_exception_handlers``); everything else gets the
# REST shape above.
ErrorRenderer = Callable[[Request, HubError], Response]


def render(request: Request, err: HubError) -> Response:
    path = request.url.path
    renderers: Mapping[str, ErrorRenderer] = getattr(request.app.state, "error_renderers", {})
    for prefix, renderer in renderers.items():
        if path == prefix or path.startswith(prefix + "/"):
            return renderer(request, err)
    return error_response(err)


def add_exception_handlers(app: FastAPI, renderers: Mapping[str, ErrorRenderer]) -> None:
    """Map every error the app can raise to an answer, once: ``renderers`` give the shape
    for each protocol surface's path prefix."""
    app.state.error_renderers = dict(renderers)

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> Response:
        return render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return render(request, validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        known: dict[int, type[HubError]] = {
            400: BadRequest,
            401: Unauthenticated,
            403: Forbidden,
            404: NotFound,
            406: NotAcceptable,
            413: PayloadTooLarge,
            415: UnsupportedMediaType,
        }
        cls = known.get(exc.status_code)
        if cls is not None:
            return render(request, cls(str(exc.detail), headers=getattr(exc, "headers", None)))
        err = HubError(str(exc.detail), headers=getattr(exc, "headers", None))
        err.status_code = exc.status_code
        err.code = {405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return render(request, err)

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> Response:
        # SQLite busy past HUB_DB_BUSY_TIMEOUT_SECONDS, a PostgreSQL statement cancelled by
        # statement_timeout, a lost connection: the unit was rolled back as a whole.
        log.error("database unavailable: %s", exc.orig)
        return render(request, _unavailable("the database is not answering"))

    @app.exception_handler(PoolTimeout)
    async def _pool(request: Request, exc: PoolTimeout) -> Response:
        log.error("no database connection free: %s", exc)
        return render(request, _unavailable("the hub is busy"))

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> Response:
        # A value the database cannot hold that no check at the edge caught: still the
        # client's value, so a 4xx; the edge checks name the field where they can.
        log.warning("value refused by the database: %s", exc.orig)
        return render(request, InvalidField("a value is out of the range the hub can store"))

    @app.exception_handler(OverflowError)
    async def _overflow(request: Request, exc: OverflowError) -> Response:
        log.warning("number out of range: %s", exc)
        return render(request, InvalidField("a number is out of the range the hub can store"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        return render(request, HubError("internal error; see the hub's log"))
