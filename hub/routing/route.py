"""``HubRoute``: the checks in order, then one unit of work (the order and why: ``hub.routing``).

Also the request's session binds by route kind, the per-loop thread limits, the key check in a
short read of its own, and the commit after the endpoint returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from hub.auth import service as auth
from hub.auth import throttle
from hub.auth.keys import key_from_headers
from hub.auth.principal import Principal
from hub.db import reader_bind, session_scope, writer_bind
from hub.errors import (
    ErrorBody,
    Forbidden,
    HubError,
    NotAcceptable,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from hub.models.base import utcnow
from hub.routing.dependencies import RoleGuard, body_of, public
from hub.routing.inputs import accepts_json, check_json_body, check_parameters, json_media
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _walk(dependant: Dependant) -> Iterable[Any]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _walk(dep)


def _integer_params(dependant: Dependant) -> tuple[list[str], list[str]]:
    """Names (as sent) of the query and path parameters declared as integers."""

    def is_int(annotation: Any) -> bool:
        if get_origin(annotation) is Annotated:
            return is_int(get_args(annotation)[0])
        if get_origin(annotation) in (Union, UnionType):
            return any(is_int(a) for a in get_args(annotation))
        return annotation is int

    def names(fields: list[Any]) -> list[str]:
        return [f.alias for f in fields if is_int(f.field_info.annotation)]

    query, path = names(dependant.query_params), names(dependant.path_params)
    for dep in dependant.dependencies:
        more_query, more_path = _integer_params(dep)
        query += more_query
        path += more_path
    return query, path


# What each error status means on every route that can answer it (the OpenAPI document).
ERROR_DESCRIPTIONS = {
    400: "Malformed request: a body that is not JSON, a parameter the protocol cannot read",
    401: "No key, or a key that does not work",
    403: "The key's role (or its organisation) may not do this",
    404: "Not found, or not visible to this key",
    406: "The Accept header does not allow the media type this route answers",
    409: "Conflicts with the current state",
    413: "Request body larger than the hub accepts (HUB_MAX_BODY_BYTES)",
    415: "Request body in a media type this route does not take",
    422: "A field or parameter is invalid (named in the answer); also NUL characters, "
    "integers beyond 64 bits and JSON nested too deep",
    429: "Too many failed authentications from this address or for this key (Retry-After)",
    503: "The database is busy or unavailable; nothing was changed (Retry-After)",
}


class HubRoute(APIRoute):
    """APIRoute that authenticates, authorises and owns the transaction (see module doc).

    It also declares, in the OpenAPI document, the errors its checks can answer (in the
    interface's error shape, ``error_model``), beside those a route declares itself."""

    error_model: type[BaseModel] = ErrorBody
    checks_media = True  # 406 for Accept, 415 for a body's Content-Type

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.responses = {**self.responses}
        bodiless = self.methods <= {"HEAD"}  # HEAD answers have no body to describe
        for code in sorted(self.error_codes()):
            declared = self.responses.get(code) or self.responses.get(str(code)) or {}
            self.responses[code] = {
                "description": ERROR_DESCRIPTIONS.get(code, "Error"),
                **({} if bodiless else {"model": self.error_model}),
                **declared,
            }
        self.response_fields = {
            code: create_model_field(
                name=f"Response_{code}_{self.unique_id}",
                type_=answer["model"],
                mode="serialization",
            )
            for code, answer in self.responses.items()
            if isinstance(answer, dict) and answer.get("model")
        }

    def error_codes(self) -> set[int]:
        """The error statuses this route can answer: those of the checks it runs (module doc)
        and those it declares in ``responses``."""
        codes = {400, 422, 503} | {int(c) for c in self.responses if str(c)[0] in "45"}
        if not self.is_public:
            codes |= {401, 429}
            if self.allowed_roles != frozenset(Role):
                codes.add(403)
        if "{" in self.path_format:
            codes.add(404)
        if self.checks_media:
            codes.add(406)
        if self.methods & _BODY_METHODS:
            codes.add(413)
            if self.checks_media:
                codes.add(415)
        return codes

    def check_media(self, request: Request) -> None:
        """REST speaks JSON; protocol surfaces (MISP, TAXII) override this (and
        ``checks_media``)."""
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
        mode = (
            "plain"
            if is_public
            else "read"
            if getattr(self.endpoint, "__hub_read_page__", False)
            else "write"
        )
        int_query, int_path = _integer_params(self.dependant)
        original = super().get_route_handler()
        check_media = self.check_media

        async def handler(request: Request) -> Response:
            state = request.app.state
            runtime: Runtime = state.runtime
            finishing = _thread_limits(runtime.settings)
            principal: Principal | None = None
            session: Session | None = None
            try:
                if not is_public:
                    key = key_from_headers(
                        request.headers.get("authorization"), request.headers.get("x-misp-auth")
                    )
                    address = request.client.host if request.client else None
                    principal = await anyio.to_thread.run_sync(_authenticate, state, key, address)
                    request.state.principal = principal
                    if principal.role not in roles:
                        allowed = ", ".join(sorted(r.value for r in roles))
                        raise Forbidden(
                            f"a {principal.role.value} key may not use this route "
                            f"(allowed: {allowed})"
                        )
                check_media(request)
                check_parameters(request, int_query=int_query, int_path=int_path)
                if request.method in _BODY_METHODS:
                    await _read_limited_body(request, runtime.settings.max_body_bytes)
                    check_json_body(body_of(request))
                session = runtime.sessions(bind=state.binds[mode])
                request.state.session = session
                try:
                    response = await original(request)
                except HubError as err:
                    if not err.commits:
                        raise
                    done, session = session, None  # refused and recorded: keep the record
                    await anyio.to_thread.run_sync(_finish, done, principal, limiter=finishing)
                    raise
                done, session = session, None
                await anyio.to_thread.run_sync(_finish, done, principal, limiter=finishing)
                return response
            finally:
                if session is not None:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(_discard, session, limiter=finishing)

        return handler


def session_binds(engine: Engine) -> dict[str, Engine]:
    """The engines a request's session is bound to, by route kind; sessions connect lazily."""
    return {"plain": engine, "read": reader_bind(engine), "write": writer_bind(engine)}


_LIMITS: RunVar[anyio.CapacityLimiter] = RunVar("hub_finish_limiter")


def _thread_limits(settings: Settings) -> anyio.CapacityLimiter:
    """Per event loop: as many request threads as pooled connections, so a thread waits for
    a connection only while another request's endpoint runs; and a limiter of its own for
    the commit, so a request holding a connection never waits for a thread to give it back."""
    try:
        return _LIMITS.get()
    except LookupError:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.db_pool_size
        finishing = anyio.CapacityLimiter(settings.db_pool_size)
        _LIMITS.set(finishing)
        return finishing


def _authenticate(state: Any, key: str | None, address: str | None) -> Principal:
    """Check the key in a short read of its own (the connection goes back to the pool before
    the body is read); count a failure in a short write of its own."""
    runtime: Runtime = state.runtime
    settings, maker = runtime.settings, runtime.sessions
    metrics = state.metrics
    with maker(bind=state.binds["plain"]) as session:
        try:
            return auth.authenticate(session, key=key, secret=runtime.secret, address=address)
        except auth.AddressBlocked as blocked:
            metrics.auth_throttled.labels("address").inc()
            raise _too_many(blocked.until) from None
        except auth.KeyRefused as err:
            refused = err
    metrics.auth_failures.labels(refused.reason).inc()
    limits = throttle.Limits(
        address=settings.auth_failure_limit,
        hint=settings.auth_hint_failure_limit,
        key=settings.auth_key_failure_limit,
        window=timedelta(seconds=settings.auth_failure_window_seconds),
        block=timedelta(seconds=settings.auth_block_seconds),
    )
    with session_scope(maker) as session:
        until = throttle.record_failure(
            session,
            address=address,
            key=key,
            reason=refused.reason,
            limits=limits,
        )
    if until is not None:
        metrics.auth_throttled.labels("failures").inc()
        raise _too_many(until)
    raise refused


def _too_many(until: Any) -> TooManyRequests:
    wait = max(1, math.ceil((until - utcnow()).total_seconds()))
    return TooManyRequests(
        "too many failed authentications; try again later",
        headers={"Retry-After": str(wait)},
    )


def _finish(session: Session, principal: Principal | None) -> None:
    """Commit the request's unit of work (with the key's last-use stamp) and let go of it."""
    try:
        if principal is not None:
            auth.stamp_last_use(session, principal)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _discard(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


async def _read_limited_body(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    request._body = b"".join(chunks)  # noqa: SLF001 - Starlette caches the body here for the handler
