"""The shapes of the audit API's JSON answers (DESIGN §2 "Audit proofs"), for the OpenAPI
document; the endpoints build the bodies themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Entry(BaseModel):
    seq: int
    leaf: str = Field(description="base64 of the exact bytes hashed as the Merkle leaf")


class InclusionProof(BaseModel):
    leaf_index: int
    tree_size: int
    hashes: list[str] = Field(description="base64 node hashes, RFC 9162 order")


class ConsistencyProof(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    hashes: list[str]


class EntryPage(BaseModel):
    items: list[dict[str, Any]]
    next_cursor: str | None


class Summary(BaseModel):
    model_config = ConfigDict(extra="allow")

    since: str | None = None
    until: str | None = None
