"""Operator REST over the store: versions, releases, withdrawals, quarantine decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import select

from hub.audit import releases
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Conflict, NotFound
from hub.intel import quarantine, repository, schemas, service, snapshots, stix, withdrawal
from hub.models import Partner, QuarantineItem, Release
from hub.partners import service as partners
from hub.responses import JSONResponse
from hub.routing import HubRoute, Operator, OperatorOrAuditor, PolicyDep, SessionDep
from hub.schemas import Schema, decode_id_cursor, encode_cursor
from hub.sharing.records import label_of

router = APIRouter(prefix="/api/v1/admin", tags=["admin: events"], route_class=HubRoute)
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=300)]


def _event(session: Any, uuid: str) -> Any:
    event = repository.by_uuid(session, uuid.lower())
    if event is None:
        raise NotFound(f"no event {uuid}")
    return event


@router.get("/events/{uuid}/versions", response_model=schemas.EventVersions)
def event_versions(uuid: str, session: SessionDep, who: OperatorOrAuditor) -> Response:
    """Every accepted version of an event: when, from whom, over which channel, what changed."""
    event = _event(session, uuid)
    names = dict(session.execute(select(Partner.id, Partner.uuid)).all())
    return JSONResponse(
        {
            "items": [
                {
                    "version": v.version,
                    "content_hash": v.content_hash,
                    "arrived_at": v.arrived_at,
                    "source": names.get(v.source_partner_id),
                    "actor": v.actor,
                    "channel": v.channel,
                    "event_timestamp": v.event_timestamp,
                    "tlp": label_of(v.tlp_rank).value,
                    "changes": v.changes,
                }
                for v in repository.versions(session, event)
            ],
            "next_cursor": None,
        }
    )


@router.get("/events/{uuid}/versions/{version}", response_model=schemas.EventSnapshot)
def event_version(
    uuid: str,
    version: int,
    session: SessionDep,
    who: OperatorOrAuditor,
) -> Response:
    """The whole event as it was after one version, with its labels (an audited admin read)."""
    event = _event(session, uuid)
    match = [v for v in repository.versions(session, event) if v.version == version]
    if not match:
        raise NotFound(f"event {uuid} has no version {version}")
    snapshot = snapshots.unpack(match[0].snapshot)
    audit.append(
        session,
        [
            audit.Record(
                action="admin.read",
                actor=who.actor,
                object_ref=f"event:{event.uuid}",
                request_id=current_request_id(),
                details={"version": version},
            )
        ],
    )
    return JSONResponse(
        {"Event": snapshot["event"], "labels": snapshot["labels"], "version": version}
    )


class Verdict(Schema):
    verdict: Annotated[
        Literal["false_positive"],
        Field(description="false_positive: the attribute is withdrawn as a false positive"),
    ]
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


@router.post(
    "/events/{uuid}/attributes/{attribute_uuid}/verdict",
    response_model=schemas.Withdrawn,
    responses={409: {"description": "The attribute is already withdrawn"}},
)
def attribute_verdict(
    uuid: str,
    attribute_uuid: str,
    body: Verdict,
    session: SessionDep,
    who: Operator,
    policy: PolicyDep,
) -> Response:
    """Mark an attribute false positive: a new event version withdraws it, and everything
    that went out with it is retracted or corrected downstream."""
    event = _event(session, uuid)
    outcome = withdrawal.mark_false_positive(
        session,
        event=event,
        attribute_uuid=attribute_uuid.lower(),
        reason=body.reason,
        actor=who.actor,
        policy=policy,
    )
    return JSONResponse({**outcome.as_dict(), "attribute": attribute_uuid.lower()})


@router.delete(
    "/events/{uuid}",
    response_model=schemas.Withdrawn,
    responses={409: {"description": "Nothing left to delete"}},
)
def delete_event(
    uuid: str,
    session: SessionDep,
    who: Operator,
    policy: PolicyDep,
    reason: Annotated[str, Query(min_length=1, max_length=2000)],
) -> Response:
    """Withdraw a whole event: a final version with every element soft-deleted (no hard
    delete: its versions, releases and audit trail stay)."""
    event = _event(session, uuid)
    outcome = withdrawal.delete_event(
        session, event=event, reason=reason, actor=who.actor, policy=policy
    )
    return JSONResponse(outcome.as_dict())


def _release_rows(session: Any, stmt: Any, limit: int, cursor: str | None) -> dict[str, Any]:
    releases.catch_up(session)  # the index is derived in batches; bring it up to date first
    before = decode_id_cursor(cursor)
    if before is not None:
        stmt = stmt.where(Release.id < before)
    rows = list(session.scalars(stmt.order_by(Release.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            {
                "released_at": r.released_at,
                "recipient": r.recipient_uuid,
                "channel": r.channel,
                "event_uuid": r.event_uuid,
                "event_version": r.event_version,
                "decision": "allow" if r.allowed else "deny",
                "reason": r.reason,
                "tlp": r.tlp,
                "removed_elements": r.removed,
                "audit_seq": r.audit_seq,
            }
            for r in rows
        ],
        "next_cursor": encode_cursor({"id": rows[-1].id}) if more else None,
    }


@router.get("/events/{uuid}/releases", response_model=schemas.ReleaseRecords)
def event_releases(
    uuid: str,
    session: SessionDep,
    who: OperatorOrAuditor,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Which partner received which version over which channel; every denial with its reason."""
    event = _event(session, uuid)
    stmt = select(Release).where(Release.event_uuid == event.uuid)
    return JSONResponse(_release_rows(session, stmt, limit, cursor))


