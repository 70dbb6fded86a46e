"""orjson-rendered JSON response (fast, and handles datetimes and UUIDs natively)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.responses import StreamingResponse

CHUNK = 1000


class JSONResponse(StarletteJSONResponse):
    """A JSON response; a subclass of Starlette's, so FastAPI documents the route's response
    model as its body (for any other class it documents a string)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def stream_event(
    event: dict[str, Any],
    *,
    after: dict[str, Any],
    headers: dict[str, str],
    release: bool = False,
) -> StreamingResponse:
    """``{"Event": {...}, **after}`` serialised a chunk of elements at a time: a 10^5-attribute
    event never becomes one bytes buffer, and the serialiser gives the interpreter back
    between chunks, so small requests beside a large download keep their latency (L1).

    The bytes are those of ``orjson.dumps({"Event": {**rest, "Attribute": attributes,
    "Object": objects}, **after})``: the event's other keys first, then its two element
    lists (``[]`` when absent), as the hub has always sent it (a test compares them).

    With ``release`` the stream takes the event over (its element lists must be its own, as
    in an event decoded for this answer): each chunk's elements are let go once sent (their
    slots in the list set to None), so the event is freed a chunk at a time, not in one
    ~50 ms deallocation at the end, and its memory falls while it is sent."""
    return StreamingResponse(
        _pieces(event, after, release), media_type="application/json", headers=headers
    )


def event_bytes(event: dict[str, Any], *, after: dict[str, Any]) -> bytes:
    """The bytes ``stream_event`` sends, whole (the event is taken over, as with
    ``release``): for an answer serialised in another process (``hub.sharing.rendered``)."""
    return b"".join(_pieces(event, after, True))


def _pieces(event: dict[str, Any], after: dict[str, Any], release: bool) -> Iterator[bytes]:
    head = orjson.dumps({k: v for k, v in event.items() if k not in ("Attribute", "Object")})
    yield b'{"Event":' + head[:-1]
    separator = b"," if len(head) > 2 else b""
    for key in ("Attribute", "Object"):
        yield separator + b'"' + key.encode() + b'":['
        separator = b","
        yield from _elements(event.get(key) or [], release, objects=key == "Object")
        yield b"]"
    tail = orjson.dumps(after)
    yield b"}" + (b"," + tail[1:] if after else b"}")


def _weight(element: Any) -> int:
    """What one element costs to serialise, in attributes: an object counts its own."""
    if type(element) is dict:
        inner = element.get("Attribute")
        if type(inner) is list:
            return 1 + len(inner)
    return 1


def _elements(items: list[Any], release: bool, *, objects: bool = False) -> Iterator[bytes]:
    """The elements of one array, comma-separated, at most about CHUNK attributes per
    ``orjson.dumps``: CHUNK attributes, or ``objects`` up to CHUNK attributes in all; an
    object heavier than that alone is serialised key by key, its attributes in chunks."""
    start, count, first = 0, len(items), True
    while start < count:
        if objects:
            end, weight = start, 0
            while end < count:
                w = _weight(items[end])
                if weight and weight + w > CHUNK:
                    break
                weight += w
                end += 1
        else:
            end, weight = min(start + CHUNK, count), 0
        comma = b"" if first else b","
        first = False
        if end == start + 1 and weight > CHUNK:
            yield from _object(items[start], release, comma)
        else:
            yield comma + orjson.dumps(items[start:end])[1:-1]
        if release:
            items[start:end] = [None] * (end - start)
        start = end


def _object(element: dict[str, Any], release: bool, prefix: bytes) -> Iterator[bytes]:
    """One dict as ``orjson.dumps`` writes it (after ``prefix``), its ``Attribute`` list in
    chunks."""
    separator = prefix + b"{"
    for key, value in element.items():
        if key == "Attribute":
            yield separator + b'"Attribute":['
            yield from _elements(value, release)
            yield b"]"
        else:
            yield separator + orjson.dumps({key: value})[1:-1]
        separator = b","
    yield b"}" if separator == b"," else separator + b"}"
