"""A stored snapshot decoded a piece at a time, so that no single C call holds the GIL for
long (L1: docs/operations.md, "Sync handlers in the thread pool").

``msgspec.json.decode`` of a 10^5-attribute snapshot (~30 MB of JSON) builds every dict in
one call: 0.2-0.4 s during which no other thread of the worker runs, so a small request on
the same worker waits for it. Here the same bytes give the same objects in steps:

1. zlib inflates a slice of the blob at a time (it releases the GIL while it inflates);
2. one msgspec pass splits the event into its scalar fields and, for each array, a
   ``msgspec.Raw`` per element: the bytes are scanned, no element is built;
3. the elements are decoded a few hundred kilobytes at a time (an element larger than that
   is split the same way, recursively), with the GIL free for other threads in between.

The result equals ``msgspec.json.decode(zlib.decompress(blob))["event"]`` (a test compares
them): same keys in the same order, same values and types.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

INFLATE_SLICE = 64 * 1024  # compressed bytes per zlib call (~0.3 MB of JSON out)
PIECE_BYTES = 256 * 1024  # JSON bytes decoded per msgspec call (~1-3 ms)

# A JSON value with its arrays left as one Raw per element. At most one array type and
# one object type may be in a msgspec union: objects below the top are decoded whole, and
# an element too large for one piece is split again by ``_element``.
_Split = list[msgspec.Raw] | dict[str, Any] | str | int | float | bool | None


class _Snapshot(msgspec.Struct):
    """A version snapshot as ``snapshots.pack`` stores it; its other keys (``labels``) are
    scanned, not built."""

    event: dict[str, _Split]


_SNAPSHOT = msgspec.json.Decoder(_Snapshot)
_OBJECT = msgspec.json.Decoder(dict[str, _Split])
ELEMENTS = msgspec.json.Decoder()  # a piece of elements, as a JSON array


def inflate(blob: bytes) -> bytes:
    """``zlib.decompress(blob)``, a slice of the input at a time."""
    inflater = zlib.decompressobj()
    out = [
        inflater.decompress(blob[start : start + INFLATE_SLICE])
        for start in range(0, len(blob), INFLATE_SLICE)
    ]
    out.append(inflater.flush())
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return b"".join(out)


def event_of(blob: bytes) -> dict[str, Any]:
    """The ``event`` of a packed snapshot, decoded a piece at a time."""
    event = _SNAPSHOT.decode(inflate(blob)).event
    return _filled(event)


def _filled(split: dict[str, Any]) -> dict[str, Any]:
    for key, value in split.items():
        if type(value) is list:
            split[key] = _elements(value)
    return split


def _elements(raws: list[msgspec.Raw]) -> list[Any]:
    """The elements of one array, decoded a piece of at most PIECE_BYTES at a time."""
    out: list[Any] = []
    piece: list[msgspec.Raw] = []
    size = 0
    for raw in raws:
        length = len(raw)
        if length > PIECE_BYTES:
            if piece:
                out.extend(ELEMENTS.decode(b"[" + b",".join(piece) + b"]"))
                piece, size = [], 0
            out.append(_element(raw))
            continue
        piece.append(raw)
        size += length + 1
        if size >= PIECE_BYTES:
            out.extend(ELEMENTS.decode(b"[" + b",".join(piece) + b"]"))
            piece, size = [], 0
    if piece:
        out.extend(ELEMENTS.decode(b"[" + b",".join(piece) + b"]"))
    return out


def _element(raw: msgspec.Raw) -> Any:
    """One large element: an object's arrays (a MISP object's attributes) in pieces; an
    array's elements in pieces; anything else (a long string) whole."""
    first = bytes(memoryview(raw)[:64]).lstrip()[:1]
    if first == b"{":
        return _filled(_OBJECT.decode(raw))
    if first == b"[":
        return _elements(msgspec.json.decode(raw, type=list[msgspec.Raw]))
    return ELEMENTS.decode(raw)
