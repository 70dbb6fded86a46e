"""The paging loop shared by every released page (events, attributes, objects).

Candidates come from a SQL pre-filter (a superset) in their order; each batch is judged by
the caller for this recipient (released and matching, withheld with a reason, or simply not
there for it) and the page is filled from the released matches only, reading on until the
page is full and one more match proves there is a next page, or the candidates run out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hub.sharing.records import record

Fetch = Callable[[Any, int], Sequence[Any]]
MAX_CHUNK = 1000

T = TypeVar("T")


@dataclass(slots=True, frozen=True)
class Withheld:
    """A candidate the recipient may not receive, and why (recorded, never delivered)."""

    uuid: str
    reason: str


@dataclass(slots=True)
class Filled(Generic[T]):
    """What one paging loop read: the delivered matches (up to ``limit + 1``: the last one
    only proves there is more), the withheld candidates and the number of matches."""

    delivered: list[T] = field(default_factory=list)
    withheld: list[tuple[str, str]] = field(default_factory=list)
    matches: int = 0


def first_chunk(limit: int | None, skip: int) -> int:
    """How many candidates the first read asks for: enough for the page and one more."""
    return MAX_CHUNK if limit is None else min(skip + limit + 1, MAX_CHUNK)


def fill(
    fetch: Fetch,
    position: Callable[[Any], Any],
    judge: Callable[[Sequence[Any]], Iterable[T | Withheld | None]],
    *,
    limit: int | None,
    skip: int = 0,
    count_all: bool = False,
    next_chunk: Callable[[int], int] = lambda chunk: MAX_CHUNK,
) -> Filled[T]:
    """Read candidates with ``fetch(after, n)`` (``after`` the ``position`` of the last row
    read, None at the start) and judge each batch: ``judge(rows)`` yields per row a released
    match, a ``Withheld`` or None (not there for the recipient, or not matching the query).
    ``skip`` matches are passed over first (offset paging); ``limit`` None reads everything.
    ``count_all``: once the page is full, read on only to count the matches (nothing more
    is delivered or recorded as withheld). ``next_chunk`` sizes each read after the first."""
    out: Filled[T] = Filled()
    chunk = first_chunk(limit, skip)
    after = None
    while True:
        rows = fetch(after, chunk)
        full = False
        for outcome in judge(rows):
            page_full = limit is not None and len(out.delivered) > limit
            if isinstance(outcome, Withheld):
                if not page_full:
                    out.withheld.append((outcome.uuid, outcome.reason))
                continue
            if outcome is None:
                continue
            out.matches += 1
            if page_full:
                continue
            if skip:
                skip -= 1
                continue
            out.delivered.append(outcome)
            if limit is not None and len(out.delivered) > limit and not count_all:
                full = True
                break
        if full or len(rows) < chunk:
            return out
        after = position(rows[-1])
        chunk = next_chunk(chunk)


def doubling(chunk: int) -> int:
    """Read twice as many candidates as the last time, up to ``MAX_CHUNK``."""
    return min(chunk * 2, MAX_CHUNK)


def record_element_page(
    session: Any,
    recipient: Any,
    *,
    gate: Any,
    policy: Any,
    kind: str,
    delivered: Sequence[tuple[Any, Any, dict[str, Any]]],
    withheld: Sequence[Any],
) -> int | None:
    """The audit entry of a page of elements (``kind``: attributes or objects): the uuids
    delivered, what was withheld, and one release row per event they came from."""
    versions = {event.uuid: event.version for _e, event, _d in delivered}
    return record(
        session,
        recipient,
        action="release.page",
        channel=gate.channel,
        object_ref=None,
        decision="allow",
        details={
            "policy_version": policy.version,
            **({"answer": "write"} if gate.write_answer else {}),
            kind: [doc["uuid"] for _e, _ev, doc in delivered],
            "withheld": [list(w) for w in withheld[:5000]],
            "releases": [[u, v, True, kind, None, 0] for u, v in versions.items()],
        },
    )
