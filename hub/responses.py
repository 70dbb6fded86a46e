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
    event: dict[str, Any], *, after: dict[str, Any], headers: dict[str, str]
) -> StreamingResponse:
    """``{"Event": {...}, **after}`` serialised a chunk of elements at a time: a 10^5-attribute
    event never becomes one bytes buffer, and the serialiser gives the interpreter back
    between chunks, so small requests beside a large download keep their latency (L1)."""
    return StreamingResponse(_pieces(event, after), media_type="application/json", headers=headers)


def _pieces(event: dict[str, Any], after: dict[str, Any]) -> Iterator[bytes]:
    head = orjson.dumps({k: v for k, v in event.items() if k not in ("Attribute", "Object")})
    yield b'{"Event":' + head[:-1]
    separator = b"," if len(head) > 2 else b""
    for key in ("Attribute", "Object"):
        items = event.get(key) or []
        yield separator + b'"' + key.encode() + b'":['
        separator = b","
        for start in range(0, len(items), CHUNK):
            body = orjson.dumps(items[start : start + CHUNK])[1:-1]
            yield (b"," + body) if start else body
        yield b"]"
    tail = orjson.dumps(after)
    yield b"}" + (b"," + tail[1:] if after else b"}")
