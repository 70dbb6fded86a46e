"""Operator REST over the store: versions, releases, withdrawals, quarantine decisions."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import select

from hub.audit import releases
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import NotFound
from hub.intel import quarantine_decisions as quarantine
from hub.intel import repository, schemas, snapshots, withdrawal
from hub.knowledge import service as knowledge
from hub.models import Partner, Release
from hub.partners import repository as partner_rows
from hub.partners import service as partners
from hub.responses import JSONResponse
from hub.routing import (
    HubRoute,
    Operator,
    OperatorOrAuditor,
    PageCursor,
    PageLimit,
    PolicyDep,
    SessionDep,
    read_page,
)
from hub.schemas import Schema, decode_id_cursor, encode_cursor
from hub.sharing import explain
from hub.sharing.records import label_of

router = APIRouter(prefix="/api/v1/admin", tags=["admin: events"], route_class=HubRoute)
EXPLAIN_MAX_PARTNERS = 500  # the network's manageable size is about 200


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
    flagged = knowledge.flag_withdrawn(
        session, item_uuids=[attribute_uuid.lower()], event_uuid=None, actor=who.actor
    )
    return JSONResponse(
        {**outcome.as_dict(), "attribute": attribute_uuid.lower(), "knowledge_flagged": flagged}
    )


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
    flagged = knowledge.flag_withdrawn(
        session, item_uuids=[event.uuid], event_uuid=event.uuid, actor=who.actor
    )
    return JSONResponse({**outcome.as_dict(), "knowledge_flagged": flagged})


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
    limit: PageLimit = 100,
    cursor: PageCursor = None,
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
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Response:
    """Everything released to (or refused) one partner, newest first."""
    partner = partners.get(session, ref=uuid)
    stmt = select(Release).where(Release.recipient_uuid == partner.uuid)
    return JSONResponse(_release_rows(session, stmt, limit, cursor))


@router.get("/quarantine", response_model=schemas.QuarantineList)
def list_quarantine(
    session: SessionDep,
    who: OperatorOrAuditor,
    status: Annotated[str | None, Query(pattern="^(held|released|rejected)$")] = None,
    limit: PageLimit = 100,
    cursor: PageCursor = None,
) -> Response:
    """Items held because their markings could not be read (default: all; `status=held`)."""
    after = decode_id_cursor(cursor)
    rows = repository.quarantine_page(session, status=status, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [quarantine.view(r) for r in rows],
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
    item, outcomes = quarantine.release(
        session, uuid=uuid, label=body.label, reason=body.reason, actor=who.actor, policy=policy
    )
    return JSONResponse(
        {"quarantine": quarantine.view(item), "items": [o.as_dict() for o in outcomes]}
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
    item = quarantine.reject(session, uuid=uuid, reason=body.reason, actor=who.actor)
    return JSONResponse({"quarantine": quarantine.view(item)})


@router.get(
    "/events/{uuid}/explain",
    responses={
        200: {
            "description": "per partner and channel, what would be released and why not",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
@read_page
def explain_event(
    uuid: str,
    session: SessionDep,
    who: OperatorOrAuditor,
    policy: PolicyDep,
    partner: Annotated[
        str | None,
        Query(max_length=200, description="partner uuid or name; default every active partner"),
    ] = None,
) -> Response:
    """What each channel would release of this item to a partner now, element by element,
    with the reason and rule for every element withheld; decided by the release core, and
    not recorded (nothing leaves)."""
    event = _event(session, uuid)
    if partner is not None:
        targets = [partners.get(session, ref=partner)]
    else:
        stmt = partner_rows.filtered(status="active")
        targets = partner_rows.page(session, stmt, limit=EXPLAIN_MAX_PARTNERS)
    return JSONResponse(
        {
            "event": event.uuid,
            "version": event.version,
            "policy_version": policy.version,
            "partners": [
                {
                    "uuid": p.uuid,
                    "name": p.name,
                    "status": p.status,
                    "tier": p.tier,
                    "tlp_accepted": p.tlp_accepted_at is not None,
                    "channels": [
                        asdict(a)
                        for a in explain.for_partner(
                            session, event=event, partner=p, policy=policy, actor=who.actor
                        )
                    ],
                }
                for p in targets
            ],
        }
    )
