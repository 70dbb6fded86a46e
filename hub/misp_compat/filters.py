"""MISP's search filters (EventsController.php:246-520), in two halves.

``sql_filters`` narrows the candidates in SQL and must only ever keep a superset of what
matches: it holds the filters whose answer is the same on stored and on released data (the
creator, the event's own fields) and the lower bounds of the rest. ``EventMatch`` decides
every filter on what the caller receives: its tags as released (no local tag, no producer of
a TLP:EX:CHR event, the effective TLP label), its timestamp as the caller sees it. Exclusions
(``!tag``) live only there: excluding in SQL would let a guessed hidden tag remove an event.
Unknown keys are ignored, as MISP ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_

import tlp
from hub.errors import InvalidField
from hub.intel import repository
from hub.misp_compat.params import Terms, since, terms, truthy
from hub.misp_compat.service import Caller, is_uuid, row_ids
from hub.models import Attribute, Event
from hub.sharing.view import EventSummary

_TAG_KEYS = ("tags", "tag")


def _tag_label(name: str) -> tlp.Tlp | None:
    try:
        return tlp.parse_tag(name).label
    except tlp.TLPError:
        return None


def _like_json(name: str) -> str:
    """A LIKE pattern for one tag name inside the ``tags`` JSON list, lower-cased."""
    quoted = orjson.dumps(name.lower()).decode()
    escaped = quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _tag_clause(name: str) -> ColumnElement[bool]:
    """One wanted tag: a TLP tag matches the event's effective label, any other its name,
    case-insensitively (Tag.php:310-355); a tag id matches nothing here (the hub has none)."""
    label = _tag_label(name)
    if label is not None:
        return Event.tlp_rank == label.rank
    if name.isascii() and name.isdigit():
        return false()
    return func.lower(Event.tags).like(_like_json(name), escape="\\")


def _org_clause(values: list[str]) -> ColumnElement[bool]:
    uuids = [v.lower() for v in values if is_uuid(v)]
    names = [v.casefold() for v in values if not is_uuid(v)]
    return or_(Event.orgc_uuid.in_(uuids), func.lower(Event.orgc_name).in_(names))


def _event_ids_clause(caller: Caller, values: list[str]) -> ColumnElement[bool]:
    ids = row_ids(caller, "event", values)
    uuids = [v.lower() for v in values if is_uuid(v)]
    return or_(Event.id.in_(ids), Event.uuid.in_(uuids))


def _ints(values: list[str], name: str) -> list[int]:
    out = []
    for value in values:
        if not (value.isascii() and value.isdigit() and len(value) < 10):
            raise InvalidField(f"{name}: expected numbers, not {value!r}", field=name)
        out.append(int(value))
    return out


def sql_filters(stmt: Select[Any], body: dict[str, Any], *, caller: Caller) -> Select[Any]:
    """The superset half (module doc) of MISP's event filters."""
    tags = terms(body.get("tags", body.get("tag")))
    if tags.include:
        stmt = stmt.where(or_(*[_tag_clause(t) for t in tags.include]))
    orgs = terms(body.get("org"))
    # The creator of a TLP:EX:CHR event is not disclosed, so it cannot be filtered on either.
    attributable = or_(Event.chr.is_(False), Event.orgc_uuid == caller.org_uuid)
    if orgs.include:
        stmt = stmt.where(_org_clause(orgs.include), attributable)
    if orgs.exclude:
        stmt = stmt.where(or_(not_(_org_clause(orgs.exclude)), not_(attributable)))
    ids = terms(body.get("eventid", body.get("event_id", body.get("uuid"))))
    if ids.include:
        stmt = stmt.where(_event_ids_clause(caller, ids.include))
    if ids.exclude:
        stmt = stmt.where(not_(_event_ids_clause(caller, ids.exclude)))
    dist = terms(body.get("distribution"))
    if dist.include:
        stmt = stmt.where(Event.distribution.in_(_ints(dist.include, "distribution")))
    if dist.exclude:
        stmt = stmt.where(Event.distribution.not_in(_ints(dist.exclude, "distribution")))
    published = _published(body)
    if published is not None:
        stmt = stmt.where(repository.published_superset(published))
    low, _high = since(body.get("timestamp"), name="timestamp")
    if low is not None:  # what a caller sees of an event's timestamp is never later
        stmt = stmt.where(Event.timestamp >= low)
    for key in ("publish_timestamp", "last"):
        low, _high = since(body.get(key), name=key)
        if low is not None:  # nor its publish time (the first publication since its change)
            stmt = stmt.where(Event.publish_timestamp >= low)
    info = body.get("eventinfo") or body.get("info")
    if info:
        stmt = stmt.where(func.lower(Event.info).like(_info_pattern(str(info)), escape="\\"))
    for key, op in (
        ("datefrom", "ge"),
        ("date_from", "ge"),
        ("from", "ge"),
        ("dateuntil", "le"),
        ("date_to", "le"),
        ("to", "le"),
    ):
        if body.get(key):
            value = _date(body[key], key)
            stmt = stmt.where(Event.date >= value if op == "ge" else Event.date <= value)
    return stmt


