"""The console's pages and forms at /console/ (server-rendered, no script).

Reading pages need a session of an operator or auditor key; every form (POST) needs the
session's CSRF token and, for changes, an operator key. A partner or sync key opens
nothing: it cannot sign in. Changes go through the services the REST API uses, as the
signed-in key, so the audit log names the same actor either way.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio.to_thread
from sqlalchemy.orm import Session as DbSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from hub.auth import service as auth
from hub.auth import throttle
from hub.auth.principal import Principal
from hub.connections import service as connections
from hub.console import session as cookies
from hub.console import views
from hub.coverage import service as coverage
from hub.db import session_scope
from hub.errors import Forbidden, HubError, InvalidField
from hub.intel import quarantine_decisions as quarantine
from hub.partners import service as partners
from hub.routing import runtime_of
from hub.settings import Settings
from hub.vocabulary import NetworkFunction, PartnerStatus, Region, Role, Sector, Tier

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: Any) -> str:
    """A timestamp as the console shows it (UTC, to the minute); empty for none."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


templates.env.filters["when"] = _when
templates.env.globals["heat"] = views.heat
CONSOLE_ROLES = frozenset({Role.OPERATOR, Role.AUDITOR})
FORM_LIMIT = 64 * 1024  # the console's forms are a few short fields
PRE_COOKIE = "hub_console_signin"  # double-submit token of the sign-in form (no session yet)
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class SignInNeeded(Exception):
    """No session, or one that ended (expired, its key revoked)."""


def _settings(request: Request) -> Settings:
    return runtime_of(request).settings


def _secret(request: Request) -> str:
    return runtime_of(request).secret


def _secure(request: Request) -> bool:
    url = _settings(request).public_url or ""
    return url.startswith("https://")


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _maker(request: Request, *, write: bool) -> Callable[[], DbSession]:
    bind = request.app.state.binds["write" if write else "read"]
    sessions = runtime_of(request).sessions
    return lambda: sessions(bind=bind)


def _principal(db: DbSession, request: Request, session: cookies.Session) -> Principal:
    try:
        principal = auth.principal_of_key(db, key_uuid=session.key_uuid, address=_address(request))
    except (auth.KeyRefused, auth.AddressBlocked):
        raise SignInNeeded from None
    if principal.role not in CONSOLE_ROLES:
        raise SignInNeeded
    return principal


def _page(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    status_code: int = 200,
    principal: Principal | None = None,
    session: cookies.Session | None = None,
) -> Response:
    base = {
        "principal": principal,
        "can_change": principal is not None and principal.role is Role.OPERATOR,
        "csrf": cookies.csrf_token(session, secret=_secret(request)) if session else "",
        "msg": _shown_message(request),
        "path": request.url.path,
    }
    response = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    response.headers.update(HEADERS)
    return response


def _message(request: Request, text: str) -> str:
    """The query that makes the next page say ``text``: signed, so a link from elsewhere
    cannot put words in the console's mouth."""
    text = text[:300]
    return f"msg={quote(text)}&sig={cookies.sign(text, secret=_secret(request))}"


def _shown_message(request: Request) -> str:
    text = request.query_params.get("msg", "")[:300]
    sig = request.query_params.get("sig", "")
    return text if text and cookies.signed(text, sig, secret=_secret(request)) else ""


def _error(
    request: Request,
    err: HubError,
    *,
    principal: Principal | None = None,
    session: cookies.Session | None = None,
) -> Response:
    return _page(
        request,
        "error.html",
        {"status": err.status_code, "detail": err.detail},
        status_code=err.status_code,
        principal=principal,
        session=session,
    )


def _to_sign_in(request: Request, *, ended: bool = False) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/console/sign-in?next=" + quote(target, safe="")
    if ended:
        url += "&" + _message(request, "your session ended; sign in again")
    response = RedirectResponse(url, status_code=303)
    response.delete_cookie(cookies.COOKIE, path="/console")
    return response


