"""What ingest checks of a submitted event before applying it: whether it is stored, newer
than the stored version, or reserved (whole or its elements) for another organisation by
quarantine, so that a refusal tells nothing about that input."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.intel.outcomes import UuidClash
from hub.intel.quarantine import element_uuids
from hub.models import Event, Partner, QuarantineItem, QuarantineUuid


def existing_event(session: Session, raw: Any) -> Event | None:
    """The stored event with the submitted uuid (None: new, or a uuid validation refuses)."""
    if not raw:
        return None
    try:
        uuid = str(uuid_mod.UUID(str(raw)))
    except ValueError:
        return None  # validation names it
    return session.scalar(select(Event).where(Event.uuid == uuid))


def held_for_another(session: Session, raw: Any, source: Partner) -> bool:
    """Whether another organisation's submission with this uuid is (or was) held in
    quarantine: the uuid is reserved for its source, whatever the operator decides, so that
    its release is neither blocked nor overwritten and the refusal tells nothing about it."""
    try:
        uuid = str(uuid_mod.UUID(str(raw)))
    except ValueError:
        return False
    held = select(QuarantineItem.id).where(
        QuarantineItem.item_uuid == uuid, QuarantineItem.source_partner_id != source.id
    )
    converted = select(QuarantineUuid.item_id).where(
        QuarantineUuid.uuid == uuid,
        QuarantineUuid.kind == "event",
        QuarantineUuid.source_partner_id != source.id,
    )
    return session.scalar(held.union_all(converted).limit(1)) is not None


_CLASH_FIELD = {
    "attribute": "Event.Attribute",
    "object": "Event.Object",
    "report": "Event.EventReport",
}


def check_reserved_elements(session: Session, event: dict[str, Any], source: Partner) -> None:
    """Refuse element uuids held in another organisation's quarantine, as if that input were
    stored: a clash naming nothing (``UuidClash``, as for a stored element). One cheap look
    first: usually nothing of anyone else is held."""
    others = QuarantineUuid.source_partner_id != source.id
    if session.scalar(select(QuarantineUuid.uuid).where(others).limit(1)) is None:
        return
    kinds = {u: k for k, u in element_uuids(event) if k != "event"}
    uuids = sorted(kinds)
    for start in range(0, len(uuids), 500):
        found = session.scalar(
            select(QuarantineUuid.uuid)
            .where(others, QuarantineUuid.uuid.in_(uuids[start : start + 500]))
            .limit(1)
        )
        if found is not None:
            raise UuidClash(_CLASH_FIELD.get(kinds[found], "Event.Attribute"))


def not_newer(existing: Event, stamp: Any) -> bool:
    """Whether the submitted timestamp is not newer than the stored version's (unchanged)."""
    if stamp in (None, "", 0, "0"):
        return False  # an edit without a timestamp gets "now", as in MISP
    try:
        return int(stamp) <= existing.timestamp
    except (TypeError, ValueError):
        return False
