"""What the notification REST API answers, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Correction(BaseModel):
    """What the source withdrew or corrected (no event version: it counts edits the
    recipient did not receive)."""

    kind: str
    attributes: Any
    message: str | None
    at: str


class NotificationView(BaseModel):
    ticket: str
    status: str
    kind: str
    case: str | None
    route: str | None
    recipient: str | None
    tlp: str
    template: str | None
    created_at: str
    sent_at: str | None
    observations: list[dict[str, Any]] = Field(description="only those that matched the caller")
    text: str
    correction: Any
    corrections: list[Correction]
    exercise: str | None = Field(
        default=None, description="the exercise it belongs to (exercise traffic); null: real"
    )


class NotificationList(BaseModel):
    items: list[NotificationView]
    next_cursor: str | None


class FeedbackPosted(BaseModel):
    uuid: str
    ticket: str
    status: str
    forward: str = Field(description="anonymised or attributed")


class FeedbackReceived(BaseModel):
    model_config = ConfigDict(extra="allow")

    uuid: str
    event_uuid: str | None
    kind: str
    text: str | None
    received_at: str
    from_: Any = Field(alias="from", description="the sender, or `via hub`")


class FeedbackList(BaseModel):
    items: list[FeedbackReceived]
    next_cursor: str | None


class TargetsSet(BaseModel):
    partner: str
    entries: int
