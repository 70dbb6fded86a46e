"""Exercise request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from hub.partners.schemas import Constituency, Timestamp
from hub.schemas import Schema
from hub.vocabulary import Role

ExerciseStatus = Literal["planned", "running", "closed"]


class ExerciseCreate(Schema):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    starts_at: Timestamp = None
    ends_at: Timestamp = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    match_real_constituencies: bool = False
    participants: Annotated[list[str], Field(max_length=500)] = []  # partner uuids or names
    # the scenario's fictional constituents, per participant (uuid or name): matched for
    # this exercise's items only, notified through that participant
    targets: Annotated[dict[str, Constituency], Field(max_length=500)] = {}


class ExerciseRead(Schema):
    uuid: str
    name: str
    status: ExerciseStatus
    starts_at: datetime | None
    ends_at: datetime | None
    controller: str
    description: str | None
    match_real_constituencies: bool
    participants: list[str]  # partner uuids
    created_at: datetime
    closed_at: datetime | None


class ParticipantAdd(Schema):
    partner: Annotated[str, Field(min_length=1, max_length=255)]  # uuid or name


class ExerciseKeyCreate(Schema):
    partner: Annotated[str, Field(min_length=1, max_length=255)]  # uuid or name
    role: Literal[Role.PARTNER, Role.SYNC] = Role.PARTNER
    expires_at: Timestamp = None


class ExerciseKeyIssued(Schema):
    key: str = Field(description="the key itself; shown this once and never again")
    uuid: str
    partner_uuid: str
    role: Role
    exercise: str


class InjectCreate(Schema):
    """An inject: a MISP event (``{"Event": …}`` or bare) sent now, or at ``send_at``."""

    name: Annotated[str, Field(min_length=1, max_length=200)] = "inject"
    event: dict[str, Any]
    send_at: Timestamp = None


class InjectRead(Schema):
    id: int
    name: str
    send_at: datetime | None
    sent_at: datetime | None
    event_uuid: str | None


class CloseBody(Schema):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "exercise closed"


class ReportLine(Schema):
    """One exercise item and one participant."""

    event_uuid: str
    inject: str | None
    sent_at: str
    partner_uuid: str
    partner_name: str
    first_receipt_at: str | None
    first_receipt_channel: str | None
    delay_seconds: float | None
    first_feedback_at: str | None
    status: Literal["received", "late", "not-received", "source"]
    first_ack_at: str | None = Field(
        None, description="first feedback on the item's notification (its audit entry's time)"
    )
    ack_kind: str | None = None
    ack_delay_seconds: float | None = None
    feedback_delay_seconds: float | None = Field(None, description="sending to first sighting")
    passed_on_sightings: int = 0
    passed_on_items: list[str] = Field(
        [], description="exercise items the participant submitted after receiving this one"
    )
    why: list[str] = Field(
        [],
        description="not received or late: no-key, key-unused, connection-disabled, "
        "connection-failed, tlp-refused, not-fetched (each with what the hub recorded)",
    )


class ExerciseReport(Schema):
    exercise: str
    name: str
    status: ExerciseStatus
    late_after_seconds: int
    lines: list[ReportLine]
    not_received: list[ReportLine]
    late: list[ReportLine]
