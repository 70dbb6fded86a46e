"""Decisions on quarantined items (unreadable markings): release with a chosen label, or
reject. One place for the REST API and the console, so both record the same audit entries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Conflict, NotFound
from hub.intel import service, snapshots, stix
from hub.intel.quarantine import relabel_misp, relabel_stix
from hub.models import Partner, QuarantineItem

DEFAULT_LABEL = "amber+strict"
LABELS = ("clear", "green", "amber", "amber+strict", "red")


def view(item: QuarantineItem) -> dict[str, Any]:
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


def held(session: Session, *, uuid: str) -> QuarantineItem:
    """A held item; 404 if there is none, 409 if it was decided already."""
    item = session.scalar(select(QuarantineItem).where(QuarantineItem.uuid == uuid.lower()))
    if item is None:
        raise NotFound(f"no quarantine item {uuid}")
    if item.status != "held":
        raise Conflict(f"quarantine item {uuid} was already {item.status}")
    return item


def release(
    session: Session,
    *,
    uuid: str,
    label: str | None,
    reason: str,
    actor: str,
    policy: tlp.Policy,
) -> tuple[QuarantineItem, list[Any]]:
    """Store a held item, reading its unreadable markings as ``label`` (default
    AMBER+STRICT); 409 if it would still be unreadable."""
    item = held(session, uuid=uuid)
    label = label or DEFAULT_LABEL
    source = session.get(Partner, item.source_partner_id)
    payload = snapshots.unpack(item.payload)
    if item.kind == "stix":
        bundle = relabel_stix(payload["bundle"], item.problems, label)
        outcomes = stix.ingest_bundle(
            session,
            body=snapshots.dumps(bundle),
            source=source,
            actor=actor,
            channel=item.channel,
            policy=policy,
        )
    else:
        event = relabel_misp(payload, item.problems, label)
        outcomes = service.ingest_events(
            session,
            payloads=[event],
            source=source,
            actor=actor,
            channel=item.channel,
            policy=policy,
        )
    if any(o.status == "quarantined" for o in outcomes):
        raise Conflict("the item still has unreadable markings after relabelling")
    _decide(session, item, status="released", actor=actor, reason=reason, label=label)
    return item, outcomes


def reject(session: Session, *, uuid: str, reason: str, actor: str) -> QuarantineItem:
    """Refuse a held item for good; it is kept, never stored or shared."""
    item = held(session, uuid=uuid)
    _decide(session, item, status="rejected", actor=actor, reason=reason, label=None)
    return item


def _decide(
    session: Session,
    item: QuarantineItem,
    *,
    status: str,
    actor: str,
    reason: str,
    label: str | None,
) -> None:
    item.status, item.decided_by, item.decided_at = status, actor, datetime.now(UTC)
    item.decision_reason, item.decision_label = reason, label
    session.flush()
    audit.append(
        session,
        [
            audit.Record(
                action=f"quarantine.{status}",
                actor=actor,
                object_ref=f"quarantine:{item.uuid}",
                request_id=current_request_id(),
                details={"item": item.item_uuid, "label": label, "reason": reason},
            )
        ],
    )
