"""How the console answers a request: the session cookie's key, a reading page, a form that
changes something, a download; and the page frame (templates, headers, signed messages).

Operator, auditor and partner keys sign in (never a sync key, never an exercise key: the
console knows no exercise scope). Each page names the roles it serves: the network's own
pages (overview, coverage, partners, quarantine, connections, notifications, audit,
exercises) operators and auditors only; incidents and knowledge partners too, each seeing
what the services give its organisation. Every form (POST) needs the session's CSRF token
and one of its page's roles (an operator key by default). Database work and rendering run in
a thread (docs/packages.md, "Sync or async"); a form is read on the event loop first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio.to_thread
from sqlalchemy.orm import Session as DbSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from hub.auth import service as auth
from hub.auth.principal import Principal
from hub.console import session as cookies
from hub.console import views
from hub.db import session_scope
from hub.errors import Forbidden, HubError, InvalidField
from hub.routing import runtime_of
from hub.settings import Settings
from hub.vocabulary import Role

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: Any) -> str:
    """A timestamp as the console shows it (UTC, to the minute); empty for none."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


templates.env.filters["when"] = _when
templates.env.filters["val"] = lambda value: getattr(value, "value", value)  # enum or text
templates.env.globals["heat"] = views.heat
STAFF = frozenset({Role.OPERATOR, Role.AUDITOR})
#: Who may sign in: staff, and partners for the pages that serve them (``view_as`` roles).
CONSOLE_ROLES = frozenset({*STAFF, Role.PARTNER})
OPERATOR_ONLY = frozenset({Role.OPERATOR})
FORM_LIMIT = 64 * 1024  # the console's forms are a few short fields
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


def settings_of(request: Request) -> Settings:
    return runtime_of(request).settings


def secret_of(request: Request) -> str:
    return runtime_of(request).secret


def secure(request: Request) -> bool:
    url = settings_of(request).public_url or ""
    return url.startswith("https://")


def address_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def maker_of(request: Request, *, write: bool) -> Callable[[], DbSession]:
    bind = request.app.state.binds["write" if write else "read"]
    sessions = runtime_of(request).sessions
    return lambda: sessions(bind=bind)


def principal_of(db: DbSession, request: Request, session: cookies.Session) -> Principal:
    try:
        principal = auth.principal_of_key(
            db, key_uuid=session.key_uuid, address=address_of(request)
        )
    except (auth.KeyRefused, auth.AddressBlocked):
        raise SignInNeeded from None
    if principal.role not in CONSOLE_ROLES or principal.exercise_id is not None:
        raise SignInNeeded
    return principal


def allowed(principal: Principal, roles: frozenset[Role]) -> None:
    """The page's roles: anyone else signed in gets a 403 page naming no content."""
    if principal.role not in roles:
        if principal.role is Role.AUDITOR:
            raise Forbidden("an auditor reads everything and changes nothing")
        raise Forbidden("this page is for operators and auditors")


def render(
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
        "staff": principal is not None and principal.role in STAFF,
        "can_change": principal is not None and principal.role is Role.OPERATOR,
        "csrf": cookies.csrf_token(session, secret=secret_of(request)) if session else "",
        "msg": _shown_message(request),
        "path": request.url.path,
    }
    response = templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )
    response.headers.update(HEADERS)
    return response


def message(request: Request, text: str) -> str:
    """The query that makes the next page say ``text``: signed, so a link from elsewhere
    cannot put words in the console's mouth."""
    text = text[:300]
    return f"msg={quote(text)}&sig={cookies.sign(text, secret=secret_of(request))}"


def _shown_message(request: Request) -> str:
    text = request.query_params.get("msg", "")[:300]
    sig = request.query_params.get("sig", "")
    return text if text and cookies.signed(text, sig, secret=secret_of(request)) else ""


def error_page(
    request: Request,
    err: HubError,
    *,
    principal: Principal | None = None,
    session: cookies.Session | None = None,
) -> Response:
    return render(
        request,
        "error.html",
        {"status": err.status_code, "detail": err.detail},
        status_code=err.status_code,
        principal=principal,
        session=session,
    )


def to_sign_in(request: Request, *, ended: bool = False) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = "/console/sign-in?next=" + quote(target, safe="")
    if ended:
        url += "&" + message(request, "your session ended; sign in again")
    response = RedirectResponse(url, status_code=303)
    response.delete_cookie(cookies.COOKIE, path="/console")
    return response


def session_of(request: Request) -> cookies.Session | None:
    return cookies.read(request.cookies.get(cookies.COOKIE), secret=secret_of(request))


async def view(
    request: Request,
    template: str,
    load: Callable[[DbSession], dict[str, Any]],
) -> Response:
    """A reading page of the network's own (operators and auditors)."""
    return await view_as(request, template, lambda db, _who: load(db), roles=STAFF)


