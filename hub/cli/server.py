"""`hub init`, `hub serve`, `hub worker`: set the hub up, serve the API, run the jobs."""

from __future__ import annotations

from typing import Annotated

import typer

from hub.auth import service as keys
from hub.cli.common import actor, fail, runtime, unit_of_work
from hub.errors import HubError
from hub.partners import service as partners
from hub.settings import SettingsError
from hub.vocabulary import Role


def init() -> None:
    """Create the hub's own organisation and, if no operator key exists, print one (once)."""
    with runtime() as rt, unit_of_work(rt) as session:
        settings = rt.settings
        org, created = partners.ensure_hub_org(session, name=settings.org_name, actor=actor())
        typer.echo(f"organisation: {org.name} ({org.uuid}) {'created' if created else 'exists'}")
        if keys.operator_key_exists(session):
            typer.echo(
                "an operator key already exists; make another with "
                f"`hub key create --partner {org.uuid} --role operator`"
            )
            return
        issued = keys.create_key(
            session,
            partner=org,
            role=Role.OPERATOR,
            actor=actor(),
            secret=rt.secret,
            comment="first operator key (hub init)",
        )
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    typer.echo(f"operator key: {issued.key}")
    typer.echo("  It is shown this once; keep it somewhere safe. Use it as:")
    typer.echo(f'  curl -H "Authorization: {issued.key}" {base}/api/v1/me')


def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 1,
) -> None:
    """Serve the API (uvicorn); each server process builds its runtime in ``create_app``."""
    import uvicorn

    from hub import migrate

    with runtime() as rt:
        settings = rt.settings
        try:
            settings.check()
        except SettingsError as err:
            raise fail(str(err)) from None
        if migrate.current(rt.engine) != migrate.alembic_head():
            raise fail("the database is not at the newest schema; run `hub db upgrade` first")
    uvicorn.run(
        "hub.main:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        log_config=None,
        proxy_headers=True,
        server_header=False,
    )


def worker(
    once: Annotated[bool, typer.Option("--once", help="do everything due now, then exit")] = False,
    interval: Annotated[float, typer.Option(help="seconds to sleep when idle")] = 5.0,
) -> None:
    """Run background jobs (see hub/worker.py): STIX rendering for events too large to
    render at ingest, and the jobs later issues add."""
    from hub import worker as background

    with runtime() as rt:
        try:
            if once:
                done = background.run_due(rt.sessions, rt)
                typer.echo(
                    "worker: "
                    + ", ".join(f"{name} {count}" for name, count in done.items())
                    + "; nothing else due"
                )
                return
            background.run_forever(rt.sessions, rt, interval=interval)
        except HubError as err:
            raise fail(err.detail) from None
