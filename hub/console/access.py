"""Signing in to the console and out: an operator, auditor or partner key, checked (and
throttled) as the API checks a key, exchanged for a signed session cookie.

The sign-in form carries a double-submit token (``PRE_COOKIE``) since there is no session yet
whose CSRF token it could carry.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from hub.auth import service as auth
from hub.auth import throttle
from hub.auth.principal import Principal
from hub.console import session as cookies
from hub.console.web import (
    CONSOLE_ROLES,
    address_of,
    error_page,
    maker_of,
    message,
    read_form,
    render,
    same_origin,
    secret_of,
    secure,
    session_of,
    settings_of,
)
from hub.db import session_scope
from hub.errors import Forbidden, HubError
from hub.routing import runtime_of

PRE_COOKIE = "hub_console_signin"  # double-submit token of the sign-in form (no session yet)


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
    response = render(request, "sign_in.html", context, status_code=status_code)
    response.set_cookie(
        PRE_COOKIE,
        token,
        max_age=900,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    return response


async def sign_in_form(request: Request) -> Response:
    next_url = _next(request.query_params.get("next"))
    if session_of(request) is not None:
        return RedirectResponse(next_url, status_code=303)
    return _sign_in_page(request, next_url=next_url)


async def sign_in(request: Request) -> Response:
    try:
        form = await read_form(request)
    except HubError as err:
        return error_page(request, err)
    token = request.cookies.get(PRE_COOKIE) or ""
    given = form.get("csrf")
    # The form's token must match its cookie when the form sends one; a client without
    # a token (a script posting just `key`) must not come from another site's page either:
    # browsers send Origin with every POST, and another origin is refused either way.
    forged = given is not None and not (token and secrets.compare_digest(token, given))
    if forged or not same_origin(request):
        return error_page(request, Forbidden("the form is not one this console handed out (CSRF)"))
    key = form.get("key", "").strip()
    settings = settings_of(request)
    state = request.app.state

    def check() -> Principal | HubError:
        with maker_of(request, write=False)() as db:
            try:
                return auth.authenticate(
                    db,
                    key=key,
                    secret=settings.secret,
                    address=address_of(request),
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
                address=address_of(request),
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
    if outcome.role not in CONSOLE_ROLES or outcome.exercise_id is not None:
        return _sign_in_page(
            request,
            next_url=next_url,
            error="The console is for operator, auditor and partner keys only "
            "(not machine or exercise keys).",
            status_code=403,
        )
    response = RedirectResponse(_next(form.get("next")), status_code=303)
    response.set_cookie(
        cookies.COOKIE,
        cookies.issue(key_uuid=outcome.key_uuid, secret=secret_of(request)),
        max_age=cookies.SESSION_SECONDS,
        path="/console",
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


async def sign_out(request: Request) -> Response:
    session = session_of(request)
    if session is not None:
        try:
            form = await read_form(request)
        except HubError as err:
            return error_page(request, err)
        if not cookies.csrf_ok(session, form.get("csrf"), secret=secret_of(request)):
            return error_page(
                request, Forbidden("the form is not one this console handed out (CSRF)")
            )
    response = RedirectResponse(
        "/console/sign-in?" + message(request, "signed out"), status_code=303
    )
    response.delete_cookie(cookies.COOKIE, path="/console")
    return response
