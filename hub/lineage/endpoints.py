"""Operator lineage queries: backward from a ticket, forward from an item (JSON or PROV-JSON);
a recipient's own, redacted view of its notification's lineage."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from hub.audit import releases as release_index
from hub.errors import NotFound
from hub.lineage import service
from hub.models import (
    Directive,
    Notification,
    NotificationFeedback,
    NotificationItem,
    Observation,
    Partner,
    Release,
)
from hub.responses import JSONResponse
from hub.routing import HubRoute, OperatorOrAuditor, PartnerKey, SessionDep

router = APIRouter(prefix="/api/v1", tags=["lineage"], route_class=HubRoute)

Format = Annotated[Literal["json", "prov-json"], Query()]


def _items(session: Any, note: Notification) -> list[dict[str, Any]]:
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


def _answer(graph: dict[str, Any], extra: dict[str, Any], fmt: str) -> Response:
    if fmt == "prov-json":
        return JSONResponse(service.to_prov(graph))
    return JSONResponse({**extra, "graph": graph})


@router.get("/admin/lineage/notifications/{ticket}")
def notification_lineage(
    ticket: str, session: SessionDep, who: OperatorOrAuditor, format: Format = "json"
) -> Response:
    """Backward: which item versions, from which source, through which rules and hops."""
    note = session.scalar(select(Notification).where(Notification.ticket == ticket))
    if note is None:
        raise NotFound(f"no notification {ticket}")
    graph = service.backward(session, ticket=ticket)
    return _answer(
        graph, {"ticket": ticket, "status": note.status, "items": _items(session, note)}, format
    )


@router.get("/admin/lineage/items/{uuid}")
def item_lineage(
    uuid: str, session: SessionDep, who: OperatorOrAuditor, format: Format = "json"
) -> Response:
    """Forward: every release, notification and feedback that came from an item, and every
    retraction or correction sent after it was withdrawn or corrected."""
    uuid = uuid.lower()
    graph = service.forward(session, item_uuid=uuid)
    release_index.catch_up(session)  # derived in batches; bring it up to date first
    releases = session.scalars(
        select(Release).where(Release.event_uuid == uuid).order_by(Release.id)
    ).all()
    if not graph["artifacts"] and not releases:
        raise NotFound(f"no lineage for item {uuid}")
    tickets = sorted({a["external_id"] for a in graph["artifacts"] if a["kind"] == "notification"})
    feedback = session.scalars(
        select(NotificationFeedback).where(NotificationFeedback.case_ref == uuid)
    ).all()
    extra = {
        "item": uuid,
        "notifications": tickets,
        "releases": [
            {
                "audit_seq": r.audit_seq,
                "recipient": r.recipient_uuid,
                "channel": r.channel,
                "version": r.event_version,
                "allowed": r.allowed,
                "reason": r.reason,
                "tlp": r.tlp,
                "at": r.released_at.isoformat(),
            }
            for r in releases
        ],
        "feedback": [{"uuid": f.uuid, "kind": f.kind, "forward": f.forward} for f in feedback],
        "retractions": [
            {"activity": a["id"], "at": a["at"], "recipient": a["on_behalf_of"], **a["params"]}
            for a in graph["activities"]
            if a["kind"] == "retract"
        ],
    }
    return _answer(graph, extra, format)


@router.get("/notifications/{ticket}/lineage")
def my_notification_lineage(
    ticket: str, session: SessionDep, who: PartnerKey, format: Format = "json"
) -> Response:
    """The recipient's part: its notification's versions and the item versions they came
    from, sources hidden unless the source is the caller itself.

    No observation values, types or fields: those are released only through the audited,
    TLP-decided fetch of the notification itself. The graph is restricted to this ticket
    (no other recipients' decisions, no ingest channels)."""
    note = session.scalar(select(Notification).where(Notification.ticket == ticket))
    if note is None or who.partner_id not in (note.recipient_partner_id, note.via_partner_id):
        raise NotFound(f"no notification {ticket}")
    own = session.scalar(select(Partner.uuid).where(Partner.id == who.partner_id))
    reveal = {who.partner_uuid}
    graph = service.redact(
        service.recipient_graph(
            service.backward(session, ticket=ticket), ticket=ticket, caller_uuid=who.partner_uuid
        ),
        reveal_sources=reveal,
    )
    items = []
    for item in _items(session, note):
        items.append(
            {
                "event_uuid": item["event_uuid"],
                "event_version": item["event_version"],
                "source": item["source"] if item["source"] in reveal else "via hub",
                "evidence": {k: v for k, v in item["evidence"].items() if k != "entry_id"},
                "retracted": item["retracted"],
            }
        )
    return _answer(graph, {"ticket": ticket, "recipient": own, "items": items}, format)
