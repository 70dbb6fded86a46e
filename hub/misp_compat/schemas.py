"""What ``/misp`` takes and answers, for the OpenAPI document: MISP's shapes, loosely.

The models name the keys MISP clients rely on and let every other key through (MISP events
carry dozens, and the hub passes on what the source sent). Integers travel as strings, as
MISP sends them (``hub.misp_compat.shapes``). Path parameters are named as in MISP's own
OpenAPI document (``eventId``, ``attributeId`` …: a number or a uuid).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from hub.intel.schemas import (
    MISP_ATTRIBUTE,
    MISP_OBJECT,
    MISP_TAG,
    Loose,
    MispAttribute,
    MispEvent,
    MispObject,
    MispTag,
)
from hub.intel.schemas import MISP_EVENT_PAYLOAD as MISP_EVENT_PAYLOAD  # the store's shapes
from hub.intel.schemas import StixBundle as StixBundle

ID_PARAMS = ("eventId", "attributeId", "objectId", "eventReportId", "objectReferenceId")

_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ID = {
    "type": "string",
    "pattern": rf"^(\d{{1,10}}|{_UUID})(\.json)?$",
    "description": "the hub's number for it (as this key sees it) or its uuid; "
    "an optional `.json` suffix is ignored",
}
_PATH_PARAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "eventId": ("UUID or numeric id of the event", _ID),
    "attributeId": ("UUID or numeric id of the attribute", _ID),
    "objectId": ("UUID or numeric id of the object", _ID),
    "eventReportId": ("UUID or numeric id of the event report", _ID),
    "objectReferenceId": ("UUID of the object reference", _ID),
    "params": (
        "MISP's named parameters as path segments, `key:value` (arrays `key[]:value`), "
        "separated by `/`, e.g. `limit:10/page:2`",
        {"type": "string"},
    ),
    "context": (
        "`event` or `attribute`",
        {"type": "string", "enum": ["event", "attribute", "event.json", "attribute.json"]},
    ),
}


def path_param(name: str) -> dict[str, Any]:
    """An OpenAPI path parameter a MISP route reads from the request itself."""
    description, schema = _PATH_PARAMS[name]
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


class MispEventEnvelope(BaseModel):
    Event: MispEvent


class MispIndexRow(Loose):
    """A row of ``events/index``: minimal (the sync pull) or full (``search_index``)."""

    uuid: str
    id: str | None = None
    timestamp: str | None = None


class MispVersion(Loose):
    version: str
    perm_sync: bool
    perm_sighting: bool
    uuid: str
    request_encoding: list[str]
    filter_sightings: bool


class MispPostTest(BaseModel):
    body: dict[str, Any]
    headers: dict[str, str]


class MispMe(Loose):
    User: dict[str, Any]
    Role: dict[str, Any]
    UserSetting: dict[str, Any]
    Organisation: dict[str, Any]


class MispDescribeTypes(BaseModel):
    result: dict[str, Any] = Field(description="PyMISP's describeTypes.json")


class MispSaved(Loose):
    """MISP's answer to a save that needs no element back."""

    saved: bool
    success: bool
    name: str
    message: str
    url: str


class MispEventSearch(BaseModel):
    response: list[MispEventEnvelope]


class MispAttributeList(BaseModel):
    Attribute: list[MispAttribute]


class MispAttributeSearch(BaseModel):
    response: MispAttributeList


class MispAttributeAnswer(Loose):
    Attribute: MispAttribute | list[MispAttribute]


class MispObjectAnswer(BaseModel):
    Object: MispObject


class MispObjectSearch(BaseModel):
    response: list[MispObjectAnswer]


class MispReport(Loose):
    uuid: str
    id: str | None = None
    event_id: str | None = None
    name: str | None = None
    content: str | None = None


class MispReportAnswer(BaseModel):
    EventReport: MispReport


class MispReference(Loose):
    uuid: str
    object_uuid: str | None = None
    referenced_uuid: str | None = None
    relationship_type: str | None = None


class MispReferenceAnswer(BaseModel):
    ObjectReference: MispReference


