"""What every `hub` command shares: the runtime, one unit of work, who acts, how it fails."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import orjson
import typer
from sqlalchemy.orm import Session

from hub.db import session_scope
from hub.errors import HubError
from hub.runtime import Runtime


def actor() -> str:
    """The audit actor of a command: the operating-system user who ran it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def runtime() -> Runtime:
    """The runtime of one command (settings from the environment, the TLP policy, a
    database engine): the same object the API and the worker are built on. Close it."""
    return Runtime.open()


@contextmanager
def unit_of_work(rt: Runtime | None = None) -> Iterator[Session]:
    """One transaction on ``rt`` (or on a runtime of its own), committed as a whole; a
    refusal is printed with its field."""
    with ExitStack() as stack:
        if rt is None:
            rt = stack.enter_context(runtime())
        try:
            with session_scope(rt.sessions) as session:
                yield session
        except HubError as err:
            field = f" (field {err.field})" if err.field else ""
            raise fail(f"{err.detail}{field}") from None


def dump(data: object) -> None:
    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
