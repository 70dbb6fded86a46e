"""Operator REST for connections: /api/v1/admin/connections."""

from __future__ import annotations

from fastapi import APIRouter

from hub.connections import service
from hub.connections.outbound import OutboundRules, check_url
from hub.connections.schemas import (
    ConnectionCreate,
    ConnectionRead,
    ConnectionUpdate,
    JobRead,
    RequeueReport,
    TestReport,
)
from hub.routing import (
    HubRoute,
    Operator,
    OperatorOrAuditor,
    SessionDep,
    SettingsDep,
    end_unit_of_work,
)
from hub.schemas import Page

router = APIRouter(prefix="/api/v1/admin/connections", tags=["connections"], route_class=HubRoute)


@router.post(
    "",
    status_code=201,
    response_model=ConnectionRead,
    responses={409: {"description": "The name is taken"}},
)
def create_connection(
    body: ConnectionCreate, session: SessionDep, settings: SettingsDep, who: Operator
) -> ConnectionRead:
    """Configure a link to an outside system; credentials are stored encrypted, never shown.
    The URL must not point at loopback, link-local or cloud-metadata addresses (private
    ranges only with HUB_CONNECTIONS_ALLOW_PRIVATE)."""
    row = service.create(
        session,
        data=body,
        secret=settings.secret,
        actor=who.actor,
        rules=OutboundRules.from_settings(settings),
    )
    return service.to_read(session, row, secret=settings.secret)


@router.get("", response_model=Page[ConnectionRead])
def list_connections(
    session: SessionDep, settings: SettingsDep, who: OperatorOrAuditor
) -> Page[ConnectionRead]:
    rows = service.list_all(session)
    return Page(
        items=[service.to_read(session, r, secret=settings.secret) for r in rows],
        next_cursor=None,
    )


@router.get("/{ref}", response_model=ConnectionRead)
def get_connection(
    ref: str, session: SessionDep, settings: SettingsDep, who: OperatorOrAuditor
) -> ConnectionRead:
    return service.to_read(session, service.get(session, ref=ref), secret=settings.secret)


@router.patch(
    "/{ref}",
    response_model=ConnectionRead,
    responses={409: {"description": "The name is taken"}},
)
def update_connection(
    ref: str, body: ConnectionUpdate, session: SessionDep, settings: SettingsDep, who: Operator
) -> ConnectionRead:
    rules = OutboundRules.from_settings(settings)
    if body.url is not None:
        check_url(body.url, rules)  # resolves the name: before the unit of work begins
    row = service.update(
        session,
        connection=service.get(session, ref=ref),
        data=body,
        secret=settings.secret,
        actor=who.actor,
        rules=rules,
    )
    return service.to_read(session, row, secret=settings.secret)


@router.post("/{ref}/test", response_model=TestReport)
def test_connection(
    ref: str, session: SessionDep, settings: SettingsDep, who: Operator
) -> TestReport:
    """Ask the remote what it is and what our key may do there, in plain words."""
    connection = service.get(session, ref=ref)
    end_unit_of_work(session)  # nothing is held while the remote takes its time
    ok, report, remote = service.test(
        connection, secret=settings.secret, rules=OutboundRules.from_settings(settings)
    )
    return TestReport(ok=ok, report=report, remote=remote)


@router.post("/{ref}/run", status_code=202, response_model=JobRead)
def run_connection(ref: str, session: SessionDep, who: Operator) -> JobRead:
    """Queue a run now; the worker (``hub worker``) does it."""
    job = service.enqueue(session, connection=service.get(session, ref=ref), trigger="manual")
    return JobRead.model_validate(job)


@router.post(
    "/{ref}/requeue",
    status_code=202,
    response_model=RequeueReport,
    responses={409: {"description": "Nothing dead to requeue"}},
)
def requeue_connection(ref: str, session: SessionDep, who: Operator) -> RequeueReport:
    """After the cause is fixed (rotated credentials, a repaired remote): run the dead job
    again from where it stopped, and send the dead pushes again. 409 if nothing is dead."""
    job, pushes = service.requeue(
        session, connection=service.get(session, ref=ref), actor=who.actor
    )
    return RequeueReport(job=JobRead.model_validate(job), pushes_requeued=pushes)


@router.get("/{ref}/jobs", response_model=Page[JobRead])
def list_jobs(ref: str, session: SessionDep, who: OperatorOrAuditor) -> Page[JobRead]:
    """The latest runs, newest first, with their counts and last error."""
    jobs = service.jobs_of(session, connection=service.get(session, ref=ref))
    return Page(items=[JobRead.model_validate(j) for j in jobs], next_cursor=None)
