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
    ├── PayloadTooLarge           413
    └── UnsupportedMediaType      415
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.responses import JSONResponse

log = logging.getLogger("hub.errors")


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

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail, "field": self.field}


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


def error_response(err: HubError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status_code, headers=err.headers)


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "detail": str(exc.detail), "field": None},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> JSONResponse:
        log.error("database unavailable: %s", exc.orig)
        return JSONResponse(
            {
                "error": "database_unavailable",
                "detail": "the database is not answering; nothing was changed, try again later",
                "field": None,
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(
            {
                "error": "internal_error",
                "detail": "internal error; see the hub's log",
                "field": None,
            },
            status_code=500,
        )
