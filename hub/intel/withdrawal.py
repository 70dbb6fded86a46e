"""Operator withdrawals: a false-positive verdict on an attribute, the deletion of an event.

Neither deletes anything. Each becomes a new event version in which the withdrawn elements
are soft-deleted, made on the source's behalf through the ordinary ingest and merge path, so
that the version history, the audit log, the STIX rendering (revocations), MISP pushes and
notification retractions all follow as for a withdrawal by the source itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Conflict, NotFound
from hub.intel import service, snapshots
from hub.models import Event, Partner

_CHILDREN = ("Attribute", "Object", "EventReport")
VERDICT_CHANNEL = "admin-verdict"
DELETE_CHANNEL = "admin-delete"


def mark_false_positive(
    session: Session,
    *,
    event: Event,
    attribute_uuid: str,
    reason: str,
    actor: str,
    policy: tlp.Policy,
) -> service.Outcome:
    """Withdraw one attribute (top-level or in an object) as a false positive."""
    state = snapshots.current_state(session, event)
    found = _find_attribute(state, attribute_uuid)
    if found is None:
        raise NotFound(f"event {event.uuid} has no attribute {attribute_uuid}")
    obj, attribute = found
    if attribute.get("deleted") or (obj is not None and obj.get("deleted")):
        raise Conflict(f"attribute {attribute_uuid} is already withdrawn")
    stamp = _stamp(event, [attribute] if obj is None else [obj, attribute])
    edit = _header(state, stamp)
    gone = {**attribute, "deleted": True, "timestamp": str(stamp)}
    if obj is None:
        edit["Attribute"] = [gone]
    else:
        edit["Object"] = [{**obj, "timestamp": str(stamp), "Attribute": [gone]}]
    outcome = _store(session, event, edit, actor=actor, channel=VERDICT_CHANNEL, policy=policy)
    _audit(
        session,
        "admin.verdict",
        event,
        actor=actor,
        details={
            "verdict": "false_positive",
            "attribute": attribute_uuid,
            "reason": reason,
            "version": outcome.version,
        },
    )
    return outcome


def delete_event(
    session: Session, *, event: Event, reason: str, actor: str, policy: tlp.Policy
) -> service.Outcome:
    """A final version with every attribute, object and report soft-deleted; the versions
    before it, their releases and the audit trail stay."""
    state = snapshots.current_state(session, event)
    live = [element for _kind, element in _elements(state) if not element.get("deleted")]
    if not live:
        raise Conflict(f"event {event.uuid} has nothing left to delete")
    stamp = _stamp(event, live)
    edit = _header(state, stamp)
    for kind in _CHILDREN:
        edit[kind] = [_deleted(element, stamp) for element in state.get(kind) or []]
    outcome = _store(session, event, edit, actor=actor, channel=DELETE_CHANNEL, policy=policy)
    _audit(
        session,
        "admin.delete",
        event,
        actor=actor,
        details={"reason": reason, "version": outcome.version, "withdrawn": len(live)},
    )
    return outcome


def _find_attribute(
    state: dict[str, Any], uuid: str
) -> tuple[dict[str, Any] | None, dict[str, Any]] | None:
    """(its object or None, the attribute) for an attribute uuid of the event."""
    for attribute in state.get("Attribute") or []:
        if attribute["uuid"] == uuid:
            return None, attribute
    for obj in state.get("Object") or []:
        for attribute in obj.get("Attribute") or []:
            if attribute["uuid"] == uuid:
                return obj, attribute
    return None


def _elements(state: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in _CHILDREN:
        for element in state.get(kind) or []:
            yield kind, element
    for obj in state.get("Object") or []:
        for attribute in obj.get("Attribute") or []:
            yield "Attribute", attribute


def _deleted(element: dict[str, Any], stamp: int) -> dict[str, Any]:
    """The element soft-deleted at ``stamp`` (an object with all its attributes); one that
    was deleted already is left as it is (the merge keeps the stored one)."""
    if element.get("deleted"):
        return element
    out = {**element, "deleted": True, "timestamp": str(stamp)}
    if "Attribute" in element:
        out["Attribute"] = [_deleted(a, stamp) for a in element["Attribute"]]
    return out


def _stamp(event: Event, changed: list[dict[str, Any]]) -> int:
    """Now, or later than anything it changes: MISP's rule keeps only strictly newer edits."""
    stamps = [int(element.get("timestamp") or 0) for element in changed]
    return max(int(time.time()), event.timestamp + 1, *(s + 1 for s in stamps))


def _header(state: dict[str, Any], stamp: int) -> dict[str, Any]:
    """The event without its elements, as an edit at ``stamp``."""
    edit = {k: v for k, v in state.items() if k not in _CHILDREN}
    edit["timestamp"] = str(stamp)
    return edit


def _store(
    session: Session,
    event: Event,
    edit: dict[str, Any],
    *,
    actor: str,
    channel: str,
    policy: tlp.Policy,
) -> service.Outcome:
    """Ingest the edit on the source's behalf (its creator kept), as one new version."""
    source = session.get(Partner, event.source_partner_id)
    assert source is not None, f"event {event.uuid} has no source"
    [outcome] = service.ingest_events(
        session,
        payloads=[orjson.loads(orjson.dumps(edit))],  # normalised in place: a fresh copy
        source=source,
        actor=actor,
        channel=channel,
        policy=policy,
        keep_orgc=True,
        exercise=event.exercise_id,  # an exercise's event stays in its exercise
    )
    if outcome.status != "updated":
        raise Conflict(f"event {event.uuid} could not be withdrawn: {outcome.detail}")
    return outcome


def _audit(
    session: Session, action: str, event: Event, *, actor: str, details: dict[str, Any]
) -> None:
    audit.append(
        session,
        [
            audit.Record(
                action=action,
                actor=actor,
                object_ref=f"event:{event.uuid}",
                request_id=current_request_id(),
                details=details,
            )
        ],
    )
