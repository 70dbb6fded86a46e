"""`hub connection`: connections to outside MISP and TAXII servers."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from sqlalchemy.orm import Session, sessionmaker

from hub.cli.common import actor, fail, runtime, unit_of_work
from hub.db import session_scope

if TYPE_CHECKING:
    from hub.models import ConnectionJob

group = typer.Typer(help="Connections to outside MISP and TAXII servers.", no_args_is_help=True)


@group.command("add")
def connection_add(
    name: Annotated[str, typer.Option(help="a name for the connection")],
    kind: Annotated[str, typer.Option(help="misp-pull, misp-push or taxii-pull")],
    url: Annotated[str, typer.Option(help="MISP base URL, or TAXII discovery URL (…/taxii2/)")],
    partner: Annotated[str, typer.Option(help="owner: partner uuid or name (or the hub's org)")],
    api_key: Annotated[
        str | None, typer.Option(help="the remote key (default: $HUB_CONNECTION_KEY)")
    ] = None,
    username: Annotated[str | None, typer.Option(help="TAXII HTTP Basic user")] = None,
    password: Annotated[str | None, typer.Option(help="TAXII HTTP Basic password")] = None,
    interval: Annotated[int, typer.Option(help="seconds between scheduled runs")] = 3600,
    filters: Annotated[
        str | None,
        typer.Option(help='JSON, e.g. {"tags": ["tlp:green"]} or {"collection": "…"}'),
    ] = None,
    no_verify_tls: Annotated[bool, typer.Option("--no-verify-tls")] = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="add it switched off")] = False,
) -> None:
    """Configure a connection; prints its uuid. Credentials are stored encrypted."""

    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules
    from hub.connections.schemas import ConnectionCreate

    key = api_key or os.environ.get("HUB_CONNECTION_KEY")
    data = _connection_input(
        ConnectionCreate,
        name=name,
        kind=kind,
        url=url,
        partner=partner,
        credentials={"api_key": key, "username": username, "password": password},
        interval_seconds=interval,
        filters=_filters_json(filters) if filters else {},
        enabled=not disabled,
        verify_tls=not no_verify_tls,
    )
    with runtime() as rt, unit_of_work(rt) as session:
        row = connections.create(
            session,
            data=data,
            secret=rt.secret,
            actor=actor(),
            rules=OutboundRules.from_settings(rt.settings),
        )
        uuid_out = row.uuid
    typer.echo(uuid_out)


def _filters_json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as err:
        raise fail(f"--filters is not JSON: {err}", 2) from None


def _connection_input(model: Any, **fields: Any) -> Any:
    """The validated input, or exit 2 naming the first field that is wrong."""
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        raise fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}", 2) from None


@group.command("update")
def connection_update(
    ref: Annotated[str, typer.Argument(help="uuid or name")],
    url: Annotated[str | None, typer.Option(help="a new URL")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="a new remote key (or $HUB_CONNECTION_KEY with --new-key)")
    ] = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="take the new key from $HUB_CONNECTION_KEY")
    ] = False,
    username: Annotated[str | None, typer.Option(help="TAXII HTTP Basic user")] = None,
    password: Annotated[str | None, typer.Option(help="TAXII HTTP Basic password")] = None,
    interval: Annotated[int | None, typer.Option(help="seconds between scheduled runs")] = None,
    filters: Annotated[str | None, typer.Option(help="JSON filters (replace the old ones)")] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enable/--disable", help="switch it on or off")
    ] = None,
    verify_tls: Annotated[bool | None, typer.Option("--verify-tls/--no-verify-tls")] = None,
) -> None:
    """Change a connection (rotated credentials, a new URL, schedule, filters, on/off);
    only what is given changes. Credentials given replace the stored ones, encrypted."""

    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules
    from hub.connections.schemas import ConnectionUpdate

    key = api_key or (os.environ.get("HUB_CONNECTION_KEY") if new_key else None)
    fields: dict[str, Any] = {
        "url": url,
        "interval_seconds": interval,
        "filters": _filters_json(filters) if filters else None,
        "enabled": enabled,
        "verify_tls": verify_tls,
    }
    if key or username or password:
        fields["credentials"] = {"api_key": key, "username": username, "password": password}
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        raise fail("nothing to change: give at least one option (see --help)", 2)
    data = _connection_input(ConnectionUpdate, **given)
    with runtime() as rt, unit_of_work(rt) as session:
        row = connections.update(
            session,
            connection=connections.get(session, ref=ref),
            data=data,
            secret=rt.secret,
            actor=actor(),
            rules=OutboundRules.from_settings(rt.settings),
        )
        name = row.name
    typer.echo(f"updated {name}: {', '.join(sorted(given))}")


@group.command("list")
def connection_list() -> None:
    """Every connection, with its state."""
    from hub.connections import service as connections

    with runtime() as rt, unit_of_work(rt) as session:
        rows = [
            connections.to_read(session, r, secret=rt.secret) for r in connections.list_all(session)
        ]
    for r in rows:
        state = "enabled" if r.enabled else "disabled"
        error = f"  last error: {r.last_error}" if r.last_error else ""
        typer.echo(
            f"{r.uuid}  {r.kind.value:<10} {state:<8} {r.name}  → {r.url}  ({r.partner_name})"
            f"  last success {r.last_success_at or 'never'}{error}"
        )


@group.command("test")
def connection_test(ref: Annotated[str, typer.Argument(help="uuid or name")]) -> None:
    """Ask the remote what it is and what our key may do there."""
    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules

    with runtime() as rt:
        with unit_of_work(rt) as session:
            row = connections.get(session, ref=ref)
        ok, report, _ = connections.test(
            row, secret=rt.secret, rules=OutboundRules.from_settings(rt.settings)
        )
    if not ok:
        raise fail(report)
    typer.echo(report)


@group.command("run")
def connection_run(
    ref: Annotated[str, typer.Argument(help="uuid or name")],
    queue_only: Annotated[
        bool, typer.Option("--queue-only", help="only queue the run for `hub worker`")
    ] = False,
) -> None:
    """Run a connection now (a durable job: a crash resumes where it stopped)."""
    from hub.connections import jobs
    from hub.connections import service as connections
    from hub.connections.outbound import OutboundRules

    with runtime() as rt:
        with unit_of_work(rt) as session:
            job_id = connections.enqueue(
                session, connection=connections.get(session, ref=ref), trigger="manual"
            ).id
        if queue_only:
            typer.echo("queued; `hub worker` will run it")
            return
        running = True
        while running:
            ran = jobs.run_next(
                rt.sessions,
                policy=rt.policy,
                secret=rt.secret,
                job_id=job_id,
                rules=OutboundRules.from_settings(rt.settings),
            )
            job = _connection_job(rt.sessions, job_id)
            running = bool(ran) and job.state == "queued"
    counts = ", ".join(f"{k} {v}" for k, v in job.stats.items() if k != "errors")
    if job.state == "done":
        typer.echo(f"done: {counts or 'nothing to do'}")
    elif job.state == "dead":
        raise fail(f"failed: {job.last_error}")
    else:
        typer.echo(
            f"will retry (the worker continues it): {job.last_error or 'waiting its turn'}; "
            f"so far {counts or 'nothing'}"
        )


def _connection_job(maker: sessionmaker[Session], job_id: int) -> ConnectionJob:
    """The job as committed (a detached copy, for reporting)."""
    from hub.models import ConnectionJob

    with session_scope(maker, write=False) as session:
        job = session.get(ConnectionJob, job_id)
        assert job is not None
        return job


@group.command("requeue")
def connection_requeue(ref: Annotated[str, typer.Argument(help="uuid or name")]) -> None:
    """After fixing the cause (credentials, the remote), retry the dead run and dead pushes."""
    from hub.connections import service as connections

    with unit_of_work() as session:
        job, pushes = connections.requeue(
            session, connection=connections.get(session, ref=ref), actor=actor()
        )
        job_uuid = job.uuid
    typer.echo(
        f"requeued run {job_uuid} and {pushes} dead push(es); "
        f"`hub worker` (or `hub connection run {ref}`) does them"
    )
