"""Lineage as HTTP answers: a notification's items with their evidence, JSON or PROV-JSON
(shared by the operators' lineage routes and the recipient's view of its notification)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query, Response
from sqlalchemy import select

from hub.lineage import service
from hub.models import Directive, Notification, NotificationItem, Observation
from hub.responses import JSONResponse

LineageFormat = Annotated[Literal["json", "prov-json"], Query()]


def items_of(session: Any, note: Notification) -> list[dict[str, Any]]:
    rows = session.execute(
        select(Directive, Observation, NotificationItem.retracted)
        .join(NotificationItem, NotificationItem.directive_id == Directive.id)
        .join(Observation, Observation.id == Directive.observation_id)
        .where(NotificationItem.notification_id == note.id)
        .order_by(Directive.id)
    ).all()
    return [
        {
            "event_uuid": o.event_uuid,
            "event_version": o.event_version,
            "attribute_uuid": o.attribute_uuid,
            "type": o.attribute_type,
            "field": o.field,
            "value": o.value,
            "source": o.source_uuid,
            "evidence": {
                "entry": d.entry_table,
                "entry_id": d.entry_id,
                "entry_kind": d.entry_kind,
                "entry_value": d.entry_value,
                "rule_version": d.rule_version,
            },
            "hops": d.hops,
            "retracted": retracted,
        }
        for d, o, retracted in rows
    ]


def answer(graph: dict[str, Any], extra: dict[str, Any], fmt: str) -> Response:
    if fmt == "prov-json":
        return JSONResponse(service.to_prov(graph))
    return JSONResponse({**extra, "graph": graph})