@router.get("/partners/{uuid}/releases", response_model=schemas.ReleaseRecords)
def partner_releases(
    uuid: str,
    session: SessionDep,
    who: OperatorOrAuditor,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Everything released to (or refused) one partner, newest first."""
    partner = partners.get(session, ref=uuid)
    stmt = select(Release).where(Release.recipient_uuid == partner.uuid)
    return JSONResponse(_release_rows(session, stmt, limit, cursor))


def _quarantine_view(item: QuarantineItem) -> dict[str, Any]:
    return {
        "uuid": item.uuid,
        "item_uuid": item.item_uuid,
        "kind": item.kind,
        "received_at": item.received_at,
        "channel": item.channel,
        "actor": item.actor,
        "problems": item.problems,
        "status": item.status,
        "decided_by": item.decided_by,
        "decided_at": item.decided_at,
        "decision_reason": item.decision_reason,
        "decision_label": item.decision_label,
    }


@router.get("/quarantine", response_model=schemas.QuarantineList)
def list_quarantine(
    session: SessionDep,
    who: OperatorOrAuditor,
    status: Annotated[str | None, Query(pattern="^(held|released|rejected)$")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Items held because their markings could not be read (default: all; `status=held`)."""
    after = decode_id_cursor(cursor)
    rows = repository.quarantine_page(session, status=status, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [_quarantine_view(r) for r in rows],
            "next_cursor": encode_cursor({"id": rows[-1].id}) if more else None,
        }
    )


class QuarantineDecision(Schema):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    label: Annotated[
        str | None,
        Field(
            default=None,
            pattern="^(clear|green|amber|amber\\+strict|red)$",
            description="release only: the TLP label the unreadable markings are read as",
        ),
    ] = None


def _held(session: Any, uuid: str) -> QuarantineItem:
    item = session.scalar(select(QuarantineItem).where(QuarantineItem.uuid == uuid.lower()))
    if item is None:
        raise NotFound(f"no quarantine item {uuid}")
    if item.status != "held":
        raise Conflict(f"quarantine item {uuid} was already {item.status}")
    return item


@router.post(
    "/quarantine/{uuid}/release",
    response_model=schemas.QuarantineDecided,
    responses={409: {"description": "Already decided, or still unreadable after relabelling"}},
)
def release_quarantine(
    uuid: str,
    body: QuarantineDecision,
    session: SessionDep,
    who: Operator,
    policy: PolicyDep,
) -> Response:
    """Store a held item, reading its unreadable markings as ``label`` (default AMBER+STRICT)."""
    item = _held(session, uuid)
    label = body.label or "amber+strict"
    source = session.get(Partner, item.source_partner_id)
    payload = snapshots.unpack(item.payload)
    if item.kind == "stix":
        bundle = quarantine.relabel_stix(payload["bundle"], item.problems, label)
        outcomes = stix.ingest_bundle(
            session,
            body=snapshots.dumps(bundle),
            source=source,
            actor=who.actor,
            channel=item.channel,
            policy=policy,
        )
    else:
        event = quarantine.relabel_misp(payload, item.problems, label)
        outcomes = service.ingest_events(
            session,
            payloads=[event],
            source=source,
            actor=who.actor,
            channel=item.channel,
            policy=policy,
        )
    if any(o.status == "quarantined" for o in outcomes):
        raise Conflict("the item still has unreadable markings after relabelling")
    _decide(session, item, status="released", who=who.actor, reason=body.reason, label=label)
    return JSONResponse(
        {"quarantine": _quarantine_view(item), "items": [o.as_dict() for o in outcomes]}
    )


@router.post(
    "/quarantine/{uuid}/reject",
    response_model=schemas.QuarantineDecided,
    responses={409: {"description": "Already decided"}},
)
def reject_quarantine(
    uuid: str,
    body: QuarantineDecision,
    session: SessionDep,
    who: Operator,
) -> Response:
    """Refuse a held item for good; it is kept, never stored or shared."""
    item = _held(session, uuid)
    _decide(session, item, status="rejected", who=who.actor, reason=body.reason, label=None)
    return JSONResponse({"quarantine": _quarantine_view(item)})


def _decide(
    session: Any, item: QuarantineItem, *, status: str, who: str, reason: str, label: str | None
) -> None:
    item.status, item.decided_by, item.decided_at = status, who, datetime.now(UTC)
    item.decision_reason, item.decision_label = reason, label
    session.flush()
    audit.append(
        session,
        [
            audit.Record(
                action=f"quarantine.{status}",
                actor=who,
                object_ref=f"quarantine:{item.uuid}",
                request_id=current_request_id(),
                details={"item": item.item_uuid, "label": label, "reason": reason},
            )
        ],
    )
