"""Partner REST for notifications: fetch (own, or ``via=me`` to pass on), feedback, feedback
received on one's own items; operators register direct targets."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import delete, select

from hub.errors import InvalidField, NotFound, error_response
from hub.models import Notification, Partner, TargetEntry
from hub.notifications import service
from hub.partners.schemas import Constituency
from hub.responses import JSONResponse
from hub.routing import HubRoute, Operator, PartnerKey, PolicyDep, SessionDep
from hub.schemas import Schema, decode_cursor, encode_cursor
from hub.sharing import notifications as sharing
from hub.sharing.service import recipient_of

router = APIRouter(prefix="/api/v1", tags=["notifications"], route_class=HubRoute)

Limit = Annotated[int, Query(ge=1, le=500, description="page size (at most 500)")]
Cursor = Annotated[str | None, Query(max_length=300)]


def _after(cursor: str | None) -> int | None:
    if not cursor:
        return None
    pos = decode_cursor(cursor, keys=("id",))
    if not isinstance(pos["id"], int):
        raise InvalidField("cursor is not one this API handed out", field="cursor")
    return pos["id"]


def view(released: sharing.Released, lang: str) -> dict[str, Any]:
    note = released.notification
    return {
        "ticket": note.ticket,
        "status": note.status,
        "kind": note.kind,
        "case": note.case_ref,
        "route": note.route,
        "recipient": note.recipient_name,
        "tlp": released.tlp,
        "template": released.template,
        "created_at": note.created_at.isoformat(),
        "sent_at": note.sent_at.isoformat() if note.sent_at else None,
        "observations": released.body["json"]["observations"],
        "text": released.body["text"][lang],
        "correction": note.correction,
        "corrections": [
            {
                "kind": c.kind,
                "attributes": c.attribute_uuids,
                "event_version": c.event_version,
                "message": c.message,
                "at": c.created_at.isoformat(),
            }
            for c in released.corrections
        ],
    }


@router.get("/notifications")
def list_notifications(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    via: Annotated[Literal["me"] | None, Query(description="`me`: to pass on")] = None,
    lang: Literal["en", "nl"] = "en",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Notifications for the caller's organisation, or (``via=me``) for its constituents."""
    column = Notification.via_partner_id if via else Notification.recipient_partner_id
    stmt = select(Notification).where(column == who.partner_id).order_by(Notification.id)
    after = _after(cursor)
    if after is not None:
        stmt = stmt.where(Notification.id > after)
    notes = list(session.scalars(stmt.limit(limit + 1)))
    more = len(notes) > limit
    notes = notes[:limit]
    released = sharing.release(
        session, recipient=recipient_of(who), actor=who.actor, notes=notes, policy=policy
    )
    return JSONResponse(
        {
            "items": [view(r, lang) for r in released],
            "next_cursor": encode_cursor({"id": notes[-1].id}) if more else None,
        }
    )


def _visible(session: Any, who: Any, ticket: str) -> Notification:
    note = session.scalar(select(Notification).where(Notification.ticket == ticket))
    if note is None or who.partner_id not in (note.recipient_partner_id, note.via_partner_id):
        raise NotFound(f"no notification {ticket}")
    return note  # type: ignore[no-any-return]


@router.get("/notifications/{ticket}")
def get_notification(
    ticket: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    lang: Literal["en", "nl"] = "en",
) -> Response:
    note = _visible(session, who, ticket)
    released = sharing.release(
        session, recipient=recipient_of(who), actor=who.actor, notes=[note], policy=policy
    )
    if not released:
        # returned, not raised: the refusal's audit entry must commit with the request
        return error_response(NotFound(f"no notification {ticket}"))
    return JSONResponse(view(released[0], lang))


class FeedbackIn(Schema):
    kind: Literal["ack", "resolved", "false-positive", "not-ours", "disputed", "comment"]
    text: Annotated[str, Field(max_length=10_000)] | None = None
    allow_attribution: bool = False


@router.post("/notifications/{ticket}/feedback", status_code=201)
def post_feedback(ticket: str, body: FeedbackIn, session: SessionDep, who: PartnerKey) -> Response:
    """Acknowledge, resolve, dispute or comment; forwarded to the source as "via hub"
    unless ``allow_attribution``."""
    note = _visible(session, who, ticket)
    row = service.feedback(
        session,
        principal=who,
        note=note,
        kind=body.kind,
        text=body.text,
        allow_attribution=body.allow_attribution,
    )
    return JSONResponse(
        {"uuid": row.uuid, "ticket": ticket, "status": note.status, "forward": row.forward},
        status_code=201,
    )


@router.get("/feedback")
def list_feedback(
    session: SessionDep, who: PartnerKey, limit: Limit = 50, cursor: Cursor = None
) -> Response:
    """Feedback on the caller's own items (anonymised unless the sender allowed attribution)."""
    rows = service.feedback_for_source(
        session, principal=who, limit=limit + 1, after=_after(cursor)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [{k: v for k, v in r.items() if k != "id"} for r in rows],
            "next_cursor": encode_cursor({"id": rows[-1]["id"]}) if more else None,
        }
    )


@router.put("/admin/notifications/targets/{partner_uuid}")
def put_targets(
    partner_uuid: str, body: Constituency, session: SessionDep, who: Operator
) -> Response:
    """Register a partner's own networks, AS numbers and domains: it is then notified
    directly about them (not through another partner's constituency). Replaces the list."""
    partner = session.scalar(select(Partner).where(Partner.uuid == partner_uuid.lower()))
    if partner is None:
        raise NotFound(f"no partner {partner_uuid}")
    session.execute(delete(TargetEntry).where(TargetEntry.partner_id == partner.id))
    rows: list[dict[str, Any]] = []
    for prefix in body.ip_prefixes:
        net = ipaddress.ip_network(prefix)
        rows.append(
            {
                "kind": "prefix",
                "value": str(prefix),
                "family": net.version,
                "prefix_len": net.prefixlen,
                "net_start": f"{int(net.network_address):032x}",
                "net_end": f"{int(net.broadcast_address):032x}",
            }
        )
    rows += [{"kind": "asn", "value": str(a), "asn": a} for a in body.asns]
    rows += [{"kind": "domain", "value": d} for d in body.domains]
    rows += [{"kind": "sector", "value": s.value} for s in body.sectors]
    for row in rows:
        session.add(TargetEntry(partner_id=partner.id, **row))
    session.flush()
    return JSONResponse({"partner": partner.uuid, "entries": len(rows)})