def _published(body: dict[str, Any]) -> bool | None:
    published = body.get("published")
    if published in (None, "") or (isinstance(published, list) and len(published) > 1):
        return None
    return truthy(published)


def _info_pattern(text: str) -> str:
    """``eventinfo`` as MISP reads it: ``%`` and ``_`` are wildcards (a pattern without ``%``
    matches anywhere in the title), a backslash escapes the next character, so
    ``C:\\\\Windows`` finds ``C:\\Windows`` (MISP/MISP#6616); case-insensitive. The same
    LIKE on SQLite and PostgreSQL: the escape character is explicit."""
    out: list[str] = []
    chars = iter(text.lower())
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append("\\" + nxt if nxt in ("%", "_", "\\") else "\\\\" + nxt)
        else:
            out.append(char)
    pattern = "".join(out)
    unescaped = pattern.replace("\\%", "").replace("\\\\", "")
    return pattern if "%" in unescaped else f"%{pattern}%"


def _date(value: Any, name: str) -> str:
    """An event date filter: ``YYYY-MM-DD`` (a longer date is cut) or epoch seconds."""
    text = str(value).strip()
    try:
        stamp = float(text)
    except ValueError:
        return text[:10]
    try:
        return datetime.fromtimestamp(stamp, UTC).date().isoformat()
    except (OverflowError, OSError, ValueError):
        raise InvalidField(f"{name}: {value!r} is not a date", field=name) from None


class EventMatch:
    """The released half (module doc): does an event, as the caller receives it, match?"""

    def __init__(self, body: dict[str, Any], caller: Caller) -> None:
        self.tags = terms(body.get("tags", body.get("tag")))
        self.low, self.high = since(body.get("timestamp"), name="timestamp")
        self.groups = terms(body.get("sharinggroup"))
        self.published = _published(body)
        self.published_between = [
            since(body.get(key), name=key) for key in ("publish_timestamp", "last")
        ]
        self.caller = caller

    @property
    def on_event(self) -> bool:
        """Whether anything is asked of the event itself beyond its tags."""
        return bool(
            self.groups
            or self.low is not None
            or self.high is not None
            or self.published is not None
            or any(low is not None or high is not None for low, high in self.published_between)
        )

    def __call__(self, summary: EventSummary) -> bool:
        if not self.row(summary.row, summary.tags, summary.timestamp):
            return False
        if self.published is not None and summary.published is not self.published:
            return False
        for low, high in self.published_between:
            if low is not None and summary.publish_timestamp < low:
                return False
            if high is not None and summary.publish_timestamp > high:
                return False
        return True

    def row(self, row: Any, tags: list[str], timestamp: int) -> bool:
        if not _tags_match(self.tags, row, tags):
            return False
        if self.low is not None and timestamp < self.low:
            return False
        if self.high is not None and timestamp > self.high:
            return False
        return not self.groups or _group_match(self.groups, row)