class MispSighting(Loose):
    uuid: str | None = None
    type: str | None = None
    date_sighting: str | None = None


class MispSightingAnswer(BaseModel):
    Sighting: MispSighting


class MispSightingSearch(BaseModel):
    response: list[dict[str, Any]]


class MispBulkSightings(Loose):
    saved: bool
    success: str


class MispTagIndex(BaseModel):
    Tag: list[dict[str, Any]]


class MispTagAnswer(BaseModel):
    Tag: MispTag


class MispProposalsPush(BaseModel):
    success: bool
    message: str
    counter: int


class MispEmptyResponse(BaseModel):
    response: list[Any]


class MispProbe(BaseModel):
    name: str
    description: str
    url: str


# --- request bodies (JSON schema, inline: loose enough for any MISP client) -----------------

FILTERS = {
    "type": "object",
    "description": "MISP's filters (as in MISP's restSearch and index), merged with the named "
    'parameters of the path; `{"request": {...}}` is read as its content',
}
ANY_JSON: dict[str, Any] = {"description": "a JSON body, read as MISP reads it"}


def json_body(schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    """``openapi_extra`` declaring a JSON request body a MISP route reads itself."""
    return {
        "requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}
    }


ATTRIBUTE_IN = {
    "description": "One attribute, or a list of them",
    "anyOf": [MISP_ATTRIBUTE, {"type": "array", "items": MISP_ATTRIBUTE}],
}
OBJECT_IN = {
    "description": '`{"Object": {...}}` or the bare object',
    "anyOf": [
        {"type": "object", "properties": {"Object": MISP_OBJECT}, "required": ["Object"]},
        MISP_OBJECT,
    ],
}
REFERENCE_IN = {
    "type": "object",
    "description": '`{"ObjectReference": {...}}` or the bare reference',
    "properties": {
        "object_uuid": {"type": "string"},
        "referenced_uuid": {"type": "string"},
        "relationship_type": {"type": "string"},
        "ObjectReference": {"type": "object"},
    },
}
REPORT_IN = {
    "type": "object",
    "description": '`{"EventReport": {...}}` or the bare report',
    "properties": {
        "name": {"type": "string"},
        "content": {"type": "string"},
        "distribution": {"type": ["string", "integer"]},
        "EventReport": {"type": "object"},
    },
}
DELETE_IN = {
    "type": "object",
    "properties": {"hard": {"type": ["boolean", "integer", "string"]}},
    "description": '`{"hard": 1}` for a hard delete',
}
TAGGING = {
    "type": "object",
    "properties": {
        "uuid": {"type": "string", "description": "the event or attribute"},
        "tag": {"type": "string", "description": "the tag's name"},
        "local": {"type": ["boolean", "integer", "string"]},
    },
}
TAG_IN = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "colour": {"type": "string"}, "Tag": MISP_TAG},
}
SIGHTING = {
    "type": "object",
    "description": "A sighting: on the attribute of the path, by `uuid`/`id`, or on `value`",
    "properties": {
        "uuid": {"type": "string"},
        "id": {"type": ["string", "integer"]},
        "value": {"type": "string"},
        "values": {"type": "array", "items": {"type": "string"}},
        "type": {"type": ["string", "integer"]},
        "source": {"type": "string"},
        "timestamp": {"type": ["string", "integer"]},
    },
}
PUSH_OFFER = {
    "type": "array",
    "description": 'The events a pushing MISP offers: `{"Event": {"uuid", "timestamp"}}`',
    "items": {"type": "object"},
}

SAVE_REFUSED = {
    403: {
        "description": "MISP's refused save (`saved: false`, the reason in `errors`): another "
        "organisation's element, held in quarantine, not newer (MISP's exact message)"
    }
}
PUSH_ERRORS = {
    **SAVE_REFUSED,
    404: {
        "description": "Not found; for an add of an existing uuid, MISP's 404 with the event's "
        "URL in `Location` (the pusher then edits)",
        "headers": {"Location": {"schema": {"type": "string"}}},
    },
}
EXPORTS = {
    200: {
        "description": "`returnFormat` json (MISP's shape), stix2 (a bundle), csv or text",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}
