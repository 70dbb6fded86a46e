"""MISP's URL syntax and filter values, parsed once (pure).

CakePHP named parameters travel as path segments ``key:value`` and arrays as
``key[]:v1/key[]:v2`` (ServerSyncTool ``createParams``:637-650); a ``.json`` suffix may end
the path. Filter values follow EventsController.php:246-520: a list or a ``|``-joined string
is an OR, and a leading ``!`` negates.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from hub.errors import InvalidField

_RELATIVE = re.compile(r"^([0-9]{1,12})([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ROW_ID_MAX = 2**31 - 1  # ids are 32-bit integer columns on PostgreSQL
STAMP_MAX = 2**63 - 1
PAGING_MAX = 10**9  # a limit or page beyond this names no rows; the database would overflow


def row_id(text: str) -> int | None:
    """The row id a numeric MISP id names, or None when it cannot name one: Unicode digits
    ("²", "١٢٣") and numbers beyond the id column are answered as unknown ids, not 500s."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= ROW_ID_MAX else None


def strip_json(segment: str) -> str:
    return segment[:-5] if segment.endswith(".json") else segment


def named_params(tail: str) -> tuple[list[str], dict[str, Any]]:
    """Positional segments and named parameters of a path tail (``a/b:1/c[]:2/c[]:3.json``)."""
    positional: list[str] = []
    named: dict[str, Any] = {}
    segments = [s for s in strip_json(tail).split("/") if s]
    for raw in segments:
        segment = unquote(raw)
        key, sep, value = segment.partition(":")
        if not sep:
            positional.append(segment)
        elif key.endswith("[]"):
            named.setdefault(key[:-2], [])
            if isinstance(named[key[:-2]], list):
                named[key[:-2]].append(value)
        else:
            named[key] = value
    return positional, named


def truthy(value: Any) -> bool:
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


@dataclass(slots=True)
class Terms:
    """A filter split into values that must match (any of them) and values that must not."""

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)


def terms(value: Any) -> Terms:
    """``["a", "!b"]``, ``"a|!b"`` or ``{"OR": [...], "NOT": [...]}`` → include/exclude."""
    out = Terms()
    if value is None or value == "":
        return out
    if isinstance(value, dict):
        for key, items in value.items():
            sub = terms(items)
            if key.upper() == "NOT":
                out.exclude += sub.include + sub.exclude
            else:
                out.include += sub.include
                out.exclude += sub.exclude
        return out
    items = value if isinstance(value, list) else str(value).split("|")
    for item in items:
        if isinstance(item, (list, dict)):
            sub = terms(item)
            out.include += sub.include
            out.exclude += sub.exclude
            continue
        text = str(item).strip()
        if not text:
            continue
        if text.startswith("!"):
            if text[1:]:
                out.exclude.append(text[1:])
        else:
            out.include.append(text)
    return out


NEVER = 2**62  # a lower bound no timestamp reaches: a time filter that matches nothing


def since(value: Any, *, name: str, now: int | None = None) -> tuple[int | None, int | None]:
    """A time filter: epoch seconds, a relative ``30d``/``12h``, or ``[from, to]``. A value
    that is neither (``5x``, ``ad``) matches nothing, as MISP answers it: an empty result,
    not an error."""
    if value is None or value == "" or value == 0 or value == "0":
        return None, None
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise InvalidField(f"{name}: a range is [from, to]", field=name)
        low, _ = since(value[0], name=name, now=now)
        high, _ = since(value[1], name=name, now=now)
        return low, high
    text = str(value).strip().lower()
    match = _RELATIVE.match(text)
    if match:
        now = now or int(time.time())
        return now - int(match.group(1)) * _UNIT[match.group(2)], None
    try:
        stamp = float(text)
    except ValueError:
        return NEVER, None  # MISP answers an unreadable time with nothing, not an error
    if not math.isfinite(stamp) or abs(stamp) > STAMP_MAX:
        return NEVER, None
    return int(stamp), None


def limit_page(
    body: dict[str, Any], *, default: int | None, maximum: int | None = None
) -> tuple[int | None, int]:
    """MISP paging: ``limit`` and ``page`` (from 1); no limit means ``default`` (None:
    everything). A ``limit`` above ``maximum`` is refused naming it (bounded work per
    request; a silently smaller page would break the caller's offsets)."""
    try:
        limit = int(body["limit"]) if body.get("limit") not in (None, "", 0, "0") else default
        page = max(int(body.get("page") or 1), 1)
    except (TypeError, ValueError, OverflowError):
        raise InvalidField("limit and page must be numbers", field="limit") from None
    for name, number in (("limit", limit), ("page", page)):
        if number is not None and number > PAGING_MAX:
            raise InvalidField(f"{name}: at most {PAGING_MAX}", field=name)
    if limit is not None and limit < 1:
        limit = default
    if maximum is not None and limit is not None and limit > maximum:
        raise InvalidField(
            f"limit is at most {maximum} here; page with limit and page", field="limit"
        )
    return limit, page
