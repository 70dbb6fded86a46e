"""What the code serving one request knows about it, without importing the web layer: its
request id (set by the request middleware, read by logging and the audit log)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the HTTP request being served, if any (CLI and jobs have none)."""
    return request_id.get()
