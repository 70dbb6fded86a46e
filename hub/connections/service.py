"""Connections: create, change, look up, test, and ask for a run (a durable job)."""

from __future__ import annotations

import uuid as uuid_mod
from datetime import datetime
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

import connectors
from hub.audit import service as audit
from hub.connections import credentials
from hub.connections.outbound import STRICT, OutboundRules, check_url, checked_session
from hub.connections.schemas import ConnectionCreate, ConnectionRead, ConnectionUpdate
from hub.context import current_request_id
from hub.errors import Conflict, HubError, InvalidField, NotFound
from hub.models import (
    Connection,
    ConnectionJob,
    Exercise,
    ExerciseParticipant,
    Partner,
    PushOutboxItem,
)
from hub.models.base import utcnow
from hub.partners import service as partners

OPEN_STATES = ("queued",)


def _record(session: Session, *, action: str, actor: str, connection: Connection, **details: Any):
    audit.append(
        session,
        [
            audit.Record(
                action=action,
                actor=actor,
                object_ref=f"connection:{connection.uuid}",
                request_id=current_request_id(),
                details={"name": connection.name, "kind": connection.kind, **details},
            )
        ],
    )


def _check_filters(kind: str, filters: dict[str, Any]) -> None:
    if kind in ("misp-pull", "misp-push"):
        from connectors.misp.client import MispRules

        try:
            MispRules.model_validate(filters)
        except ValueError as err:
            raise InvalidField(f"filters: {err}".splitlines()[0], field="filters") from None
    elif not filters.get("collection"):
        raise InvalidField("a TAXII connection needs filters.collection", field="filters")


def create(
    session: Session,
    *,
    data: ConnectionCreate,
    secret: str,
    actor: str,
    rules: OutboundRules = STRICT,
) -> Connection:
    """Register a connection; the first run is due at once. The URL's host is resolved and
    checked first (``rules``), before the session is used: an endpoint calls this with no
    transaction open yet."""
    check_url(data.url, rules)
    owner = partners.get(session, ref=data.partner)
    if session.scalar(select(Connection.id).where(Connection.name == data.name)) is not None:
        raise Conflict(f"a connection named {data.name!r} exists already", field="name")
    _check_filters(data.kind.value, data.filters)
    exercise = _exercise_mode(session, data, owner) if data.exercise is not None else None
    row = Connection(
        uuid=str(uuid_mod.uuid4()),
        name=data.name,
        kind=data.kind.value,
        url=data.url,
        partner_id=owner.id,
        secret=credentials.seal(data.credentials.plain(), secret=secret),
        verify_tls=data.verify_tls,
        interval_seconds=data.interval_seconds,
        filters=data.filters,
        enabled=data.enabled,
        cursor={},
        next_run_at=utcnow(),
        exercise_id=exercise,
    )
    session.add(row)
    session.flush()
    extra = {"exercise": exercise} if exercise else {}
    _record(session, action="connection.create", actor=actor, connection=row, url=row.url, **extra)
    return row


def _exercise_mode(session: Session, data: ConnectionCreate, owner: Partner) -> str:
    """The exercise a connection in exercise mode pushes for: an open exercise its owner
    takes part in (as for an exercise-only key). Only a push connection has one: what a
    pull brings in is real traffic."""
    if data.kind.value != "misp-push":
        raise InvalidField("only a misp-push connection has an exercise mode", field="exercise")
    found = session.scalar(select(Exercise).where(Exercise.uuid == str(data.exercise).lower()))
    if found is None:
        raise InvalidField(f"no exercise {data.exercise}", field="exercise")
    if found.status == "closed":
        raise Conflict(f"exercise {found.uuid} is closed", field="exercise")
    taking_part = session.get(ExerciseParticipant, (found.id, owner.id))
    if taking_part is None:
        raise InvalidField(f"{owner.name} does not take part in this exercise", field="exercise")
    return found.uuid


def update(
    session: Session,
    *,
    connection: Connection,
    data: ConnectionUpdate,
    secret: str,
    actor: str,
    rules: OutboundRules = STRICT,
) -> Connection:
    changed = sorted(data.model_fields_set)
    if data.url is not None:
        check_url(data.url, rules)
        connection.url = data.url
    if data.credentials is not None:
        connection.secret = credentials.seal(data.credentials.plain(), secret=secret)
    if data.interval_seconds is not None:
        connection.interval_seconds = data.interval_seconds
    if data.filters is not None:
        _check_filters(connection.kind, data.filters)
        connection.filters = data.filters
    if data.enabled is not None:
        connection.enabled = data.enabled
    if data.verify_tls is not None:
        connection.verify_tls = data.verify_tls
    session.flush()
    _record(session, action="connection.update", actor=actor, connection=connection, fields=changed)
    return connection


def get(session: Session, *, ref: str) -> Connection:
    """By uuid or name."""
    row = session.scalar(select(Connection).where(Connection.uuid == ref.lower()))
    row = row or session.scalar(select(Connection).where(Connection.name == ref))
    if row is None:
        raise NotFound(f"no connection {ref!r}")
    return row


def list_all(session: Session) -> list[Connection]:
    return list(session.scalars(select(Connection).order_by(Connection.id)))


