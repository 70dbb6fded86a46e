"""The REST change feed's memory of what a cursor's holder has already been shown.

``GET /api/v1/events`` lists events oldest change first, by ``(changed_at, id)``. A change
the partner cannot see still moves the stored ``changed_at``; listed again at its new
position, the event would tell the partner, by coming back unchanged, that something hidden
happened to it. So a cursor carries, beside its position, the moment it was issued, and an
event found after the position is passed over when that listing provably showed it as it is
now to this partner:

- no version of it arrived after the position and before the cursor was issued (so when the
  listing read, the event stood at or before the position, and the listing dealt with it);
- and none of the versions after the position is one the partner's copy comes from: neither
  the version whose timestamp is the partner's own timestamp of the event (what moves with
  every change it receives) nor, for a published copy, the publication that copy is.

Anything else is listed again (fail safe: a listing never loses a change it may see). The
moments compared are the commit-ordered ones of ``hub.intel.moments``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import EventVersion
from hub.sharing.view import EventSummary


class Shown:
    """What the listing that issued a cursor at ``issued`` showed up to ``position``."""

    def __init__(self, session: Session, position: tuple[datetime, int], issued: datetime) -> None:
        self._session = session
        self._position = position
        self._issued = issued
        self._versions: dict[int, list[tuple[datetime, int]]] = defaultdict(list)

    def read(self, rows: Sequence[Any]) -> None:
        """Read the versions that arrived after the position of a chunk of candidate rows
        (one statement per chunk)."""
        ids = [row.id for row in rows]
        if not ids:
            return
        stmt = select(
            EventVersion.event_id, EventVersion.arrived_at, EventVersion.event_timestamp
        ).where(EventVersion.event_id.in_(ids), EventVersion.arrived_at >= self._position[0])
        for event_id, arrived_at, event_timestamp in self._session.execute(stmt):
            self._versions[event_id].append((arrived_at, int(event_timestamp)))

    def unchanged(self, item: EventSummary) -> bool:
        """The listing behind the cursor showed ``item`` as this partner sees it now."""
        row = item.row
        later = [
            (at, ts) for at, ts in self._versions.get(row.id, []) if (at, row.id) > self._position
        ]
        if not later or any(at <= self._issued for at, _ts in later):
            return False  # moved before the cursor was issued: not shown yet
        sources = {item.timestamp}
        if item.published:
            copy = _publication_version(row, item.timestamp)
            if copy is None:
                return False
            sources.add(copy)
        return item.timestamp > 0 and not any(ts in sources for _at, ts in later)


def _publication_version(row: Any, timestamp: int) -> int | None:
    """The event timestamp of the version whose publication the partner's published copy is
    (``hub.sharing.view.publication``), or None when the stored list does not tell."""
    try:
        kept = [int(ts) for ts, _at in orjson.loads(row.publications or "[]")]
    except (TypeError, ValueError):
        return None
    covering = [ts for ts in kept if ts >= timestamp]
    return covering[0] if covering else None
