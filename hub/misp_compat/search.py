"""``/events/restSearch`` and ``/attributes/restSearch`` as MISP searches, over released data
only (attributes: ``hub.misp_compat.attribute_search``).

An event is selected by an attribute filter only if the caller receives a matching attribute;
an attribute page holds only attributes the caller receives; pages (``limit``, ``page``) and
counts are computed over those, so a hidden value never shows as an empty page or a shorter
one (DESIGN.md §3, "What leaves the hub"). Results come in ascending id order, as MISP's.

MISP's semantics kept (EventsController/RestSearch):

- attribute filters (``value``, ``type``, ``category``, ``to_ids``) select the events that
  come with a matching attribute; ``to_ids`` also narrows the attributes they come with (a
  MISP object comes whole when any of its attributes matches);
- ``tags``: OR/AND/NOT over the tags the caller receives on the event and on its
  attributes; NOT also removes the attributes that carry the tag (an event whose own tags
  carry it is left out); ``event_tags`` looks at the event's own tags only;
- ``deleted``: 0 live elements, 1 deleted ones only, ``[0, 1]`` both;
- ``returnFormat``: ``json``, ``csv``, ``text`` (values of ``to_ids`` attributes of
  published events unless the request says otherwise, as MISP's restrictive exports) and
  ``stix2`` (``hub.misp_compat.exports``), each built from the same released data and
  recorded the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.errors import InvalidField
from hub.intel import repository
from hub.misp_compat import shapes
from hub.misp_compat.filters import (
    EventMatch,
    attribute_clauses,
    attribute_matcher,
)
from hub.misp_compat.index import candidates
from hub.misp_compat.params import limit_page, terms, truthy
from hub.misp_compat.service import CHANNEL, Caller
from hub.models import Attribute, Event
from hub.sharing.events import decide_event, record_event_page
from hub.sharing.records import obligation_of, record
from hub.sharing.view import Gate, summarise

_CHUNK = 200
# Bounded work per request (#14): MISP answers a search without ``limit`` with everything;
# the hub answers the first page of this size, and pages further with ``limit``/``page``.
EVENTS_DEFAULT, EVENTS_MAX = 100, 1000
EVENT_KEYS = (
    "org",
    "eventid",
    "event_id",
    "published",
    "last",
    "publish_timestamp",
    "eventinfo",
    "from",
    "to",
    "date_from",
    "date_to",
    "datefrom",
    "dateuntil",
    "distribution",
    "sharinggroup",
)
FORMATS = ("json", "csv", "text", "stix2")
_RESTRICTIVE = ("text",)  # MISP defaults these to to_ids=1 and published=1


def json_only(body: dict[str, Any]) -> None:
    if body.get("returnFormat", "json") not in ("json", None):
        raise InvalidField("only returnFormat json is served here", field="returnFormat")


def return_format(body: dict[str, Any]) -> str:
    """The export asked for (``returnFormat``); restrictive formats get MISP's defaults."""
    fmt = str(body.get("returnFormat") or "json").lower()
    if fmt not in FORMATS:
        raise InvalidField(
            f"returnFormat {fmt!r} is not served; the hub exports {', '.join(FORMATS)}",
            field="returnFormat",
        )
    if fmt in _RESTRICTIVE:
        if body.get("to_ids") in (None, "", []):
            body["to_ids"] = 1
        if body.get("published") in (None, "", []):
            body["published"] = 1
    return fmt


def deleted_mode(value: Any) -> str:
    """MISP's ``deleted``: ``live`` (0, absent), ``deleted`` (1: deleted only), ``both``."""
    if isinstance(value, list):
        wanted = {truthy(v) for v in value}
        if wanted == {True, False}:
            return "both"
        return "deleted" if wanted == {True} else "live"
    return "deleted" if truthy(value) else "live"


@dataclass(slots=True)
class Found:
    """What a search answers, and the audit entry that recorded it."""

    items: list[dict[str, Any]]
    audit_seq: int | None
    events: list[dict[str, Any]] = field(default_factory=list)  # bare released events
    obligation: tlp.Obligation = field(default_factory=lambda: obligation_of([]))


# --- tags ------------------------------------------------------------------------------------