def to_read(session: Session, connection: Connection, *, secret: str) -> ConnectionRead:
    owner = session.get(Partner, connection.partner_id)
    assert owner is not None
    try:
        names = sorted(credentials.unseal(connection.secret, secret=secret))
    except Exception:  # shown as "none readable", the run reports why
        names = []
    return ConnectionRead(
        uuid=connection.uuid,
        name=connection.name,
        kind=connection.kind,  # type: ignore[arg-type]
        url=connection.url,
        partner_uuid=owner.uuid,
        partner_name=owner.name,
        interval_seconds=connection.interval_seconds,
        filters=connection.filters,
        enabled=connection.enabled,
        verify_tls=connection.verify_tls,
        cursor=connection.cursor,
        next_run_at=connection.next_run_at,
        last_run_at=connection.last_run_at,
        last_success_at=connection.last_success_at,
        last_error=connection.last_error,
        credentials_set=names,
        exercise=connection.exercise_id,
    )


def connector_for(
    connection: Connection,
    *,
    secret: str,
    http: requests.Session | None = None,
    rules: OutboundRules = STRICT,
) -> Any:
    """The connector object for this connection (raises connectors.MappingError on bad
    settings, OutboundRefused for a URL the hub may not reach). Resolves the URL's host:
    call it with no transaction open."""
    check_url(connection.url, rules)
    http = http or checked_session(rules)
    config: dict[str, Any] = {
        "url": connection.url,
        "verify_tls": connection.verify_tls,
        **credentials.unseal(connection.secret, secret=secret),
    }
    if connection.kind == "taxii-pull":
        config["collection"] = connection.filters.get("collection")
    else:
        config.pop("username", None)
        config.pop("password", None)
    return connectors.build(connection.kind, config, http=http)


def test(
    connection: Connection,
    *,
    secret: str,
    http: requests.Session | None = None,
    rules: OutboundRules = STRICT,
) -> tuple[bool, str, dict[str, Any] | None]:
    """Ask the remote who we are there; (ok, a sentence, the details). No database use:
    call it with no transaction open (it waits for the remote)."""
    try:
        info = connector_for(connection, secret=secret, http=http, rules=rules).check()
    except connectors.ConnectorError as err:
        kind = "will retry" if err.retriable else "needs fixing"
        return False, f"{connection.name}: {err} ({kind})", None
    except HubError as err:  # a URL the hub may not reach, credentials that do not decrypt
        return False, f"{connection.name}: {err.detail} (needs fixing)", None
    return (
        True,
        f"{connection.name}: {info.sentence()}",
        {
            "system": info.system,
            "version": info.version,
            "user": info.user,
            "organisation": info.organisation,
            "permissions": info.permissions,
        },
    )


def enqueue(
    session: Session,
    *,
    connection: Connection,
    trigger: str,
    now: datetime | None = None,
) -> ConnectionJob:
    """A run of the connection, due now; an open run is reused (one run at a time)."""
    open_job = session.scalar(
        select(ConnectionJob).where(
            ConnectionJob.connection_id == connection.id, ConnectionJob.state.in_(OPEN_STATES)
        )
    )
    if open_job is not None:
        if trigger == "manual":
            open_job.run_after = min(open_job.run_after, now or utcnow())
        return open_job
    job = ConnectionJob(
        uuid=str(uuid_mod.uuid4()),
        connection_id=connection.id,
        trigger=trigger,
        state="queued",
        attempts=0,
        run_after=now or utcnow(),
        progress={},
        stats={},
    )
    session.add(job)
    session.flush()
    return job


def jobs_of(session: Session, *, connection: Connection, limit: int = 50) -> list[ConnectionJob]:
    return list(
        session.scalars(
            select(ConnectionJob)
            .where(ConnectionJob.connection_id == connection.id)
            .order_by(ConnectionJob.id.desc())
            .limit(limit)
        )
    )


def requeue(
    session: Session, *, connection: Connection, actor: str, now: datetime | None = None
) -> tuple[ConnectionJob, int]:
    """Give a connection's dead letters another go once the cause is fixed (a rotated key,
    a remote repaired): the latest run if it is dead (it resumes where it stopped) and
    every dead push. Returns the job that will run and how many pushes went back."""
    now = now or utcnow()
    pushes = session.execute(
        sa.update(PushOutboxItem)
        .where(PushOutboxItem.connection_id == connection.id, PushOutboxItem.state == "dead")
        .values(state="pending", attempts=0)
    ).rowcount
    latest = next(iter(jobs_of(session, connection=connection, limit=1)), None)
    if latest is not None and latest.state == "dead":
        latest.state = "queued"
        latest.attempts = 0
        latest.run_after = now
        latest.finished_at = None
        latest.claimed_by = latest.lease_until = None
        job = latest
    elif pushes:
        job = enqueue(session, connection=connection, trigger="manual", now=now)
    else:
        raise Conflict(f"connection {connection.name!r} has no dead run or push to requeue")
    session.flush()
    _record(
        session,
        action="connection.requeue",
        actor=actor,
        connection=connection,
        job=job.uuid,
        pushes=pushes,
        last_error=job.last_error,
    )
    return job, pushes