def _tags_match(wanted: Terms, row: Any, tags: list[str]) -> bool:
    if not wanted:
        return True
    names = {t.casefold() for t in tags}
    label = tlp.Tlp.from_rank(row.tlp_rank)

    def has(name: str) -> bool:
        found = _tag_label(name)
        if found is not None:
            return found is label
        return name.casefold() in names

    if wanted.include and not any(has(t) for t in wanted.include):
        return False
    return not any(has(t) for t in wanted.exclude)


def _group_match(groups: Terms, row: Any) -> bool:
    """The ``sharinggroup`` filter: the event's own group, by uuid or name."""
    keys: set[str] = set()
    if row.distribution == 4:
        group = orjson.loads(row.doc).get("SharingGroup") or {}
        keys = {str(group.get(k)).lower() for k in ("uuid", "name") if group.get(k)}
    wanted = {g.lower() for g in groups.include}
    if wanted and not keys & wanted:
        return False
    return not keys & {g.lower() for g in groups.exclude}


# --- attribute filters ------------------------------------------------------------------------


def attribute_clauses(body: dict[str, Any]) -> list[ColumnElement[bool]]:
    """The attribute filters in SQL (a superset: the matcher decides on what goes out)."""
    out: list[ColumnElement[bool]] = []
    values = terms(body.get("value"))

    def value_clause(v: str) -> ColumnElement[bool]:
        if "%" in v:
            return func.lower(Attribute.value).like(v.lower())
        return and_(Attribute.value_key == v[:200], Attribute.value == v)

    if values.include:
        out.append(or_(*[value_clause(v) for v in values.include]))
    for key, column in (("type", Attribute.type), ("category", Attribute.category)):
        chosen = terms(body.get(key))
        if chosen.include:
            out.append(column.in_(chosen.include))
        if chosen.exclude:
            out.append(column.not_in(chosen.exclude))
    if body.get("to_ids") not in (None, "", []):
        out.append(Attribute.to_ids.is_(truthy(body["to_ids"])))
    return out


def _like(pattern: str) -> re.Pattern[str]:
    """SQL LIKE (``%``, ``_``) as a regex, case-insensitive as MISP's MySQL compares."""
    parts = ("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def attribute_matcher(body: dict[str, Any]) -> Callable[[dict[str, Any]], bool] | None:
    """The attribute filters on a released attribute (a MISP JSON dict); None: no filter."""
    values = terms(body.get("value"))
    types = {k: terms(body.get(k)) for k in ("type", "category")}
    to_ids = body.get("to_ids")
    if not (values or any(types.values()) or to_ids not in (None, "", [])):
        return None
    patterns = {v: _like(v) for v in [*values.include, *values.exclude] if "%" in v}

    def value_is(value: str, v: str) -> bool:
        return bool(patterns[v].fullmatch(value)) if v in patterns else value == v

    def match(a: dict[str, Any]) -> bool:
        value = str(a.get("value") or "")
        if values.include and not any(value_is(value, v) for v in values.include):
            return False
        if any(value_is(value, v) for v in values.exclude):
            return False
        for key, chosen in types.items():
            got = str(a.get(key) or "")
            if chosen.include and got not in chosen.include:
                return False
            if got in chosen.exclude:
                return False
        return to_ids in (None, "", []) or truthy(a.get("to_ids")) == truthy(to_ids)

    return match


def released_attributes(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The live attributes of a released (filtered) event, standalone and in objects."""
    attrs = [a for a in event.get("Attribute") or [] if not truthy(a.get("deleted"))]
    for item in event.get("Object") or []:
        if not truthy(item.get("deleted")):
            attrs += [a for a in item.get("Attribute") or [] if not truthy(a.get("deleted"))]
    return attrs