def _session(request: Request) -> cookies.Session | None:
    return cookies.read(request.cookies.get(cookies.COOKIE), secret=_secret(request))


async def _view(
    request: Request,
    template: str,
    load: Callable[[DbSession], dict[str, Any]],
) -> Response:
    """A reading page: the session's key checked, ``load`` run in a read unit."""
    session = _session(request)
    if session is None:
        return _to_sign_in(request, ended=cookies.COOKIE in request.cookies)

    def work() -> Response:
        with _maker(request, write=False)() as db:
            try:
                principal = _principal(db, request, session)
            except SignInNeeded:
                return _to_sign_in(request, ended=True)
            try:
                context = load(db)
            except HubError as err:
                return _error(request, err, principal=principal, session=session)
            return _page(request, template, context, principal=principal, session=session)

    return await anyio.to_thread.run_sync(work)


async def _form(request: Request) -> dict[str, str]:
    """The URL-encoded form, read up to FORM_LIMIT bytes (a larger one is refused)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT:
            raise InvalidField("the form is too large", field="body")
        chunks.append(chunk)
    body = b"".join(chunks)
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _same_origin(request: Request) -> bool:
    """A browser's Origin (or Referer) must be this console's own when it sends one: the
    host the request came to, or HUB_PUBLIC_URL's (behind a proxy that rewrites Host)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # not a browser form (browsers send Origin with every POST)
    ours = {request.headers.get("host", "")}
    public = _settings(request).public_url
    if public:
        ours.add(urlsplit(public).netloc)
    return origin != "null" and urlsplit(origin).netloc in ours


async def _act(
    request: Request,
    action: Callable[[DbSession, Principal, dict[str, str]], str],
    *,
    back: str,
) -> Response:
    """A form that changes something: session, CSRF token, operator role, then ``action``
    in one write unit; answers with a redirect to ``back`` saying what was done."""
    session = _session(request)
    if session is None:
        return _to_sign_in(request, ended=cookies.COOKIE in request.cookies)
    try:
        form = await _form(request)
    except HubError as err:
        return _error(request, err)
    if not _same_origin(request) or not cookies.csrf_ok(
        session, form.get("csrf"), secret=_secret(request)
    ):
        return _error(request, Forbidden("the form is not one this console handed out (CSRF)"))

    def work() -> Response:
        principal = None
        try:
            with session_scope(_maker(request, write=True)) as db:
                principal = _principal(db, request, session)
                if principal.role is not Role.OPERATOR:
                    raise Forbidden("an auditor reads everything and changes nothing")
                done = action(db, principal, form)
                auth.stamp_last_use(db, principal)
        except SignInNeeded:
            return _to_sign_in(request, ended=True)
        except HubError as err:
            return _error(request, err, principal=principal, session=session)
        return RedirectResponse(f"{back}?{_message(request, done)}", status_code=303)

    return await anyio.to_thread.run_sync(work)


# --- sign in and out ---------------------------------------------------------------------------


def _next(value: str | None) -> str:
    if value and value.startswith("/console/") and "//" not in value and "\\" not in value:
        return value
    return "/console/"


