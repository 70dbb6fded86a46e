"""The route class every hub endpoint uses: checks in order, then one unit of work.

Order (DESIGN.md §2): no or invalid key → 401 (429 after too many failures); wrong role →
403; media type → 406/415; parameters the database cannot hold → 422; body size → 413 and
JSON the hub will not parse (too deep, NUL characters) → 422; only then does FastAPI parse
and validate the body (422) and the endpoint look things up (404). FastAPI parses the body
*before* it runs dependencies, so authentication cannot be a plain dependency; it happens
here, before the handler.

Nothing waits for a client while holding a lock, a transaction or a pooled connection
(DESIGN §4 rule 10): the key is checked in a short read of its own, the body is read
(and size-checked) with no connection held, and only then does the request's unit of work
begin, lazily, at its first statement. Database work never runs on the event loop:
authentication, the endpoints (sync ``def``, run in the thread pool) and the commit run in
threads. The commit still comes after the endpoint returned and before the response is
sent, so a client never sees 2xx for work that was rolled back. An error raised by an
endpoint rolls its unit of work back, unless it was marked refused and recorded
(``hub.errors.recorded``): then the refusal's audit entry is committed before the error is
rendered, so raising a refusal is always safe.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

import anyio
import anyio.to_thread
import msgspec
import orjson
from anyio.lowlevel import RunVar
from fastapi import Depends, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.utils import create_model_field
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import tlp
from hub.auth import service as auth
from hub.auth import throttle
from hub.auth.keys import key_from_headers
from hub.auth.principal import Principal
from hub.cursors import MAX_LENGTH as MAX_CURSOR_LENGTH
from hub.db import reader_bind, session_scope, writer_bind
from hub.errors import (
    ErrorBody,
    Forbidden,
    HubError,
    InvalidField,
    NotAcceptable,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
)
from hub.models.base import utcnow
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role

_BODY_METHODS = {"POST", "PUT", "PATCH"}
MAX_JSON_DEPTH = 64  # MISP events and STIX bundles nest ~10 deep; parsers and stores ~255+
INT64 = 2**63


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


def json_media(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*", "application/json") or media.endswith("+json"):
            return True
    return False


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


# --- values the database cannot hold, refused alike on every database ---------------------


def _nul(where: str | None) -> InvalidField:
    return InvalidField(f"{where or 'request'}: contains a NUL character", field=where)


def check_parameters(request: Request, *, int_query: list[str], int_path: list[str]) -> None:
    """422 naming the parameter for a NUL character (PostgreSQL cannot store one in text)
    or an integer beyond 64 bits, in the query or the path."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise _nul(name.replace("\x00", "") or None)
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise _nul(name)
    for name in int_query:
        for value in request.query_params.getlist(name):
            _check_int64(name, value)
    for name in int_path:
        if name in request.path_params:
            _check_int64(name, str(request.path_params[name]))


def _check_int64(name: str, value: str) -> None:
    text = value.strip()
    if not text.isascii():
        return  # not a number: validation says so
    try:
        number = int(text)
    except ValueError:
        return
    if not -INT64 <= number < INT64:
        raise InvalidField(f"{name}: {text[:40]} is out of range", field=name)


_DROP_BUT_NESTING = bytes(range(256)).translate(None, b'"[]{}')
_TO_PARENS = bytes.maketrans(b"[]{}", b"()()")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
_DIGIT_RUNS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # digits → "0", rest " "
_LONG_RUN = b"0" * 19  # 2^63 has 19 digits: anything shorter fits in 64 bits


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit``, found in C-speed
    byte passes (a 15 MB event in ~0.1 s) so that no parser recurses into it first. Text
    that is not JSON answers False: the parser then says what is wrong."""
    if b"\\\\" in body:  # escaped backslashes and quotes cannot open or close anything
        body = body.replace(b"\\\\", b"")
    if b'\\"' in body:
        body = body.replace(b'\\"', b"")
    nesting = body.translate(None, _DROP_BUT_NESTING).replace(b'""', b"")
    if b'"' in nesting:  # strings holding brackets: drop their contents
        nesting = b"".join(nesting.split(b'"')[::2])
    nesting = nesting.translate(_TO_PARENS)
    for _ in range(limit):
        if not nesting:
            return False
        size = len(nesting)
        nesting = nesting.replace(b"()", b"")
        if len(nesting) == size:
            return False  # unbalanced: not JSON
    return bool(nesting)


def check_json_body(body: bytes) -> None:
    """422 for a JSON body nested deeper than MAX_JSON_DEPTH (parsers and walkers recurse),
    holding an integer beyond 64 bits, a NUL character or half a surrogate pair (no
    database stores them), naming where; every JSON body, REST, ``/misp`` and STIX alike.
    The common body costs a few byte passes; only a suspicious one is parsed here."""
    start = body.lstrip()[:1]
    if start not in (b"{", b"["):
        return
    if nesting_exceeds(body, MAX_JSON_DEPTH):
        raise InvalidField(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels", field="body")
    if _LONG_RUN in body.translate(_DIGIT_RUNS):  # rare: long digit runs, mostly in text
        document = _document(body)
        where = _wide_integer_path(document) if document is not None else None
        if where is not None:
            raise InvalidField(
                f"{where or 'body'}: the integer does not fit in 64 bits", field=where or "body"
            )
    suspicious = b"\\u0000" in body or (
        (b"\\ud" in body or b"\\uD" in body) and _SURROGATE.search(body) is not None
    )
    if not suspicious:
        return
    try:
        document = orjson.loads(body)  # refuses half surrogate pairs, unlike json
    except orjson.JSONDecodeError as err:
        if "surrogate" in str(err):
            raise InvalidField(
                "the JSON body holds half a UTF-16 surrogate pair, which is not text",
                field="body",
            ) from None
        return  # not JSON: the route's parser says so
    where = _nul_path(document)
    if where is not None:
        raise _nul(where or "body")


def _document(body: bytes) -> Any:
    """The body parsed with integers of any size (``1e309`` as infinity), or None."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's parser says so


def _wide_integer_path(document: Any) -> str | None:
    """The dotted path of the first integer beyond 64 bits (neither database nor orjson
    holds one), else None."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT64 <= value < INT64:
                return path
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def _nul_path(document: Any) -> str | None:
    """The dotted path of the first key or string holding a NUL character, else None."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return where.replace("\x00", "\\0")
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


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
