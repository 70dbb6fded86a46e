"""Operator lineage queries: backward from a ticket, forward from an item (JSON or PROV-JSON);
a recipient's own, redacted view of its notification's lineage."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from hub.audit import releases as release_index
from hub.errors import NotFound
from hub.lineage import service
from hub.lineage.schemas import LINEAGE
from hub.lineage.views import LineageFormat, answer, items_of
from hub.models import (
    Notification,
    NotificationFeedback,
    Release,
)
from hub.routing import HubRoute, OperatorOrAuditor, SessionDep

router = APIRouter(prefix="/api/v1", tags=["lineage"], route_class=HubRoute)


@router.get("/admin/lineage/notifications/{ticket}", response_model=LINEAGE)
def notification_lineage(
    ticket: str, session: SessionDep, who: OperatorOrAuditor, format: LineageFormat = "json"
) -> Response:
    """Backward: which item versions, from which source, through which rules and hops."""
    note = session.scalar(select(Notification).where(Notification.ticket == ticket))
    if note is None:
        raise NotFound(f"no notification {ticket}")
    graph = service.backward(session, ticket=ticket)
    return answer(
        graph, {"ticket": ticket, "status": note.status, "items": items_of(session, note)}, format
    )


@router.get("/admin/lineage/items/{uuid}", response_model=LINEAGE)
def item_lineage(
    uuid: str, session: SessionDep, who: OperatorOrAuditor, format: LineageFormat = "json"
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
    return answer(graph, extra, format)
