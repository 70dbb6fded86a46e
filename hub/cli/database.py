"""`hub db`: migrate the database schema and check it for drift."""

from __future__ import annotations

import typer

from hub import migrate
from hub.cli.common import fail, runtime

group = typer.Typer(help="Database schema.", no_args_is_help=True)


@group.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Migrate the database to the newest schema (or REVISION)."""
    with runtime() as rt:
        migrate.upgrade(rt.engine, revision)
        typer.echo(f"database at revision {migrate.current(rt.engine)}")


@group.command("check")
def db_check() -> None:
    """Exit non-zero when the models and the migrated database differ."""
    with runtime() as rt:
        diffs = migrate.drift(rt.engine)
    if diffs:
        for diff in diffs:
            typer.echo(str(diff), err=True)
        raise fail("models and migrations differ")
    typer.echo("no drift")
