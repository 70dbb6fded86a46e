"""TAXII 2.1 on the wire: the one media type, its checks, and errors as TAXII error resources.

Every response under ``/taxii2`` — errors included, 401 before anything else — is
``application/taxii+json;version=2.1`` exactly: taxii2-client rejects a Content-Type without
``version=2.1`` (reference: tlp-stix-taxii §5.4).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from hub.errors import HubError, NotAcceptable, UnsupportedMediaType
from hub.routing import HubRoute

PREFIX = "/taxii2"
TAXII_MEDIA = "application/taxii+json;version=2.1"
STIX_MEDIA = "application/stix+json;version=2.1"
VERSION = "2.1"


class TaxiiResponse(Response):
    media_type = TAXII_MEDIA

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)


def _media(part: str) -> tuple[str, dict[str, str]]:
    media, *params = (p.strip() for p in part.split(";"))
    values = {}
    for param in params:
        name, _, value = param.partition("=")
        values[name.strip().lower()] = value.strip().strip('"')
    return media.lower(), values


def is_taxii_21(part: str) -> bool:
    """``application/taxii+json`` with ``version=2.1`` or no version (which means 2.1)."""
    media, params = _media(part)
    return media == "application/taxii+json" and params.get("version", VERSION) == VERSION


def accepts_taxii(accept: str) -> bool:
    for part in accept.split(","):
        media, params = _media(part)
        if params.get("q") in ("0", "0.0", "0.00", "0.000"):
            continue
        if media in ("*/*", "application/*") or is_taxii_21(part):
            return True
    return False


class TaxiiRoute(HubRoute):
    """HubRoute with TAXII 2.1's media rules (§1.6.8): 406 for an Accept that does not allow
    the TAXII 2.1 media type, 415 for a body in anything else; 401/403 come first, 413 after."""

    def check_media(self, request: Request) -> None:
        accept = request.headers.get("accept")
        if accept and not accepts_taxii(accept):
            raise NotAcceptable(f"this server answers {TAXII_MEDIA}, not {accept!r}")
        if request.method == "POST":
            content_type = request.headers.get("content-type") or "no Content-Type"
            if not is_taxii_21(content_type):
                raise UnsupportedMediaType(
                    f"send the envelope as {TAXII_MEDIA}, not {content_type!r}",
                    field="Content-Type",
                )


_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request entity too large",
    415: "Unsupported media type",
    422: "Unprocessable entity",
    429: "Too many requests",
    500: "Internal error",
    503: "Service unavailable",
}


def error_resource(err: HubError) -> dict[str, Any]:
    """A TAXII 2.1 error resource (§3.6.1); ``error_code`` is the hub's error code."""
    body: dict[str, Any] = {
        "title": _TITLES.get(err.status_code, "Error"),
        "description": err.detail,
        "error_code": err.code,
        "http_status": str(err.status_code),
    }
    if err.field:
        body["details"] = {"field": err.field}
    return body


def error_response(err: HubError) -> TaxiiResponse:
    return TaxiiResponse(error_resource(err), status_code=err.status_code, headers=err.headers)


def render_taxii_error(request: Request, err: HubError) -> Response:
    return error_response(err)
