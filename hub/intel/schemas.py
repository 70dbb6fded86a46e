"""What the events REST API answers and takes, for the OpenAPI document (DESIGN.md §2).

Events travel in MISP's shape (``{"Event": {...}}``) or as STIX 2.1 bundles; the models
name what clients rely on and let the rest of MISP's keys through."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Loose(BaseModel):
    """Names what clients rely on; lets every other key through."""

    model_config = ConfigDict(extra="allow")


class MispTag(Loose):
    name: str
    local: bool | None = None


class MispAttribute(Loose):
    uuid: str
    id: str | None = None
    event_id: str | None = None
    type: str | None = None
    category: str | None = None
    value: str | None = None
    Tag: list[MispTag] | None = None


class MispObject(Loose):
    uuid: str
    id: str | None = None
    name: str | None = None
    Attribute: list[MispAttribute] | None = None


class MispEvent(Loose):
    uuid: str
    id: str | None = None
    info: str | None = None
    Attribute: list[MispAttribute] | None = None
    Object: list[MispObject] | None = None
    Tag: list[MispTag] | None = None


class StixBundle(Loose):
    """A STIX 2.1 bundle (``returnFormat: stix2`` on /misp, ``?format=stix`` on REST)."""

    type: str
    id: str
    objects: list[dict[str, Any]]


# --- request bodies (JSON schema, inline: loose enough for any MISP client or STIX producer)

MISP_TAG = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
MISP_ATTRIBUTE = {
    "type": "object",
    "description": "A MISP attribute (other MISP keys are taken as MISP defines them)",
    "properties": {
        "uuid": {"type": "string"},
        "type": {"type": "string", "description": "a MISP attribute type (describeTypes)"},
        "category": {"type": "string"},
        "value": {"type": "string"},
        "to_ids": {"type": "boolean"},
        "distribution": {"type": ["string", "integer"]},
        "timestamp": {"type": ["string", "integer"]},
        "comment": {"type": "string"},
        "Tag": {"type": "array", "items": MISP_TAG},
    },
}
MISP_OBJECT = {
    "type": "object",
    "description": "A MISP object",
    "properties": {
        "uuid": {"type": "string"},
        "name": {"type": "string"},
        "meta-category": {"type": "string"},
        "distribution": {"type": ["string", "integer"]},
        "Attribute": {"type": "array", "items": MISP_ATTRIBUTE},
    },
}
MISP_EVENT = {
    "type": "object",
    "title": "MispEventIn",
    "description": "A MISP event as MISP and PyMISP send it",
    "not": {"required": ["Event"]},  # a wrapped event is read as its content
    "properties": {
        "uuid": {"type": "string"},
        "info": {"type": "string"},
        "date": {"type": "string"},
        "timestamp": {"type": ["string", "integer"]},
        "published": {"type": "boolean"},
        "distribution": {"type": ["string", "integer"]},
        "sharing_group_id": {"type": ["string", "integer"]},
        "threat_level_id": {"type": ["string", "integer"]},
        "analysis": {"type": ["string", "integer"]},
        "Orgc": {"type": "object"},
        "SharingGroup": {"type": "object"},
        "Tag": {"type": "array", "items": MISP_TAG},
        "Attribute": {"type": "array", "items": MISP_ATTRIBUTE},
        "Object": {"type": "array", "items": MISP_OBJECT},
        "EventReport": {"type": "array", "items": {"type": "object"}},
    },
}
MISP_EVENT_PAYLOAD = {
    "description": '`{"Event": {...}}` or the bare event',
    "anyOf": [
        {"type": "object", "properties": {"Event": MISP_EVENT}, "required": ["Event"]},
        MISP_EVENT,
    ],
}
STIX_BUNDLE_IN = {
    "type": "object",
    "title": "StixBundleIn",
    "description": "A STIX 2.1 bundle; markings are read as TLP (unknown ones: quarantine)",
    "properties": {
        "type": {"const": "bundle"},
        "id": {"type": "string", "pattern": "^bundle--"},
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "id": {"type": "string"},
                    "spec_version": {"type": "string"},
                    "object_marking_refs": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["type", "id"],
            },
        },
    },
    "required": ["type", "objects"],
}


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
