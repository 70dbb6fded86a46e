"""Knowledge product bodies and answers. Kinds and themes are checked against the shipped
taxonomy by the service (a 422 naming ``kind`` or ``themes.N``), not frozen here."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from hub.schemas import Schema

#: The labels a product may carry: all three go to the community the hub addresses. AMBER+STRICT
#: and RED need named recipients (a sharing group), which products do not have yet.
ProductTlp = Literal["clear", "green", "amber"]
Uuid = Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{36}$")]


class SourceIn(Schema):
    """An item in the hub (event or attribute uuid) or an organisation alone (a partner's
    uuid). ``named`` false: the source asked not to be named (credited anonymously); a
    TLP:EX:CHR item is anonymous whatever this says."""

    item: Uuid | None = None
    organisation: Uuid | None = None
    named: bool = True

    @model_validator(mode="after")
    def _one(self) -> SourceIn:
        if (self.item is None) == (self.organisation is None):
            raise ValueError("give exactly one of item and organisation")
        return self


class ProductIn(Schema):
    kind: Annotated[str, Field(min_length=1, max_length=24)]
    title: Annotated[str, Field(min_length=1, max_length=255)]
    body: Annotated[str, Field(min_length=1, max_length=500_000, description="markdown")]
    tlp: ProductTlp
    themes: Annotated[list[str], Field(max_length=20)] = []
    sources: Annotated[list[SourceIn], Field(min_length=1, max_length=200)]


class ReviewIn(Schema):
    decision: Literal["approve"] = "approve"
    note: Annotated[str | None, Field(max_length=2000)] = None


class Credit(Schema):
    """A source as recipients read it: a named one with its organisation and item; an
    anonymous one with only the credit line."""

    credit: str
    organisation: str | None = None
    item: str | None = None


class ProductOut(Schema):
    uuid: str
    kind: str
    title: str
    tlp: str
    themes: list[str]
    state: str
    version: int
    body: str | None = None
    sources: list[Credit] = []
    event_uuid: str | None = None
    workflow: dict[str, object] | None = None


class ProductList(Schema):
    items: list[ProductOut]
    next_cursor: str | None


class TaxonomyEntry(Schema):
    value: str
    expanded: str


class TaxonomyValues(Schema):
    predicate: str
    entry: list[TaxonomyEntry]


class Taxonomy(Schema):
    """The vocabulary as a MISP taxonomy (machinetag.json)."""

    namespace: str
    description: str
    version: int
    predicates: list[dict[str, str]]
    values: list[TaxonomyValues]


class ProductUse(Schema):
    uuid: str
    version: int
    state: str
    title: str


class UsedBy(Schema):
    item: str
    products: list[ProductUse]


class ProductLineage(Schema):
    product: str
    graph: dict[str, list[dict[str, object]]]
