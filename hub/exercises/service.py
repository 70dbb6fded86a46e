"""Exercises: create, participants, exercise-only keys, injects, close.

Isolation is not here: it is the release path's one rule (``tlp.in_scope``), which every
channel applies to the exercise id an event and a key carry. This module only gives items
and keys that id: injects are ingested with it (as the hub's own organisation, the
controller's), exercise keys are issued with it, and closing withdraws every item of the
exercise as a withdrawal reaches its recipients (``hub.intel.withdrawal``).
"""

from __future__ import annotations

import ipaddress
import uuid as uuid_mod
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth import service as keys
from hub.context import current_request_id
from hub.errors import Conflict, Forbidden, HubError, InvalidField, NotFound
from hub.intel import service as intel
from hub.intel import withdrawal
from hub.jobs import claiming
from hub.models import (
    ApiKey,
    Event,
    Exercise,
    ExerciseInject,
    ExerciseParticipant,
    ExerciseTarget,
    Partner,
)
from hub.models.base import utcnow
from hub.partners import repository as partners
from hub.partners.schemas import Constituency
from hub.vocabulary import Role

INJECT_CHANNEL = "exercise-inject"


def create(
    session: Session,
    *,
    name: str,
    actor: str,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    description: str | None = None,
    match_real_constituencies: bool = False,
    participants: list[str] = (),  # type: ignore[assignment]
    targets: Mapping[str, Constituency] | None = None,
) -> Exercise:
    if starts_at is not None and ends_at is not None and ends_at < starts_at:
        raise InvalidField("ends before it starts", field="ends_at")
    exercise = Exercise(
        name=name,
        starts_at=starts_at,
        ends_at=ends_at,
        controller=actor,
        status="planned",
        description=description,
        match_real_constituencies=match_real_constituencies,
    )
    session.add(exercise)
    session.flush()
    for i, ref in enumerate(participants):
        add_participant(session, exercise, partner_ref=ref, actor=actor, field=f"participants.{i}")
    for ref, constituency in (targets or {}).items():
        add_targets(session, exercise, partner_ref=ref, constituency=constituency)
    return exercise


def add_targets(
    session: Session, exercise: Exercise, *, partner_ref: str, constituency: Constituency
) -> None:
    """The scenario's fictional constituents of a participant (prefixes, AS numbers,
    domains, sectors): matched for this exercise's items only and notified through the
    participant, whatever ``match_real_constituencies`` says; real traffic never meets them."""
    _open(exercise)
    field = f"targets.{partner_ref}"
    partner = _partner(session, partner_ref, field)
    if session.get(ExerciseParticipant, (exercise.id, partner.id)) is None:
        raise InvalidField(f"{partner.name} does not take part in this exercise", field=field)
    rows: list[ExerciseTarget] = []
    for prefix in constituency.ip_prefixes:
        net = ipaddress.ip_network(prefix)
        rows.append(
            ExerciseTarget(
                kind="prefix",
                value=str(prefix),
                family=net.version,
                prefix_len=net.prefixlen,
                net_start=f"{int(net.network_address):032x}",
                net_end=f"{int(net.broadcast_address):032x}",
            )
        )
    rows += [ExerciseTarget(kind="asn", value=str(a), asn=a) for a in constituency.asns]
    rows += [ExerciseTarget(kind="domain", value=d) for d in constituency.domains]
    rows += [ExerciseTarget(kind="sector", value=s.value) for s in constituency.sectors]
    for row in rows:
        row.exercise_id, row.partner_id = exercise.id, partner.id
    session.add_all(rows)
    session.flush()


def get(session: Session, uuid: str) -> Exercise:
    found = session.scalar(select(Exercise).where(Exercise.uuid == uuid.strip().lower()))
    if found is None:
        raise NotFound(f"no exercise {uuid}")
    return found


def all_exercises(session: Session) -> list[Exercise]:
    return list(session.scalars(select(Exercise).order_by(Exercise.id)))


def participants(session: Session, exercise: Exercise) -> list[Partner]:
    return list(
        session.scalars(
            select(Partner)
            .join(ExerciseParticipant, ExerciseParticipant.partner_id == Partner.id)
            .where(ExerciseParticipant.exercise_id == exercise.id)
            .order_by(Partner.name)
        )
    )


def _partner(session: Session, ref: str, field: str) -> Partner:
    partner = partners.by_uuid(session, ref.strip().lower()) or partners.by_name(session, ref)
    if partner is None:
        raise InvalidField(f"no partner {ref!r}", field=field)
    return partner


def _open(exercise: Exercise) -> None:
    if exercise.status == "closed":
        raise Conflict(f"exercise {exercise.uuid} is closed")


def add_participant(
    session: Session, exercise: Exercise, *, partner_ref: str, actor: str, field: str = "partner"
) -> Partner:
    """Add a partner (idempotent). The hub's own organisation is the controller, never a
    participant."""
    _open(exercise)
    partner = _partner(session, partner_ref, field)
    if partner.is_hub_org:
        raise InvalidField(
            "the hub's own organisation runs exercises; it is no participant", field=field
        )
    known = session.get(ExerciseParticipant, (exercise.id, partner.id))
    if known is None:
        session.add(
            ExerciseParticipant(exercise_id=exercise.id, partner_id=partner.id, added_by=actor)
        )
        session.flush()
    return partner