def _sign_in_page(
    request: Request, *, next_url: str, error: str | None = None, status_code: int = 200
) -> Response:
    """The sign-in form, with a fresh double-submit token in its form and its cookie."""
    token = secrets.token_hex(16)
    context = {"signin_token": token, "next": next_url, "error": error}
    response = _page(request, "sign_in.html", context, status_code=status_code)
    response.set_cookie(
        PRE_COOKIE,
        token,
        max_age=900,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def sign_in_form(request: Request) -> Response:
    next_url = _next(request.query_params.get("next"))
    if _session(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _sign_in_page(request, next_url=next_url)


async def sign_in(request: Request) -> Response:
    try:
        form = await _form(request)
    except HubError as err:
        return _error(request, err)
    token = request.cookies.get(PRE_COOKIE) or ""
    given = form.get("csrf")
    # The form's token must match its cookie when the form sends one; a client without
    # a token (a script posting just `key`) must not come from another site's page either:
    # browsers send Origin with every POST, and another origin is refused either way.
    forged = given is not None and not (token and secrets.compare_digest(token, given))
    if forged or not _same_origin(request):
        return _error(request, Forbidden("the form is not one this console handed out (CSRF)"))
    key = form.get("key", "").strip()
    settings = _settings(request)
    state = request.app.state

    def check() -> Principal | HubError:
        with _maker(request, write=False)() as db:
            try:
                return auth.authenticate(
                    db,
                    key=key,
                    secret=settings.secret,
                    address=_address(request),
                )
            except auth.AddressBlocked:
                return HubError("too many failed sign-ins; try again later")
            except auth.KeyRefused as refused:
                failure = refused
            except HubError as err:
                return err
        state.metrics.auth_failures.labels(failure.reason).inc()
        limits = throttle.Limits(
            address=settings.auth_failure_limit,
            hint=settings.auth_hint_failure_limit,
            key=settings.auth_key_failure_limit,
            window=timedelta(seconds=settings.auth_failure_window_seconds),
            block=timedelta(seconds=settings.auth_block_seconds),
        )
        with session_scope(runtime_of(request).sessions) as db:
            throttle.record_failure(
                db,
                address=_address(request),
                key=key,
                reason=failure.reason,
                limits=limits,
            )
        return failure

    outcome = await anyio.to_thread.run_sync(check)
    next_url = _next(form.get("next"))
    if isinstance(outcome, HubError):
        return _sign_in_page(
            request, next_url=next_url, error="That key does not work.", status_code=401
        )
    if outcome.role not in CONSOLE_ROLES:
        return _sign_in_page(
            request,
            next_url=next_url,
            error="The console is for operator and auditor keys only.",
            status_code=403,
        )
    response = RedirectResponse(_next(form.get("next")), status_code=303)
    response.set_cookie(
        cookies.COOKIE,
        cookies.issue(key_uuid=outcome.key_uuid, secret=_secret(request)),
        max_age=cookies.SESSION_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


async def sign_out(request: Request) -> Response:
    session = _session(request)
    if session is not None:
        try:
            form = await _form(request)
        except HubError as err:
            return _error(request, err)
        if not cookies.csrf_ok(session, form.get("csrf"), secret=_secret(request)):
            return _error(request, Forbidden("the form is not one this console handed out (CSRF)"))
    response = RedirectResponse(
        "/console/sign-in?" + _message(request, "signed out"), status_code=303
    )
    response.delete_cookie(cookies.COOKIE, path="/console")
    return response


# --- pages ---------------------------------------------------------------------------------------


def _enum(cls: Any, value: str | None, field: str) -> Any:
    if not value:
        return None
    try:
        return cls(value)
    except ValueError:
        raise InvalidField(f"{field}: unknown value {value[:40]!r}", field=field) from None


async def overview(request: Request) -> Response:
    return await _view(request, "overview.html", views.overview)


async def coverage_page(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        as_of = coverage.parse_as_of(q.get("as_of"))
        status = _enum(PartnerStatus, q.get("status"), "status") or PartnerStatus.ACTIVE
        tier = _enum(Tier, q.get("tier"), "tier")
        return views.coverage_page(db, as_of=as_of, status=status, tier=tier)

    return await _view(request, "coverage.html", load)


async def _csv(request: Request, make: Callable[[DbSession], tuple[str, str]]) -> Response:
    """A CSV download for a signed-in operator or auditor: ``make`` answers (text, name)."""
    session = _session(request)
    if session is None:
        return _to_sign_in(request)

    def work() -> Response:
        with _maker(request, write=False)() as db:
            try:
                _principal(db, request, session)
                text, name = make(db)
            except SignInNeeded:
                return _to_sign_in(request, ended=True)
            except HubError as err:
                return _error(request, err)
        return Response(
            text,
            media_type="text/csv; charset=utf-8",
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    return await anyio.to_thread.run_sync(work)


async def coverage_csv(request: Request) -> Response:
    def make(db: DbSession) -> tuple[str, str]:
        q = request.query_params
        report = coverage.registered(
            db,
            as_of=coverage.parse_as_of(q.get("as_of")),
            status=_enum(PartnerStatus, q.get("status"), "status") or PartnerStatus.ACTIVE,
            tier=_enum(Tier, q.get("tier"), "tier"),
        )
        return coverage.to_csv(report), f"coverage-{report.as_of}.csv"

    return await _csv(request, make)


async def audit_csv(request: Request) -> Response:
    q = request.query_params

    def make(db: DbSession) -> tuple[str, str]:
        text = views.audit_csv(db, action=q.get("action", "")[:48], ref=q.get("ref", "")[:255])
        return text, "audit.csv"

    return await _csv(request, make)


async def coverage_cell(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        as_of = coverage.parse_as_of(q.get("as_of"))
        function = _enum(NetworkFunction, q.get("function"), "function")
        sector = _enum(Sector, q.get("sector"), "sector")
        region = _enum(Region, q.get("region"), "region")
        found = coverage.cell_partners(
            db,
            as_of=as_of,
            function=function,
            sector=sector,
            region=region,
            status=_enum(PartnerStatus, q.get("status"), "status") or PartnerStatus.ACTIVE,
            tier=_enum(Tier, q.get("tier"), "tier"),
        )
        return {"cell": found}

    return await _view(request, "cell.html", load)


async def partner_list(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        filters = {
            "status": _enum(PartnerStatus, q.get("status"), "status"),
            "sector": _enum(Sector, q.get("sector"), "sector"),
            "function": _enum(NetworkFunction, q.get("function"), "function"),
            "region": _enum(Region, q.get("region"), "region"),
        }
        rows = views.partner_list(db, q=q.get("q", "")[:200], filters=filters)
        return {
            "partners": rows,
            "q": q.get("q", ""),
            "filters": {k: (v.value if v else "") for k, v in filters.items()},
            "options": {
                "status": [s.value for s in PartnerStatus],
                "sector": [s.value for s in Sector],
                "function": [f.value for f in NetworkFunction],
                "region": [r.value for r in Region],
            },
        }

    return await _view(request, "partners.html", load)


async def partner_page(request: Request) -> Response:
    ref = request.path_params["uuid"]
    return await _view(request, "partner.html", lambda db: views.partner_page(db, ref=ref))


async def partner_status(request: Request) -> Response:
    ref = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        partner = partners.get(db, ref=ref)
        status = _enum(PartnerStatus, form.get("status"), "status")
        if status is None:
            raise InvalidField("choose a status", field="status")
        reason = form.get("reason", "").strip()[:2000] or None
        partners.change_status(db, partner=partner, status=status, reason=reason, actor=who.actor)
        return f"{partner.name} is now {status.value}"

    return await _act(request, action, back=f"/console/partners/{quote(ref)}")


async def key_revoke(request: Request) -> Response:
    ref, key_uuid = request.path_params["uuid"], request.path_params["key_uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        partner = partners.get(db, ref=ref)
        record = auth.get_key(db, key_uuid=key_uuid, partner=partner)
        auth.revoke_key(db, record=record, actor=who.actor)
        return f"key …{record.key_hint} of {partner.name} revoked"

    return await _act(request, action, back=f"/console/partners/{quote(ref)}")


async def quarantine_page(request: Request) -> Response:
    return await _view(request, "quarantine.html", views.quarantine_page)


async def quarantine_release(request: Request) -> Response:
    uuid = request.path_params["uuid"]
    policy = runtime_of(request).policy

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        label = form.get("label") or None
        if label is not None and label not in quarantine.LABELS:
            raise InvalidField(f"label: unknown TLP label {label[:20]!r}", field="label")
        reason = form.get("reason", "").strip()[:2000]
        if not reason:
            raise InvalidField("a reason is required", field="reason")
        item, outcomes = quarantine.release(
            db, uuid=uuid, label=label, reason=reason, actor=who.actor, policy=policy
        )
        return f"released {item.item_uuid} as TLP:{item.decision_label}"

    return await _act(request, action, back="/console/quarantine")


async def quarantine_reject(request: Request) -> Response:
    uuid = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        reason = form.get("reason", "").strip()[:2000]
        if not reason:
            raise InvalidField("a reason is required", field="reason")
        item = quarantine.reject(db, uuid=uuid, reason=reason, actor=who.actor)
        return f"rejected {item.item_uuid}"

    return await _act(request, action, back="/console/quarantine")


async def connections_page(request: Request) -> Response:
    return await _view(request, "connections.html", views.connections_page)


async def connection_requeue(request: Request) -> Response:
    ref = request.path_params["uuid"]

    def action(db: DbSession, who: Principal, form: dict[str, str]) -> str:
        connection = connections.get(db, ref=ref)
        job, pushes = connections.requeue(db, connection=connection, actor=who.actor)
        return f"{connection.name}: run requeued, {pushes} push(es) sent again"

    return await _act(request, action, back="/console/connections")


async def notifications_page(request: Request) -> Response:
    status = request.query_params.get("status") or None
    return await _view(
        request,
        "notifications.html",
        lambda db: {**views.notifications_page(db, status=status), "status": status or ""},
    )


async def audit_page(request: Request) -> Response:
    q = request.query_params

    def load(db: DbSession) -> dict[str, Any]:
        action, ref = q.get("action", "")[:48], q.get("ref", "")[:255]
        data = views.audit_page(
            db,
            action=action,
            ref=ref,
            verify=q.get("verify") == "1",
            settings=runtime_of(request).settings,
        )
        return {**data, "action": action, "ref": ref}

    return await _view(request, "audit.html", load)


async def item_page(request: Request) -> Response:
    uuid = request.path_params["uuid"].lower()
    partner = request.query_params.get("partner") or None
    policy = runtime_of(request).policy

    def load(db: DbSession) -> dict[str, Any]:
        return views.item_page(
            db, event_uuid=uuid, partner=partner, policy=policy, actor="console:explain"
        )

    return await _view(request, "item.html", load)


async def stylesheet(request: Request) -> Response:
    return Response(
        (HERE / "templates" / "console.css").read_text(),
        media_type="text/css",
        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


routes = [
    Route("/", overview, methods=["GET"], name="console"),
    Route("/console.css", stylesheet, methods=["GET"]),
    Route("/sign-in", sign_in_form, methods=["GET"]),
    Route("/sign-in", sign_in, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
    Route("/coverage", coverage_page, methods=["GET"]),
    Route("/coverage.csv", coverage_csv, methods=["GET"]),
    Route("/coverage/cell", coverage_cell, methods=["GET"]),
    Route("/partners", partner_list, methods=["GET"]),
    Route("/partners/{uuid}", partner_page, methods=["GET"]),
    Route("/partners/{uuid}/status", partner_status, methods=["POST"]),
    Route("/partners/{uuid}/keys/{key_uuid}/revoke", key_revoke, methods=["POST"]),
    Route("/quarantine", quarantine_page, methods=["GET"]),
    Route("/quarantine/{uuid}/release", quarantine_release, methods=["POST"]),
    Route("/quarantine/{uuid}/reject", quarantine_reject, methods=["POST"]),
    Route("/connections", connections_page, methods=["GET"]),
    Route("/connections/{uuid}/requeue", connection_requeue, methods=["POST"]),
    Route("/notifications", notifications_page, methods=["GET"]),
    Route("/audit", audit_page, methods=["GET"]),
    Route("/audit.csv", audit_csv, methods=["GET"]),
    Route("/items/{uuid}", item_page, methods=["GET"]),
]
