"""What an endpoint declares and asks for: who may call it (``RoleGuard``, ``public``), that it
only reads (``read_page``), and the request's session, settings, policy and page parameters.

``HubRoute`` (``hub.routing.route``) reads these declarations before the handler runs: the
guards decide authentication and the 403, ``read_page`` the session's bind.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

import tlp
from hub.auth import throttle
from hub.auth.principal import Principal
from hub.cursors import MAX_LENGTH as MAX_CURSOR_LENGTH
from hub.errors import Forbidden, TooManyRequests
from hub.models.base import utcnow
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role


class RoleGuard:
    """A dependency naming the roles that may call a route; HubRoute enforces it up front."""

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    async def __call__(self, request: Request) -> Principal:
        principal: Principal = request.state.principal
        return principal


async def public() -> None:
    """Marks a route that answers without a key (only /health is)."""


def read_page(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Marks a route whose only writes are blind (its audit append, the key's last-use
    stamp): it reads without SQLite's write lock and takes it at its first write, so
    workers serving pages overlap (see ``hub.db.reads_first``)."""
    endpoint.__hub_read_page__ = True  # type: ignore[attr-defined]
    return endpoint


def body_of(request: Request) -> bytes:
    """The request body HubRoute read (and size-checked) before the endpoint ran."""
    return getattr(request, "_body", b"")


def public_base_url(request: Request) -> str:
    """The hub's base URL for the links it hands out (TAXII discovery, MISP ``Location``):
    HUB_PUBLIC_URL (required in production), else the address the server listens on —
    never the Host header a client sent (DESIGN §2)."""
    settings = runtime_of(request).settings
    if settings.public_url:
        return settings.public_url
    scheme = str(request.scope.get("scheme") or "http")
    host, port = request.scope.get("server") or ("127.0.0.1", None)
    netloc = f"[{host}]" if ":" in str(host) else str(host)
    if port and port != {"http": 80, "https": 443}.get(scheme):
        netloc += f":{port}"
    return f"{scheme}://{netloc}{request.scope.get('root_path', '')}".rstrip("/")


def end_unit_of_work(session: Session) -> None:
    """Commit what the request did so far and give its connection back, before the endpoint
    waits for a remote (DESIGN §4 rule 10). Objects read stay usable; a later statement
    begins a new unit, which HubRoute commits as usual."""
    session.commit()


def runtime_of(request: Request) -> Runtime:
    """The runtime the app was built with (settings, policy, sessions): ``create_app``."""
    return request.app.state.runtime  # type: ignore[no-any-return]


async def get_session(request: Request) -> Session:
    return request.state.session  # type: ignore[no-any-return]


async def get_app_settings(request: Request) -> Settings:
    return runtime_of(request).settings


async def get_policy(request: Request) -> tlp.Policy:
    return runtime_of(request).policy


SessionDep = Annotated[Session, Depends(get_session)]
PageLimit = Annotated[int, Query(ge=1, le=500, description="page size (at most 500)")]
PageCursor = Annotated[
    str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the last page")
]
PolicyDep = Annotated[tlp.Policy, Depends(get_policy)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
Operator = Annotated[Principal, Depends(RoleGuard(Role.OPERATOR))]
OperatorOrAuditor = Annotated[Principal, Depends(RoleGuard(Role.OPERATOR, Role.AUDITOR))]
AnyKey = Annotated[Principal, Depends(RoleGuard(*Role))]
PartnerKey = Annotated[Principal, Depends(RoleGuard(Role.PARTNER, Role.SYNC))]
Submitter = Annotated[Principal, Depends(RoleGuard(Role.PARTNER, Role.SYNC, Role.OPERATOR))]


def limit_public(request: Request, session: Session, settings: Settings, scope: str) -> None:
    """Count one request to a route that answers without a key against its source address
    (``HUB_PUBLIC_HELP_LIMIT`` per ``HUB_PUBLIC_HELP_WINDOW_SECONDS``, per ``scope``); past the
    limit, 429 with ``Retry-After``. Every public answer writes an audit entry, so without this
    anyone could grow the audit log at will."""
    address = request.client.host if request.client else "unknown"
    until = throttle.count_request(
        session,
        scope=scope,
        subject=address,
        limit=settings.public_help_limit,
        window=timedelta(seconds=settings.public_help_window_seconds),
    )
    if until is not None:
        wait = max(1, math.ceil((until - utcnow()).total_seconds()))
        raise TooManyRequests(
            "too many requests from this address; try again later",
            headers={"Retry-After": str(wait)},
        )


async def real_traffic_only(request: Request) -> None:
    """Refuses exercise-only keys on a surface that knows no exercise (knowledge products,
    incident cases and support): the exercise rule (``tlp.in_scope``) holds on the event
    channels, and anywhere else an exercise key would read or write the organisation's real
    traffic. The same 403 for every target, so it tells nothing about them."""
    principal = getattr(request.state, "principal", None)
    if principal is not None and principal.exercise_id is not None:
        raise Forbidden(
            "an exercise key is served on the exercise's channels only (events, /misp, TAXII, "
            "notifications); use the organisation's own key here"
        )
