"""Pages of events, computed over what the recipient receives.

A page is filled from candidates a SQL pre-filter found (a superset), in their order, keeping
only what the released view lets through and what matches the query there; it reads on until
the page is full and one more item proves there is a next page, or the candidates run out
(``hub.sharing.paging``). So pages, ``more``/``next`` and offsets never count a withheld item,
and a cursor is only ever made from a released one: the answer to a query is the same whether
hidden data matching it exists or not (DESIGN.md §3, "What leaves the hub"). One audit entry
records each page. Pages of attributes and objects, and the reports of an event, are in
``hub.sharing.attribute_pages``, ``hub.sharing.object_pages`` and ``hub.sharing.reports``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.sharing.attribute_pages import AttributePage as AttributePage
from hub.sharing.attribute_pages import release_attribute_page as release_attribute_page
from hub.sharing.paging import Fetch, Withheld, fill
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import obligation, record
from hub.sharing.view import EventSummary, Gate, summarise


@dataclass(slots=True)
class EventPage:
    items: list[EventSummary]
    more: bool
    obligation: tlp.Obligation
    audit_seq: int | None
    withheld: list[tuple[str, str]] = field(default_factory=list)
    total: int | None = None  # every match, when asked for (``count_all``)


def release_event_page(
    session: Session,
    *,
    to: Recipient | Principal,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    fetch: Fetch,
    position: Callable[[Any], Any],
    limit: int | None,
    skip: int = 0,
    accept: Callable[[EventSummary], bool] | None = None,
    rows_for_partial: bool = False,
    count_all: bool = False,
    order: Callable[[EventSummary], Any] | None = None,
    descending: bool = False,
) -> EventPage:
    """A page of event summaries: ``fetch(after, n)`` gives the next ``n`` candidate rows
    after the position ``position(row)`` of the last one (``after`` None: from the start);
    ``accept`` applies the query's filters to a released summary; ``skip`` released matches
    are passed over first (offset paging); ``limit`` None takes everything;
    ``rows_for_partial``: ``accept`` needs the released attribute rows of events the
    recipient receives in part (``EventSummary.release``); ``count_all``: read on to count
    every match (MISP's ``X-Result-Count``), delivering only the page. ``order``: the page
    is ordered by what the recipient sees (its own timestamp of each event, not the stored
    one, which moves with changes it cannot see): every match is read, ordered by
    ``order`` (then row id; ``descending``) and the page cut from that."""
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy)

    def judge(rows: Sequence[Any]) -> Iterator[EventSummary | Withheld | None]:
        for row, summary, reason in summarise(
            session, gate, rows, rows_for_partial=rows_for_partial
        ):
            if summary is None:
                yield Withheld(row.uuid, reason or "refused")
            else:
                yield summary if accept is None or accept(summary) else None

    read_all = order is not None  # ordered by what the recipient sees: every match is read
    filled = fill(
        fetch,
        position,
        judge,
        limit=None if read_all else limit,
        skip=0 if read_all else skip,
        count_all=count_all,
    )
    delivered, withheld, matches = filled.delivered, filled.withheld, filled.matches
    if order is not None:
        delivered, more, matches = _reordered(delivered, order, descending, skip, limit)
    else:
        more = limit is not None and len(delivered) > limit
        if limit is not None:
            delivered = delivered[:limit]
    duty = obligation([s.label for s in delivered])
    total = matches if count_all else None
    if not delivered and not withheld:
        return EventPage([], False, duty, None, total=total)
    releases: list[list[Any]] = [
        [s.uuid, s.row.version, True, "listed", s.label.value, 0] for s in delivered
    ]
    releases += [[uuid, None, False, reason, None, 0] for uuid, reason in withheld]
    seq = record(
        session,
        recipient,
        action="release.page",
        channel=gate.channel,
        object_ref=None,
        decision="allow",
        details={"policy_version": policy.version, "releases": releases},
    )
    return EventPage(delivered, more, duty, seq, withheld, total)


def _reordered(
    matched: list[EventSummary],
    order: Callable[[EventSummary], Any],
    descending: bool,
    skip: int,
    limit: int | None,
) -> tuple[list[EventSummary], bool, int]:
    """Every match ordered by what the recipient sees, then cut to the page: (page, more,
    number of matches)."""
    ranked = sorted(matched, key=lambda s: (order(s), s.row.id), reverse=descending)
    if limit is None:
        return ranked[skip:], False, len(ranked)
    return ranked[skip : skip + limit], len(ranked) > skip + limit, len(ranked)
