"""Operator REST for exercises: /api/v1/admin/exercises (issue #20)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import JSONResponse, Response

from hub.exercises import report, service
from hub.exercises.schemas import (
    CloseBody,
    ExerciseCreate,
    ExerciseKeyCreate,
    ExerciseKeyIssued,
    ExerciseRead,
    ExerciseReport,
    InjectCreate,
    InjectRead,
    ParticipantAdd,
)
from hub.models import Exercise
from hub.routing import (
    HubRoute,
    Operator,
    OperatorOrAuditor,
    PolicyDep,
    SessionDep,
    SettingsDep,
)
from hub.schemas import Page

router = APIRouter(prefix="/api/v1/admin/exercises", tags=["exercises"], route_class=HubRoute)


def _read(session: SessionDep, exercise: Exercise) -> ExerciseRead:
    return ExerciseRead(
        uuid=exercise.uuid,
        name=exercise.name,
        status=exercise.status,  # type: ignore[arg-type]
        starts_at=exercise.starts_at,
        ends_at=exercise.ends_at,
        controller=exercise.controller,
        description=exercise.description,
        match_real_constituencies=exercise.match_real_constituencies,
        participants=[p.uuid for p in service.participants(session, exercise)],
        created_at=exercise.created_at,
        closed_at=exercise.closed_at,
    )


@router.post("", response_model=ExerciseRead, status_code=201)
def create_exercise(body: ExerciseCreate, session: SessionDep, who: Operator) -> ExerciseRead:
    exercise = service.create(
        session, actor=who.actor, targets=body.targets, **body.model_dump(exclude={"targets"})
    )
    return _read(session, exercise)


@router.get("", response_model=Page[ExerciseRead])
def list_exercises(session: SessionDep, who: OperatorOrAuditor) -> Page[ExerciseRead]:
    items = [_read(session, e) for e in service.all_exercises(session)]
    return Page(items=items, next_cursor=None)


@router.get("/{uuid}", response_model=ExerciseRead)
def get_exercise(uuid: str, session: SessionDep, who: OperatorOrAuditor) -> ExerciseRead:
    return _read(session, service.get(session, uuid))


@router.post("/{uuid}/participants", response_model=ExerciseRead)
def add_participant(
    uuid: str, body: ParticipantAdd, session: SessionDep, who: Operator
) -> ExerciseRead:
    exercise = service.get(session, uuid)
    service.add_participant(session, exercise, partner_ref=body.partner, actor=who.actor)
    return _read(session, exercise)


@router.post("/{uuid}/keys", response_model=ExerciseKeyIssued, status_code=201)
def create_exercise_key(
    uuid: str, body: ExerciseKeyCreate, session: SessionDep, settings: SettingsDep, who: Operator
) -> ExerciseKeyIssued:
    """An exercise-only key for a participant; the answer is the only time it is shown."""
    exercise = service.get(session, uuid)
    issued, partner = service.create_key(
        session,
        exercise,
        partner_ref=body.partner,
        role=body.role,
        actor=who.actor,
        secret=settings.secret,
        expires_at=body.expires_at,
    )
    return ExerciseKeyIssued(
        key=issued.key,
        uuid=issued.record.uuid,
        partner_uuid=partner.uuid,
        role=body.role,
        exercise=exercise.uuid,
    )


@router.post("/{uuid}/injects", response_model=InjectRead, status_code=201)
def add_inject(
    uuid: str, body: InjectCreate, session: SessionDep, policy: PolicyDep, who: Operator
) -> InjectRead:
    """An inject: sent now (no ``send_at``), or kept for ``hub exercise send-due``."""
    exercise = service.get(session, uuid)
    inject = service.add_inject(
        session, exercise, name=body.name, event=body.event, send_at=body.send_at
    )
    if body.send_at is None:
        service.send_inject(session, exercise, inject, actor=who.actor, policy=policy)
    return InjectRead(
        id=inject.id,
        name=inject.name,
        send_at=inject.send_at,
        sent_at=inject.sent_at,
        event_uuid=inject.event_uuid,
    )


@router.post("/{uuid}/close", response_model=ExerciseRead)
def close_exercise(
    uuid: str, body: CloseBody, session: SessionDep, policy: PolicyDep, who: Operator
) -> ExerciseRead:
    """Freeze the exercise and withdraw its items from every participant's view."""
    exercise = service.get(session, uuid)
    service.close(session, exercise, actor=who.actor, reason=body.reason, policy=policy)
    return _read(session, exercise)


@router.get(
    "/{uuid}/report",
    response_model=ExerciseReport,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "JSON, or CSV with ?format=csv",
        }
    },
)
def exercise_report(
    uuid: str,
    session: SessionDep,
    who: OperatorOrAuditor,
    format: Literal["json", "csv"] = "json",
    late_after: Annotated[int, Query(ge=0, le=30 * 86400)] = report.DEFAULT_LATE_AFTER,
) -> Response:
    """The after-action report: per item and participant, first receipt (from the audit
    log's deliveries), first feedback, and who did not receive or received late."""
    exercise = service.get(session, uuid)
    if format == "csv":
        body = report.to_csv(report.lines(session, exercise, late_after=late_after))
        return Response(body, media_type="text/csv; charset=utf-8")
    return JSONResponse(report.report(session, exercise, late_after=late_after))
