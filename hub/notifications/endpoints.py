"""Partner REST for notifications: fetch (own, or ``via=me`` to pass on), feedback, feedback
received on one's own items; operators register direct targets."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import delete, select

import tlp
from hub import cursors
from hub.errors import InvalidField, NotFound, recorded
from hub.lineage import service as lineage
from hub.lineage.schemas import LINEAGE
from hub.lineage.views import LineageFormat, answer, items_of
from hub.models import Notification, Partner, TargetEntry
from hub.notifications import feedback, release, schemas
from hub.partners.schemas import Constituency
from hub.responses import JSONResponse
from hub.routing import (
    HubRoute,
    Operator,
    PageCursor,
    PageLimit,
    PartnerKey,
    PolicyDep,
    SessionDep,
    SettingsDep,
)
from hub.schemas import Schema
from hub.sharing.recipients import Recipient
from hub.sharing.records import headers, obligation

router = APIRouter(prefix="/api/v1", tags=["notifications"], route_class=HubRoute)


def _after(settings: Any, who: Any, cursor: str | None, query: str) -> int | None:
    if not cursor:
        return None
    secret = settings.secret
    pos = cursors.open_(secret, cursor, caller=who.scope, query=query)
    if len(pos) != 1 or not isinstance(pos[0], int):
        raise InvalidField("cursor is not one this API handed out", field="cursor")
    return int(pos[0])


def _next(settings: Any, who: Any, last_id: int, query: str) -> str:
    secret = settings.secret
    return cursors.seal(secret, caller=who.scope, query=query, position=[last_id])


def view(released: release.Released, lang: str) -> dict[str, Any]:
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
                "message": c.message,
                "at": c.created_at.isoformat(),
            }
            for c in released.corrections
        ],
        "exercise": note.exercise_id,  # only ever shown to that exercise's keys
    }


@router.get("/notifications", response_model=schemas.NotificationList)
def list_notifications(
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    via: Annotated[Literal["me"] | None, Query(description="`me`: to pass on")] = None,
    lang: Literal["en", "nl"] = "en",
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Response:
    """Notifications for the caller's organisation, or (``via=me``) for its constituents:
    pages hold only what is released to the caller now, each decided again."""
    query = cursors.fingerprint("notifications", via)
    column = Notification.via_partner_id if via else Notification.recipient_partner_id
    recipient = Recipient.of_principal(who).tlp
    base = (
        select(Notification)
        .where(column == who.partner_id, _in_scope(recipient.scope))
        .order_by(Notification.id)
    )
    after = _after(settings, who, cursor, query)
    considered: list[Notification] = []
    released_ids: list[int] = []
    while len(released_ids) <= limit:
        stmt = base if after is None else base.where(Notification.id > after)
        chunk = list(session.scalars(stmt.limit(limit + 1)))
        if not chunk:
            break
        verdict = release.decide(session, recipient=recipient, notes=chunk, policy=policy)
        kept = {r.notification.id for r in verdict.released}
        for note in chunk:
            if len(released_ids) > limit:
                break
            considered.append(note)
            if note.id in kept:
                released_ids.append(note.id)
        if len(chunk) <= limit:
            break
        after = chunk[-1].id
    more = len(released_ids) > limit
    if more:  # the look-ahead proves a next page; it is not delivered now
        considered = considered[
            : considered.index(next(n for n in considered if n.id == released_ids[limit]))
        ]
    released, seq = release.release(
        session, recipient=recipient, actor=who.actor, notes=considered, policy=policy
    )
    next_cursor = _next(settings, who, released[-1].notification.id, query) if more else None
    return JSONResponse(
        {"items": [view(r, lang) for r in released], "next_cursor": next_cursor},
        headers=_carried(released, seq),
    )


def _carried(released: list[release.Released], audit_seq: int | None) -> dict[str, str]:
    """``X-Hub-TLP`` (the obligation of the strictest notification released; CLEAR when
    nothing was) and ``X-Hub-Audit-Seq`` (the entry that recorded it)."""
    duty = obligation(tlp.parse_label(r.tlp) for r in released)
    return headers(duty, audit_seq)


def _in_scope(exercise: str | None) -> Any:
    """The SQL side of ``tlp.in_scope``: a key sees only its own scope's notifications (an
    exercise key its exercise's, a real key real traffic's); the release decides again."""
    if exercise is None:
        return Notification.exercise_id.is_(None)
    return Notification.exercise_id == exercise


def _visible(session: Any, who: Any, ticket: str) -> Notification:
    """The caller's notification; one of another scope (exercise or real) is missing, as one
    of another organisation is."""
    note = session.scalar(select(Notification).where(Notification.ticket == ticket))
    if (
        note is None
        or who.partner_id not in (note.recipient_partner_id, note.via_partner_id)
        or not tlp.in_scope(note.exercise_id, Recipient.of_principal(who).tlp)
    ):
        raise NotFound(f"no notification {ticket}")
    return note  # type: ignore[no-any-return]


@router.get("/notifications/{ticket}", response_model=schemas.NotificationView)
def get_notification(
    ticket: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    lang: Literal["en", "nl"] = "en",
) -> Response:
    note = _visible(session, who, ticket)
    released, seq = release.release(
        session,
        recipient=Recipient.of_principal(who).tlp,
        actor=who.actor,
        notes=[note],
        policy=policy,
    )
    if not released:
        raise recorded(NotFound(f"no notification {ticket}"))
    return JSONResponse(view(released[0], lang), headers=_carried(released, seq))


@router.get("/notifications/{ticket}/lineage", response_model=LINEAGE)
def my_notification_lineage(
    ticket: str,
    session: SessionDep,
    who: PartnerKey,
    policy: PolicyDep,
    settings: SettingsDep,
    format: LineageFormat = "json",
) -> Response:
    """The recipient's part: its notification's versions and the item versions they came
    from, sources hidden unless the source is the caller itself, and only the observations
    the caller receives now (decided and recorded as a fetch is).

    No observation values, types or fields: those are released only through the audited,
    TLP-decided fetch of the notification itself. The graph is restricted to this ticket
    (no other recipients' decisions, no ingest channels), its node ids are codes for this
    caller and ticket and an event's versions are numbered within it (`lineage.opaque`)."""
    note = _visible(session, who, ticket)
    recipient = Recipient.of_principal(who).tlp
    verdict = release.decide(session, recipient=recipient, notes=[note], policy=policy)
    seq = release.record(session, verdict, actor=who.actor, medium="lineage")
    if not verdict.released:
        raise recorded(NotFound(f"no notification {ticket}"))
    kept = {
        release.obs_key(o["attribute_uuid"], o["value"])
        for o in verdict.released[0].body["json"]["observations"]
    }
    reveal = {who.partner_uuid}
    graph = lineage.opaque(
        lineage.redact(
            lineage.recipient_graph(
                lineage.backward(session, ticket=ticket),
                ticket=ticket,
                caller_uuid=who.partner_uuid,
            ),
            reveal_sources=reveal,
        ),
        secret=settings.secret_key.get_secret_value(),
        scope=f"{who.partner_uuid}\0{ticket}",
    )
    items = [
        {
            "event_uuid": item["event_uuid"],
            "source": item["source"] if item["source"] in reveal else "via hub",
            "evidence": {k: v for k, v in item["evidence"].items() if k != "entry_id"},
            "retracted": item["retracted"],
        }
        for item in items_of(session, note)
        if release.obs_key(item["attribute_uuid"], item["value"]) in kept
    ]
    out = answer(graph, {"ticket": ticket, "recipient": who.partner_uuid, "items": items}, format)
    out.headers.update(_carried(verdict.released, seq))
    return out


class FeedbackIn(Schema):
    kind: Literal["ack", "resolved", "false-positive", "not-ours", "disputed", "comment"]
    text: Annotated[str, Field(max_length=10_000)] | None = None
    allow_attribution: bool = False


@router.post(
    "/notifications/{ticket}/feedback", status_code=201, response_model=schemas.FeedbackPosted
)
def post_feedback(ticket: str, body: FeedbackIn, session: SessionDep, who: PartnerKey) -> Response:
    """Acknowledge, resolve, dispute or comment; forwarded to the source as "via hub"
    unless ``allow_attribution``."""
    note = _visible(session, who, ticket)
    row = feedback.feedback(
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


@router.get("/feedback", response_model=schemas.FeedbackList)
def list_feedback(
    session: SessionDep,
    who: PartnerKey,
    settings: SettingsDep,
    limit: PageLimit = 50,
    cursor: PageCursor = None,
) -> Response:
    """Feedback on the caller's own items (anonymised unless the sender allowed attribution)."""
    query = cursors.fingerprint("feedback")
    rows = feedback.feedback_for_source(
        session, principal=who, limit=limit + 1, after=_after(settings, who, cursor, query)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [{k: v for k, v in r.items() if k != "id"} for r in rows],
            "next_cursor": _next(settings, who, rows[-1]["id"], query) if more else None,
        }
    )


@router.put("/admin/notifications/targets/{partner_uuid}", response_model=schemas.TargetsSet)
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
