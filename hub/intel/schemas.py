"""What the events REST API answers and takes, for the OpenAPI document (DESIGN.md §2).

Events travel in MISP's shape (``{"Event": {...}}``) or as STIX 2.1 bundles; the models
name what clients rely on and let the rest of MISP's keys through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub.misp_compat.schemas import MISP_EVENT, MISP_EVENT_PAYLOAD, STIX_BUNDLE_IN, MispEvent
from hub.misp_compat.schemas import StixBundle as StixBundle


class Handling(BaseModel):
    """What the recipient must do with what it received (the TLP obligation)."""

    label: str = Field(description="the TLP label of the answer as a whole")
    handling: str
    strip_attribution: bool


class Outcome(BaseModel):
    uuid: str
    status: str = Field(description="stored, updated, unchanged or quarantined")
    version: int | None = None
    detail: str | None = None
    quarantine: str | None = Field(None, description="the quarantine item holding it")


class Submitted(BaseModel):
    items: list[Outcome]
    stored: list[str]
    unchanged: list[str]
    quarantined: list[str]


class Organisation(BaseModel):
    uuid: str | None
    name: str | None


class EventSummary(BaseModel):
    uuid: str
    info: str | None
    date: str | None
    timestamp: int
    published: bool
    tlp: str
    attribute_count: int
    tags: list[str]
    orgc: Organisation | None = Field(None, description="absent under TLP:EX:CHR")


class EventList(BaseModel):
    items: list[EventSummary]
    next_cursor: str | None
    tlp: Handling


class EventView(BaseModel):
    Event: MispEvent
    tlp: Handling


class AttributeList(BaseModel):
    items: list[dict[str, Any]] = Field(description="MISP attributes, with their event's uuid")
    next_cursor: str | None
    tlp: Handling


class MyRelease(BaseModel):
    released_at: str
    channel: str
    event_uuid: str | None
    tlp: str | None
    audit_seq: int | None


class MyReleases(BaseModel):
    items: list[MyRelease]
    next_cursor: str | None


class EventVersion(BaseModel):
    version: int
    content_hash: str
    arrived_at: datetime
    source: str | None
    actor: str | None
    channel: str | None
    event_timestamp: int | None
    tlp: str
    changes: Any


class EventVersions(BaseModel):
    items: list[EventVersion]
    next_cursor: str | None


class EventSnapshot(BaseModel):
    Event: dict[str, Any]
    labels: Any
    version: int


class Withdrawn(Outcome):
    model_config = ConfigDict(extra="allow")


class ReleaseRecord(BaseModel):
    released_at: datetime
    recipient: str | None
    channel: str
    event_uuid: str | None
    event_version: int | None
    decision: str = Field(description="allow or deny")
    reason: str | None
    tlp: str | None
    removed_elements: Any
    audit_seq: int | None


class ReleaseRecords(BaseModel):
    items: list[ReleaseRecord]
    next_cursor: str | None


class QuarantineView(BaseModel):
    uuid: str
    item_uuid: str | None
    kind: str
    received_at: datetime
    channel: str | None
    actor: str | None
    problems: Any
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    decision_label: str | None


class QuarantineList(BaseModel):
    items: list[QuarantineView]
    next_cursor: str | None


class QuarantineDecided(BaseModel):
    quarantine: QuarantineView
    items: list[Outcome] | None = None


MISP_SUBMISSION = {
    "description": 'One MISP event (`{"Event": {...}}` or bare), or a list of them',
    "anyOf": [
        *MISP_EVENT_PAYLOAD["anyOf"],
        {
            "type": "array",
            "items": {
                "anyOf": [
                    {"type": "object", "properties": {"Event": MISP_EVENT}, "required": ["Event"]},
                    MISP_EVENT,
                ]
            },
        },
    ],
}
SUBMISSION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": MISP_SUBMISSION},
            "application/stix+json": {"schema": STIX_BUNDLE_IN},
        },
    }
}
