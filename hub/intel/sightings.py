"""Sightings submitted with an event: taken out of it and checked before the version is
built (the version snapshot does not carry them), then stored as the submitter's."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.errors import InvalidField
from hub.intel.rows import all_attributes
from hub.intel.snapshots import dumps
from hub.models import Partner, Sighting


def take_sightings(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The sightings submitted with an event, taken out of it and checked: they live in
    their own table (the version snapshot does not carry them) and are released anonymised."""
    event.pop("Sighting", None)
    found = []
    for attr in all_attributes(event):
        for i, s in enumerate(attr.pop("Sighting", None) or []):
            where = f"Attribute {attr['uuid']}: Sighting.{i}"
            if not isinstance(s, dict):
                raise InvalidField(f"{where} must be an object", field="Sighting")
            try:
                kind = int(s.get("type") or 0)
                when = int(s.get("date_sighting") or 0)
            except (TypeError, ValueError):
                raise InvalidField(
                    f"{where}: type and date_sighting must be numbers", field="Sighting"
                ) from None
            if kind not in (0, 1, 2) or not 0 <= when < 2**62:
                raise InvalidField(
                    f"{where}: type is 0, 1 or 2 and date_sighting an epoch", field="Sighting"
                )
            found.append(
                {
                    "uuid": _uuid_or_new(s.get("uuid")),
                    "attribute_uuid": attr["uuid"],
                    "type": kind,
                    "date_sighting": when,
                    "source": str(s.get("source") or "")[:255],
                }
            )
    return found


def write_sightings(
    session: Session, sightings: list[dict[str, Any]], event_id: int, source: Partner
) -> None:
    """Store submitted sightings as the submitter's: a partner reports what it saw, never
    what another organisation saw (DESIGN.md §3: recorded as the submitting organisation)."""
    by = {"uuid": source.uuid, "name": source.name}
    rows = [
        {
            "uuid": s["uuid"],
            "event_id": event_id,
            "attribute_uuid": s["attribute_uuid"],
            "org_uuid": source.uuid,
            "type": s["type"],
            "date_sighting": s["date_sighting"],
            "doc": dumps(
                {
                    "source": s["source"],
                    "type": str(s["type"]),
                    "date_sighting": str(s["date_sighting"]),
                    "Organisation": by,
                }
            ),
        }
        for s in sightings
    ]
    if not rows:
        return
    known = set(
        session.scalars(select(Sighting.uuid).where(Sighting.uuid.in_([r["uuid"] for r in rows])))
    )
    fresh = [r for r in rows if r["uuid"] not in known]
    if fresh:
        session.execute(insert(Sighting), fresh)


def _uuid_or_new(value: Any) -> str:
    """A sighting's uuid as sent (canonical), or a new one when none was sent."""
    try:
        return str(uuid_mod.UUID(str(value))) if value else str(uuid_mod.uuid4())
    except ValueError:
        raise InvalidField(f"{value!r} is not a uuid", field="Sighting.uuid") from None