async def view_as(
    request: Request,
    template: str,
    load: Callable[[DbSession, Principal], dict[str, Any]],
    *,
    roles: frozenset[Role],
    write: bool = False,
) -> Response:
    """A reading page: the session's key checked against ``roles``, ``load`` run as that
    key in a read unit, or in a write unit (``write``) when the page is a delivery the
    release path records (audited reads, committed before the answer goes)."""
    session = session_of(request)
    if session is None:
        return to_sign_in(request, ended=cookies.COOKIE in request.cookies)

    def page(db: DbSession) -> Response:
        principal = principal_of(db, request, session)
        if principal.role not in roles and request.url.path == "/console/":
            return RedirectResponse("/console/incidents", status_code=303)  # a partner's home
        try:
            allowed(principal, roles)
            context = load(db, principal)
        except HubError as err:
            failed.append((err, principal))
            raise
        return render(request, template, context, principal=principal, session=session)

    failed: list[tuple[HubError, Principal]] = []

    def work() -> Response:
        try:
            if write:
                with session_scope(maker_of(request, write=True)) as db:
                    return page(db)
            with maker_of(request, write=False)() as db:
                return page(db)
        except SignInNeeded:
            return to_sign_in(request, ended=True)
        except HubError as err:
            who = failed[0][1] if failed else None
            return error_page(request, err, principal=who, session=session)

    return await anyio.to_thread.run_sync(work)


class Form(dict[str, str]):
    """A read form: the first value of each field, and every value (``every``) for fields a
    form repeats (check boxes)."""

    def __init__(self, lists: dict[str, list[str]]) -> None:
        super().__init__({k: v[0] for k, v in lists.items()})
        self.lists = lists

    def every(self, name: str) -> list[str]:
        return list(self.lists.get(name, []))


async def read_form(request: Request) -> Form:
    """The URL-encoded form, read up to FORM_LIMIT bytes (a larger one is refused)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > FORM_LIMIT:
            raise InvalidField("the form is too large", field="body")
        chunks.append(chunk)
    body = b"".join(chunks)
    return Form(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


def same_origin(request: Request) -> bool:
    """A browser's Origin (or Referer) must be this console's own when it sends one: the
    host the request came to, or HUB_PUBLIC_URL's (behind a proxy that rewrites Host)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin is None:
        return True  # not a browser form (browsers send Origin with every POST)
    ours = {request.headers.get("host", "")}
    public = settings_of(request).public_url
    if public:
        ours.add(urlsplit(public).netloc)
    return origin != "null" and urlsplit(origin).netloc in ours


async def act(
    request: Request,
    action: Callable[[DbSession, Principal, Form], str | tuple[str, str]],
    *,
    back: str,
    roles: frozenset[Role] = OPERATOR_ONLY,
) -> Response:
    """A form that changes something: session, CSRF token, one of ``roles`` (an operator by
    default), then ``action`` in one write unit; answers with a redirect to ``back`` (or the
    page ``action`` names with its message) saying what was done."""
    session = session_of(request)
    if session is None:
        return to_sign_in(request, ended=cookies.COOKIE in request.cookies)
    try:
        form = await read_form(request)
    except HubError as err:
        return error_page(request, err)
    if not same_origin(request) or not cookies.csrf_ok(
        session, form.get("csrf"), secret=secret_of(request)
    ):
        return error_page(request, Forbidden("the form is not one this console handed out (CSRF)"))

    def work() -> Response:
        principal = None
        try:
            with session_scope(maker_of(request, write=True)) as db:
                principal = principal_of(db, request, session)
                allowed(principal, roles)
                done = action(db, principal, form)
                auth.stamp_last_use(db, principal)
        except SignInNeeded:
            return to_sign_in(request, ended=True)
        except HubError as err:
            return error_page(request, err, principal=principal, session=session)
        if isinstance(done, tuple):
            done, back_to = done
        else:
            back_to = back
        return RedirectResponse(f"{back_to}?{message(request, done)}", status_code=303)

    return await anyio.to_thread.run_sync(work)


def enum_of(cls: Any, value: str | None, field: str) -> Any:
    if not value:
        return None
    try:
        return cls(value)
    except ValueError:
        raise InvalidField(f"{field}: unknown value {value[:40]!r}", field=field) from None


async def download(
    request: Request,
    make: Callable[[DbSession], tuple[str, str]],
    *,
    media_type: str = "text/csv; charset=utf-8",
    write: bool = False,
) -> Response:
    """A download for a signed-in operator or auditor: ``make`` answers (text, name); in a
    write unit (``write``) when making it records something (the release index's catch-up)."""
    session = session_of(request)
    if session is None:
        return to_sign_in(request)

    def work() -> Response:
        try:
            if write:
                with session_scope(maker_of(request, write=True)) as db:
                    allowed(principal_of(db, request, session), STAFF)
                    text, name = make(db)
            else:
                with maker_of(request, write=False)() as db:
                    allowed(principal_of(db, request, session), STAFF)
                    text, name = make(db)
        except SignInNeeded:
            return to_sign_in(request, ended=True)
        except HubError as err:
            return error_page(request, err)
        return Response(
            text,
            media_type=media_type,
            headers={**HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
        )

    return await anyio.to_thread.run_sync(work)
