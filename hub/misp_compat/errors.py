"""MISP's error shape for everything under ``/misp``, so a MISP admin reads the reason in the UI.

MISP answers a refused save with 403 and ``{"saved": false, "name", "message", "url",
"errors"}`` (RestResponseComponent.php:500-523); its sync client treats one exact ``errors``
string as a benign "not newer" (Event.php:946-954). Every other hub error keeps its status and
gets the same keys, plus the hub's ``error`` code so scripts can tell 401 from 403, and
``field``: the input that was wrong, when one was.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from hub.errors import Forbidden, HubError, Unauthenticated
from hub.responses import JSONResponse

PREFIX = "/misp"
NOT_NEWER = "Event could not be saved: Event in the request not newer than the local copy."
AUTH_FAILED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user "
    "along in the Authorization header."
)


class SaveRefused(Forbidden):
    """A refused add or edit, in MISP's words: ``name`` is MISP's title, ``errors`` the reason
    (or, as MISP's validation answers, the reasons per field: ``errors={"value": [...]}``)."""

    def __init__(
        self,
        reason: str,
        *,
        name: str,
        headers: dict[str, str] | None = None,
        errors: Any = None,
    ):
        super().__init__(reason or name, headers=headers)
        self.name = name
        self.errors = errors


def misp_url(request: Request) -> str:
    path = request.url.path
    return path[len(PREFIX) :] if path.startswith(PREFIX + "/") else path


def render_misp_error(request: Request, err: HubError) -> Response:
    errors: Any
    if isinstance(err, SaveRefused):
        name, message = err.name, err.name
        errors = err.errors if err.errors is not None else err.detail
    elif isinstance(err, Unauthenticated):
        name, message, errors = AUTH_FAILED, err.detail, err.detail
    else:
        name = message = errors = err.detail
    body = {
        "saved": False,
        "name": name,
        "message": message,
        "url": misp_url(request),
        "errors": errors,
        "error": err.code,
        "field": err.field,
    }
    return JSONResponse(body, status_code=err.status_code, headers=err.headers)
