"""MISP's error shape for everything under ``/misp``, so a MISP admin reads the reason in the UI.

MISP answers a refused save with 403 and ``{"saved": false, "name", "message", "url",
"errors"}`` (RestResponseComponent.php:500-523); its sync client treats one exact ``errors``
string as a benign "not newer" (Event.php:946-954). Every other hub error keeps its status and
gets the same keys, plus the hub's ``error`` code so scripts can tell 401 from 403, and
``field``: the input that was wrong, when one was.
"""

from __future__ import annotations

from fastapi import Request, Response

from hub.errors import Forbidden, HubError, Unauthenticated, register_error_renderer
from hub.responses import JSONResponse

PREFIX = "/misp"
NOT_NEWER = "Event could not be saved: Event in the request not newer than the local copy."
AUTH_FAILED = (
    "Authentication failed. Please make sure you pass the API key of an API enabled user "
    "along in the Authorization header."
)


class SaveRefused(Forbidden):
    """A refused add or edit, in MISP's words: ``name`` is MISP's title, ``errors`` the reason."""

    def __init__(self, errors: str, *, name: str, headers: dict[str, str] | None = None):
        super().__init__(errors, headers=headers)
        self.name = name


def misp_url(request: Request) -> str:
    path = request.url.path
    return path[len(PREFIX) :] if path.startswith(PREFIX + "/") else path


def render_misp_error(request: Request, err: HubError) -> Response:
    if isinstance(err, SaveRefused):
        name, message, errors = err.name, err.name, err.detail
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


register_error_renderer(PREFIX, render_misp_error)