def canonical_tag(name: str) -> str:
    """A tag name as matched: a TLP label by its label (``tlp:white`` = ``tlp:clear``),
    anything else case-insensitively (Tag.php:310-355)."""
    try:
        label = tlp.parse_tag(name).label
    except tlp.TLPError:
        return name.casefold()
    return label.tag if label is not None else name.casefold()


@dataclass(slots=True)
class TagQuery:
    """MISP's tag filter: OR (``tags: [a, b]`` or ``{"OR": …}``), AND, NOT (``!a``)."""

    any_of: set[str]
    all_of: set[str]
    none_of: set[str]

    @classmethod
    def of(cls, value: Any) -> TagQuery:
        found = terms(value)
        all_of: list[str] = []
        if isinstance(value, dict):
            for key, items in value.items():
                if key.upper() == "AND":
                    all_of += terms(items).include
        any_of = [t for t in found.include if t not in all_of]
        return cls(
            {canonical_tag(t) for t in any_of},
            {canonical_tag(t) for t in all_of},
            {canonical_tag(t) for t in found.exclude},
        )

    def __bool__(self) -> bool:
        return bool(self.any_of or self.all_of or self.none_of)

    def holds(self, names: set[str]) -> bool:
        """Whether tags ``names`` (canonical) satisfy OR and AND (NOT is applied apart)."""
        if self.any_of and not self.any_of & names:
            return False
        return self.all_of <= names

    def excludes(self, names: set[str]) -> bool:
        return bool(self.none_of & names)


def tag_names(tags: Sequence[Any] | None) -> set[str]:
    return {
        canonical_tag(str(t.get("name") if isinstance(t, dict) else t)) for t in tags or [] if t
    }


def _narrow_event(
    event: dict[str, Any],
    *,
    tags: TagQuery,
    event_tags: TagQuery,
    match: Callable[[dict[str, Any]], bool] | None,
    narrow: Callable[[dict[str, Any]], bool] | None,
    mode: str,
) -> bool:
    """Apply the attribute-level filters to a released event in place; False when the
    event is not a match (module doc): ``match`` selects the event (some attribute it
    comes with matches), ``narrow`` also removes the attributes that do not match."""
    own = tag_names(event.get("Tag"))
    if tags.excludes(own) or event_tags.excludes(own) or not event_tags.holds(own):
        return False

    def live(element: dict[str, Any]) -> bool:
        deleted = truthy(element.get("deleted"))
        return mode == "both" or deleted == (mode == "deleted")

    def keep(attr: dict[str, Any]) -> bool:
        return not tags.excludes(tag_names(attr.get("Tag"))) and live(attr)

    attributes = [a for a in event.get("Attribute") or [] if keep(a)]
    objects = []
    for obj in event.get("Object") or []:
        inner = [a for a in obj.get("Attribute") or [] if keep(a)]
        if inner and (mode == "both" or live(obj) or any(live(a) for a in inner)):
            objects.append({**obj, "Attribute": inner})
    seen = set(own)
    for attr in attributes:
        seen |= tag_names(attr.get("Tag"))
    for obj in objects:
        for attr in obj["Attribute"]:
            seen |= tag_names(attr.get("Tag"))
    if tags and not tags.holds(seen):
        return False
    if match is not None and not (
        any(map(match, attributes)) or any(match(a) for o in objects for a in o["Attribute"])
    ):
        return False
    if narrow is not None:  # ``to_ids`` also narrows what the event comes with, as in MISP
        attributes = [a for a in attributes if narrow(a)]
        objects = [o for o in objects if any(narrow(a) for a in o["Attribute"])]
    event["Attribute"] = attributes
    event["Object"] = objects
    if mode == "deleted" and not attributes and not objects:
        return False
    return True


