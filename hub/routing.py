"""The route class every hub endpoint uses: one unit of work per request, checks in order.

Order (DESIGN.md §2): no or invalid key → 401; wrong role → 403; media type → 406/415;
body size → 413; only then does FastAPI parse and validate the body (422) and the
endpoint look things up (404). FastAPI parses the body *before* it runs dependencies,
so authentication cannot be a plain dependency; it happens here, before the handler.

The request's session is opened here and committed after the endpoint returned and
before the response is sent, so a client never sees 2xx for work that was rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

import tlp
from hub.auth.keys import key_from_headers
from hub.auth.principal import Principal
from hub.auth.service import authenticate
from hub.db import reads_first, writing
from hub.errors import Forbidden, NotAcceptable, PayloadTooLarge, UnsupportedMediaType
from hub.settings import Settings
from hub.vocabulary import Role

_BODY_METHODS = {"POST", "PUT", "PATCH"}


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


def _walk(dependant: Dependant) -> Iterable[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _walk(dep)


def json_media(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*", "application/json") or media.endswith("+json"):
            return True
    return False


class HubRoute(APIRoute):
    """APIRoute that authenticates, authorises and owns the transaction (see module doc)."""

    def check_media(self, request: Request) -> None:
        """REST speaks JSON; protocol surfaces (MISP, TAXII) override this."""
        accept = request.headers.get("accept")
        if accept and not accepts_json(accept):
            raise NotAcceptable(f"this route answers application/json, not {accept!r}")
        if request.method in _BODY_METHODS:
            content_type = request.headers.get("content-type")
            if content_type and not json_media(content_type):
                raise UnsupportedMediaType(
                    f"send the body as application/json, not {content_type!r}",
                    field="Content-Type",
                )

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        calls = list(_walk(self.dependant))
        is_public = public in calls
        guards = [c for c in calls if isinstance(c, RoleGuard)]
        if not is_public and not guards:
            raise RuntimeError(
                f"route {self.path} declares neither a RoleGuard nor `public`; "
                "every route must say who may call it"
            )
        roles: frozenset[Role] = frozenset(Role)
        for guard in guards:
            roles &= guard.roles
        self.allowed_roles, self.is_public = roles, is_public
        begin = reads_first if getattr(self.endpoint, "__hub_read_page__", False) else writing
        original = super().get_route_handler()
        check_media = self.check_media

        async def handler(request: Request) -> Response:
            state = request.app.state
            session: Session = state.sessionmaker()
            request.state.session = session
            try:
                if not is_public:
                    # Most requests write (key use, releases and their audit entries): on
                    # SQLite take the write lock up front rather than fail when a read
                    # upgrades; read pages take it at their first write (``read_page``).
                    begin(session)
                    key = key_from_headers(
                        request.headers.get("authorization"), request.headers.get("x-misp-auth")
                    )
                    principal = authenticate(
                        session, key=key, secret=state.settings.secret_key.get_secret_value()
                    )
                    request.state.principal = principal
                    if principal.role not in roles:
                        allowed = ", ".join(sorted(r.value for r in roles))
                        raise Forbidden(
                            f"a {principal.role.value} key may not use this route "
                            f"(allowed: {allowed})"
                        )
                check_media(request)
                if request.method in _BODY_METHODS:
                    await _read_limited_body(request, state.settings.max_body_bytes)
                response = await original(request)
                session.commit()
                return response
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

        return handler


async def _read_limited_body(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    request._body = b"".join(chunks)  # Starlette caches the body here for the handler


async def get_session(request: Request) -> Session:
    return request.state.session  # type: ignore[no-any-return]


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_policy(request: Request) -> tlp.Policy:
    return request.app.state.policy  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(get_session)]
PolicyDep = Annotated[tlp.Policy, Depends(get_policy)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
Operator = Annotated[Principal, Depends(RoleGuard(Role.OPERATOR))]
OperatorOrAuditor = Annotated[Principal, Depends(RoleGuard(Role.OPERATOR, Role.AUDITOR))]
AnyKey = Annotated[Principal, Depends(RoleGuard(*Role))]
PartnerKey = Annotated[Principal, Depends(RoleGuard(Role.PARTNER, Role.SYNC))]
Submitter = Annotated[Principal, Depends(RoleGuard(Role.PARTNER, Role.SYNC, Role.OPERATOR))]
