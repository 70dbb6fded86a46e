"""TAXII 2.1 resources (OASIS TAXII 2.1 §4-5) as the hub answers them, for the OpenAPI
document; ``hub.taxii.service`` builds them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow")


class Discovery(Resource):
    title: str
    description: str | None = None
    contact: str | None = None
    default: str | None = None
    api_roots: list[str]


class ApiRoot(Resource):
    title: str
    description: str | None = None
    versions: list[str]
    max_content_length: int


class CollectionResource(Resource):
    id: str
    title: str
    description: str | None = None
    alias: str | None = None
    can_read: bool
    can_write: bool
    media_types: list[str]


class Collections(Resource):
    collections: list[CollectionResource]


class ManifestRecord(Resource):
    id: str
    date_added: str
    version: str
    media_type: str | None = None


class Manifest(Resource):
    more: bool
    next: str | None = None
    objects: list[ManifestRecord] | None = None


class Envelope(Resource):
    """Objects in date_added order, after the TLP 2.0 marking definitions they use."""

    more: bool
    next: str | None = None
    objects: list[dict[str, Any]] | None = None


class Versions(Resource):
    more: bool
    next: str | None = None
    versions: list[str] | None = None


class Status(Resource):
    id: str
    status: str
    request_timestamp: str | None = None
    total_count: int
    success_count: int
    failure_count: int
    pending_count: int
    successes: list[dict[str, Any]] | None = None
    failures: list[dict[str, Any]] | None = None
    pendings: list[dict[str, Any]] | None = None


ENVELOPE_IN = {
    "type": "object",
    "title": "EnvelopeIn",
    "description": "A TAXII envelope of STIX 2.1 objects, ingested as one bundle",
    "properties": {
        "objects": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "id": {"type": "string"},
                    "spec_version": {"type": "string"},
                },
                "required": ["type", "id"],
            },
        },
        "more": {"type": "boolean"},
    },
    "required": ["objects"],
}