# --- events ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _EventQuery:
    """An ``events/restSearch`` body read once: the SQL pre-filter of candidate events
    (a superset), what a released event must match, how it is narrowed and the page."""

    stmt: Any
    wanted: EventMatch
    tags: TagQuery
    event_tags: TagQuery
    match: Any
    narrow: Any
    mode: str
    limit: int | None
    skip: int
    only_metadata: bool  # ``metadata``: the events without their elements
    sightings: bool  # not ``noSightings``

    @classmethod
    def of(cls, caller: Caller, body: dict[str, Any]) -> _EventQuery:
        scoped = {k: v for k, v in body.items() if k not in ("value", "type", "category", "to_ids")}
        scoped.pop("tags", None)
        scoped.pop("tag", None)
        if body.get("event_timestamp") not in (None, "") and not body.get("timestamp"):
            scoped["timestamp"] = body["event_timestamp"]
        tags = TagQuery.of(body.get("tags", body.get("tag")))
        event_tags = TagQuery.of(body.get("event_tags"))
        match = attribute_matcher(body)
        narrow = attribute_matcher({"to_ids": body.get("to_ids")})
        mode = deleted_mode(body.get("deleted", body.get("includeDeleted", False)))
        stmt = candidates(caller, scoped)
        clauses = attribute_clauses(body)
        if clauses:  # the event has some attribute that could match (superset)
            stmt = stmt.where(
                select(Attribute.id).where(Attribute.event_id == Event.id, *clauses).exists()
            )
        limit, page = limit_page(body, default=EVENTS_DEFAULT, maximum=EVENTS_MAX)
        skip = (page - 1) * limit if limit is not None else 0
        only_metadata = truthy(body.get("metadata", False))
        sightings = not truthy(body.get("noSightings", False))
        wanted = EventMatch(scoped, caller)
        return cls(
            stmt,
            wanted,
            tags,
            event_tags,
            match,
            narrow,
            mode,
            limit,
            skip,
            only_metadata,
            sightings,
        )

    def narrowed(self, body_event: dict[str, Any]) -> bool:
        """Narrow a released event to what the query asks for, in place (False: nothing
        in it matches)."""
        return _narrow_event(
            body_event,
            tags=self.tags,
            event_tags=self.event_tags,
            match=self.match,
            narrow=self.narrow,
            mode=self.mode,
        )


def search_events(session: Session, caller: Caller, body: dict[str, Any]) -> Found:
    """Matching events, each released whole then narrowed by the query (module doc),
    recorded in one entry; the others are not delivered."""
    query = _EventQuery.of(caller, body)
    limit, skip = query.limit, query.skip
    gate = Gate(caller.recipient, CHANNEL, caller.policy)
    out: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    recorded: list[tuple[Any, Any]] = []  # (event, delivery): delivered, or refused
    withheld: list[list[Any]] = []
    after = 0
    while limit is None or len(out) < limit:
        rows = session.execute(
            query.stmt.where(Event.id > after).order_by(Event.id).limit(_CHUNK)
        ).all()
        for row, summary, reason in summarise(session, gate, rows):
            if limit is not None and len(out) >= limit:
                break
            if summary is None:
                withheld.append([row.uuid, None, False, reason, None, 0])
                continue
            if not query.wanted(summary):
                continue
            event = repository.by_uuid(session, row.uuid)
            assert event is not None
            delivery = decide_event(
                session,
                to=caller.recipient,
                event=event,
                channel=CHANNEL,
                policy=caller.policy,
                include_deleted=query.mode != "live",
            )
            if delivery.event is None:
                recorded.append((event, delivery))
                continue
            body_event = delivery.event["Event"]
            if not query.narrowed(body_event):
                continue
            if skip:
                skip -= 1
                continue
            recorded.append((event, delivery))
            numbering = shapes.Numbering.load(session, caller.ids, event)
            bare.append(body_event)
            out.append(
                shapes.full_event(
                    body_event,
                    event,
                    numbering,
                    metadata=query.only_metadata,
                    sightings=query.sightings,
                )
            )
        if len(rows) < _CHUNK:
            break
        after = rows[-1].id
    seq = _record_search(session, caller, recorded, withheld)
    return Found(out, seq, bare, obligation_of(out))


def _record_search(
    session: Session,
    caller: Caller,
    recorded: list[tuple[Any, Any]],
    withheld: list[list[Any]],
) -> int | None:
    """One audit entry for the answer: the events delivered or refused whole, else (when
    only listed events were withheld) the refusals."""
    seq = record_event_page(
        session,
        to=caller.recipient,
        deliveries=recorded,
        channel=CHANNEL,
        policy_version=caller.policy.version,
    )
    if withheld and seq is None:
        seq = record(
            session,
            caller.recipient,
            action="release.page",
            channel=CHANNEL,
            object_ref=None,
            decision="deny",
            details={"policy_version": caller.policy.version, "releases": withheld},
        )
    return seq
