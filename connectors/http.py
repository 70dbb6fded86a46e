"""The HTTP session every connector talks through; inject your own to point a connector at a
test server, a proxy or a stub transport (``session.mount(prefix, adapter)``).

It adds what the client libraries lack: a default timeout on every request (taxii2-client sets
none) and a record of the last response, so failures can be classified by status code even
when a library turned the response into a bare exception or an ``{"errors": …}`` dict.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

import requests

from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    MappingError,
    RemoteRejected,
    SourceUnavailable,
)

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 60.0)


class HttpSession(requests.Session):
    """A ``requests.Session`` with a default timeout that remembers its last response."""

    def __init__(self, *, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.timeout = timeout
        self.last_response: requests.Response | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self.last_response = None
        response = super().send(request, **kwargs)
        self.last_response = response
        return response


def session_for(http: requests.Session | None, *, timeout: float, verify: bool) -> HttpSession:
    """The session to use: the injected one (made an HttpSession if it is not), or a new one."""
    if isinstance(http, HttpSession):
        session = http
    else:
        session = HttpSession(timeout=(min(5.0, timeout), timeout))
        if http is not None:  # keep the caller's transports (adapters), auth and headers
            session.adapters = http.adapters
            session.headers.update(http.headers)
            session.auth = http.auth
    session.verify = verify
    return session


def retry_after(response: requests.Response | None) -> float | None:
    """Seconds the remote asked us to wait (``Retry-After``: seconds or an HTTP date)."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def detail_of(response: requests.Response) -> str:
    """The remote's own words for an error (MISP ``errors``/``message``, TAXII ``title``)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason or ""
    if isinstance(body, dict):
        for key in ("errors", "message", "title", "description", "detail", "name"):
            value = body.get(key)
            if value:
                return str(value)[:300]
    return str(body)[:300]


def classify(response: requests.Response, *, what: str) -> ConnectorError | None:
    """The error a non-2xx response means, or None for a success."""
    status = response.status_code
    if status < 400:
        return None
    detail = detail_of(response)
    url = response.url
    if status in (429,) or status >= 500:
        return SourceUnavailable(
            f"{what}: the remote answered {status} ({detail}) at {url}; will retry",
            status=status,
            retry_after=retry_after(response),
        )
    if status == 401:
        return AuthenticationFailed(
            f"{what}: the remote refused the key (401: {detail}); check the connection's "
            "credentials",
            status=status,
        )
    if status == 403:
        return AuthenticationFailed(
            f"{what}: the key may not do this on the remote (403: {detail}); check the "
            "remote user's role",
            status=status,
        )
    if status == 404:
        return MappingError(f"{what}: not found on the remote (404) at {url}", status=status)
    return RemoteRejected(f"{what}: the remote answered {status} ({detail})", status=status)


def transport_error(err: requests.RequestException, *, what: str) -> ConnectorError:
    """Translate a requests exception raised before any response arrived."""
    if isinstance(err, requests.Timeout):
        return SourceUnavailable(f"{what}: the remote did not answer in time ({err})")
    if isinstance(err, requests.ConnectionError):
        return SourceUnavailable(f"{what}: cannot connect to the remote ({err})")
    if isinstance(err, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
        return MappingError(f"{what}: the URL is not valid ({err})")
    return SourceUnavailable(f"{what}: {err}")
