"""What lineage queries answer, for the OpenAPI document (``hub.lineage.views.answer``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class LineageView(BaseModel):
    """A lineage query's answer: what it is about, and the graph (``format=json``)."""

    model_config = ConfigDict(extra="allow")

    graph: dict[str, Any]


class ProvJson(BaseModel):
    """The same graph as a W3C PROV-JSON document (``format=prov-json``)."""

    model_config = ConfigDict(extra="allow")

    prefix: dict[str, str]


LINEAGE = LineageView | ProvJson