def create_key(
    session: Session,
    exercise: Exercise,
    *,
    partner_ref: str,
    role: Role,
    actor: str,
    secret: str,
    expires_at: datetime | None = None,
) -> tuple[keys.IssuedKey, Partner]:
    """An exercise-only key for a participant: it receives and submits only this
    exercise's items, and no real traffic."""
    _open(exercise)
    partner = _partner(session, partner_ref, "partner")
    if session.get(ExerciseParticipant, (exercise.id, partner.id)) is None:
        raise InvalidField(f"{partner.name} does not take part in this exercise", field="partner")
    issued = keys.create_key(
        session,
        partner=partner,
        role=role,
        secret=secret,
        actor=actor,
        expires_at=expires_at,
        comment=f"exercise {exercise.uuid}",
        exercise_id=exercise.uuid,
    )
    return issued, partner


# --- injects ----------------------------------------------------------------------------------


def add_inject(
    session: Session,
    exercise: Exercise,
    *,
    name: str,
    event: dict[str, Any],
    send_at: datetime | None,
) -> ExerciseInject:
    _open(exercise)
    inner = event.get("Event", event)
    if not isinstance(inner, dict):
        raise InvalidField("an inject is a MISP event", field="event")
    inner = dict(inner)
    inner.setdefault("uuid", str(uuid_mod.uuid4()))
    inner.setdefault("published", True)
    inject = ExerciseInject(
        exercise_id=exercise.id, name=name, send_at=send_at, payload=orjson.dumps(inner)
    )
    session.add(inject)
    session.flush()
    return inject


def send_inject(
    session: Session, exercise: Exercise, inject: ExerciseInject, *, actor: str, policy: tlp.Policy
) -> str:
    """Ingest the inject now, in the exercise, as the hub's own organisation (the
    controller's); returns the event uuid. The exercise is running from its first inject."""
    _open(exercise)
    if inject.sent_at is not None:
        raise Conflict(f"inject {inject.id} was sent at {inject.sent_at.isoformat()}")
    source = partners.hub_org(session)
    if source is None:
        raise Forbidden("the hub's own organisation does not exist yet; run `hub init`")
    if exercise.status == "planned":
        exercise.status = "running"
    with session.begin_nested():
        [outcome] = intel.ingest_events(
            session,
            payloads=[orjson.loads(inject.payload)],
            source=source,
            actor=actor,
            channel=INJECT_CHANNEL,
            policy=policy,
            exercise=exercise.uuid,
        )
    if outcome.status not in ("stored", "updated"):
        raise InvalidField(f"the inject was not stored: {outcome.detail}", field="event")
    inject.event_uuid, inject.sent_at = outcome.uuid, utcnow()
    session.flush()
    return outcome.uuid


def injects(session: Session, exercise: Exercise) -> list[ExerciseInject]:
    return list(
        session.scalars(
            select(ExerciseInject)
            .where(ExerciseInject.exercise_id == exercise.id)
            .order_by(ExerciseInject.id)
        )
    )


def send_due(
    session: Session, *, now: datetime, actor: str, policy: tlp.Policy, limit: int | None = None
) -> int:
    """Send every inject of an open exercise whose time has come (at most ``limit``: the
    worker sends one a unit, claimed so that two workers never send the same one)."""
    rows = session.execute(
        claiming(select(ExerciseInject, Exercise))
        .join(Exercise, Exercise.id == ExerciseInject.exercise_id)
        .where(
            ExerciseInject.sent_at.is_(None),
            ExerciseInject.send_at.is_not(None),
            ExerciseInject.send_at <= now,
            Exercise.status != "closed",
        )
        .order_by(ExerciseInject.send_at, ExerciseInject.id)
        .limit(limit)
    ).all()
    for inject, exercise in rows:
        try:
            with session.begin_nested():
                send_inject(session, exercise, inject, actor=actor, policy=policy)
        except HubError as err:
            _unschedule(session, exercise, inject, actor=actor, reason=err.detail)
    return len(rows)


def _unschedule(
    session: Session, exercise: Exercise, inject: ExerciseInject, *, actor: str, reason: str
) -> None:
    """An inject that cannot be sent (refused by ingest, the exercise frozen) is taken off the
    schedule, left for the controller to fix and send by hand, and the reason recorded:
    otherwise it would fail every worker round, and the worker's other jobs with it."""
    inject.send_at = None
    audit.append(
        session,
        [
            audit.Record(
                action="exercise.inject-failed",
                actor=actor,
                object_ref=f"exercise:{exercise.uuid}",
                request_id=current_request_id(),
                details={"inject": inject.id, "name": inject.name, "reason": reason},
            )
        ],
    )
    session.flush()


# --- closing ----------------------------------------------------------------------------------


def close(
    session: Session, exercise: Exercise, *, actor: str, reason: str, policy: tlp.Policy
) -> int:
    """Freeze the exercise and withdraw every item of it: each becomes a final version with
    everything soft-deleted (as an operator's delete), so the participants that had it get
    its deletions and revocations (push connections in exercise mode push them); the items,
    their versions and the audit log stay. Its exercise-only keys are revoked (each audited
    as ``key.revoke``): from now on they get the 401 of any revoked key. Returns how many
    events were withdrawn."""
    _open(exercise)
    withdrawn = 0
    items = session.scalars(
        select(Event).where(Event.exercise_id == exercise.uuid).order_by(Event.id)
    ).all()
    for event in items:
        try:
            with session.begin_nested():
                withdrawal.delete_event(
                    session,
                    event=event,
                    reason=f"exercise closed: {reason}",
                    actor=actor,
                    policy=policy,
                )
        except Conflict:
            continue  # nothing left to withdraw
        withdrawn += 1
    live_keys = session.scalars(
        select(ApiKey)
        .where(ApiKey.exercise_id == exercise.uuid, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.id)
    ).all()
    for record in live_keys:
        keys.revoke_key(session, record=record, actor=actor)
    exercise.status, exercise.closed_at, exercise.closed_by = "closed", utcnow(), actor
    session.flush()
    return withdrawn
