"""``/events/index``: the events the caller may receive, as a sync pull and PyMISP read them.

Rows, counts, tags, timestamps and pages are the caller's: computed over what it receives
(``hub.sharing.pages``), newest first (the pulling MISP reverses the list, Server.php:281).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

import tlp
from hub.intel import repository
from hub.misp_compat import shapes
from hub.misp_compat.filters import EventMatch, sql_filters
from hub.misp_compat.params import limit_page, truthy
from hub.misp_compat.service import CHANNEL, Caller, hub_org_uuid
from hub.models import Event, Sighting
from hub.sharing.pages import release_event_page
from hub.sharing.records import obligation
from hub.sharing.view import EventSummary, Gate, summarise

_SORTS = {
    "timestamp": Event.timestamp,
    "date": Event.date,
    "publish_timestamp": Event.publish_timestamp,
    "info": Event.info,
    "id": Event.id,
}

# Orders the stored value of which moves with changes a recipient may not see: the page is
# ordered by the recipient's own value instead (``hub.sharing.view``: per-recipient timestamp
# and publication), read over every match as the count is.
_SEEN_ORDER: dict[str, Callable[[EventSummary], Any]] = {
    "timestamp": lambda s: s.timestamp,
    "publish_timestamp": lambda s: s.publish_timestamp,
}


@dataclass(slots=True)
class IndexPage:
    rows: list[dict[str, Any]]
    total: int  # every match, not only this page
    audit_seq: int | None = None
    obligation: tlp.Obligation = field(default_factory=lambda: obligation([]))


def candidates(caller: Caller, body: dict[str, Any]) -> Any:
    """The SQL pre-filter of an index or search: a superset of what matches."""
    stmt = select(*repository.SUMMARY_COLUMNS).where(repository.readable(caller.audience()))
    return sql_filters(stmt, body, caller=caller)


def index(session: Session, caller: Caller, body: dict[str, Any]) -> IndexPage:
    minimal = truthy(body.get("minimal", False))
    limit, page = limit_page(body, default=None, maximum=100_000)
    sort = _SORTS.get(str(body.get("sort") or "timestamp").lower(), Event.timestamp)
    descending = _descending(body)
    stmt = candidates(caller, body)
    order = (sort.desc(), Event.id.desc()) if descending else (sort.asc(), Event.id.asc())

    def fetch(after: Any, n: int) -> Sequence[Any]:
        query = stmt
        if after is not None:
            value, row_id = after
            if descending:
                query = query.where(or_(sort < value, and_(sort == value, Event.id < row_id)))
            else:
                query = query.where(or_(sort > value, and_(sort == value, Event.id > row_id)))
        return session.execute(query.order_by(*order).limit(n)).all()

    result = release_event_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=fetch,
        position=lambda row: (getattr(row, sort.key), row.id),
        limit=limit,
        skip=(page - 1) * limit if limit is not None else 0,
        accept=EventMatch(body, caller),
        count_all=limit is not None,
        order=_SEEN_ORDER.get(sort.key),
        descending=descending,
    )
    stamps = sighting_stamps(session, result.items, Gate(caller.recipient, CHANNEL, caller.policy))
    hub_uuid = hub_org_uuid(session) if any(s.creator_hidden for s in result.items) else None
    rows = []
    for summary in result.items:
        orgc = None
        if summary.creator_hidden:
            orgc = {"uuid": hub_uuid or "", "name": "(not disclosed: TLP:EX:CHR)"}
        rows.append(
            shapes.index_row(
                summary,
                event_id=caller.event_id(summary.row.id),
                minimal=minimal,
                sighting_timestamp=stamps.get(summary.row.id, 0),
                chr_orgc=orgc,
            )
        )
    total = result.total if result.total is not None else len(rows)
    return IndexPage(rows, total, result.audit_seq, result.obligation)


def _descending(body: dict[str, Any]) -> bool:
    """MISP's index order: ``direction`` (``asc``/``desc``, what PyMISP's ``search_index``
    sends with ``sort``) or ``desc``; newest first when the request names no order."""
    direction = str(body.get("direction") or "").lower()
    if direction in ("asc", "desc"):
        return direction == "desc"
    if body.get("sort") and "desc" in body:
        return truthy(body["desc"])
    return True


def sighting_stamps(session: Session, items: Sequence[EventSummary], gate: Gate) -> dict[int, int]:
    """The latest sighting on what each event releases to the caller (the sync pull fetches
    sightings when it grows): per event for events released whole, per released attribute
    otherwise (an event told by its profile that is not released whole has its element
    rows read for this: a sighting on a withheld attribute must not move the stamp)."""
    whole = [s.row.id for s in items if s.whole]
    partial = {s.row.id: s.release for s in items if not s.whole and s.release is not None}
    told = [s.row for s in items if not s.whole and s.release is None]
    for row, summary, _reason in summarise(session, gate, told, rows_for_partial=True):
        if summary is not None and summary.release is not None:
            partial[row.id] = summary.release
    out: dict[int, int] = defaultdict(int)
    for start in range(0, len(whole), 500):
        for event_id, stamp in session.execute(
            select(Sighting.event_id, func.max(Sighting.date_sighting))
            .where(Sighting.event_id.in_(whole[start : start + 500]))
            .group_by(Sighting.event_id)
        ):
            out[event_id] = int(stamp or 0)
    ids = sorted(partial)
    for start in range(0, len(ids), 500):
        for event_id, attribute_uuid, stamp in session.execute(
            select(Sighting.event_id, Sighting.attribute_uuid, func.max(Sighting.date_sighting))
            .where(Sighting.event_id.in_(ids[start : start + 500]))
            .group_by(Sighting.event_id, Sighting.attribute_uuid)
        ):
            release = partial[event_id]
            if release is not None and attribute_uuid in release.attributes:
                out[event_id] = max(out[event_id], int(stamp or 0))
    return out
