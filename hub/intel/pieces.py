"""A stored snapshot decoded a piece at a time, so that no single C call holds the GIL for
long (L1: docs/operations.md, "Sync handlers in the thread pool").

``msgspec.json.decode`` of a 10^5-attribute snapshot (~30 MB of JSON) builds every dict in
one call: 0.2-0.4 s during which no other thread of the worker runs, so a small request on
the same worker waits for it. Here the same bytes give the same objects in steps:

1. zlib inflates a slice of the blob at a time (it releases the GIL while it inflates);
2. the event's attributes are decoded straight from the text ~256 KiB at a time (``_walk``:
   a guessed boundary, proven by the piece's own decode), with no pass over the whole;
3. what is left (objects, the event's fields, attributes after a guess that failed) is split
   in one msgspec pass into scalar fields and, for each array, a ``msgspec.Raw`` per element
   (scanned, not built), and the elements are decoded a piece at a time (an element larger
   than a piece is split the same way, recursively). The labels stored beside the event are
   not scanned.

The result equals ``msgspec.json.decode(zlib.decompress(blob))["event"]`` (a test compares
them): same keys in the same order, same values and types.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec

INFLATE_SLICE = 64 * 1024  # compressed bytes per zlib call (~0.3 MB of JSON out)
PIECE_BYTES = 256 * 1024  # JSON bytes decoded per msgspec call (~1-3 ms)
WALK_LOOK = PIECE_BYTES  # how far past a piece's size to look for its first key
WALK_MISSES = 64  # wrong guesses scanned past, per piece, before the rest is split whole

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
_SCAN = msgspec.json.Decoder(list[msgspec.Raw])
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
    text = inflate(blob)
    walked, at = _walk(text) if text.startswith(_WALK_FROM) else ([], 0)
    if at:  # the attributes not walked, and everything after them
        text = _WALK_FROM[:-1] + text[at:]
    event = _filled(_split(text))
    if walked:
        event["Attribute"] = walked + event["Attribute"]
    return event


# A snapshot whose event's first key is "Attribute" (``drafts`` writes its keys sorted) and
# whose first attribute is an object.
_WALK_FROM = b'{"event":{"Attribute":[{'
_BOUNDARY = b'},{"'


def _walk(text: bytes) -> tuple[list[Any], int]:
    """The event's first attributes decoded a piece at a time straight from the text, with
    no pass over the whole. From a known element start, a piece ends at a guess: the first
    ``},{"K":`` past PIECE_BYTES, K being the first key of the element the piece starts
    with (keys are sorted, so most elements share their first key, and a nested tag's
    differs); after WALK_LOOK bytes without one, any ``},{"``. The piece is decoded as
    ``[piece]``, and that decode is the proof: it succeeds only if the piece is whole
    elements, so the ``{`` after the comma starts the next one. Past a wrong guess (a brace
    in a string, a nested list) the next ``},{"`` are only scanned (``list[Raw]``: ~1/4 of
    a decode), at most WALK_MISSES of them; then, or near the end of the text, the walk
    stops. Returns the elements and where the next one starts (0: none walked)."""
    out: list[Any] = []
    pos = len(_WALK_FROM) - 1
    end = len(text)
    while pos + PIECE_BYTES < end:
        key_end = text.find(b'"', pos + 2, pos + 200)
        if key_end < 0:
            break
        pattern = b"}," + text[pos : key_end + 2]  # '},{"K":'
        cut = text.find(pattern, pos + PIECE_BYTES, pos + PIECE_BYTES + WALK_LOOK)
        if cut < 0:
            cut = text.find(_BOUNDARY, pos + PIECE_BYTES)
        piece = _piece(text, pos, cut)
        if piece is None:
            break
        elements, cut = piece
        out.extend(elements)
        pos = cut + 2
    return out, (pos if out else 0)


def _piece(text: bytes, pos: int, cut: int) -> tuple[list[Any], int] | None:
    """The elements from ``pos`` to the first ``},{"`` from ``cut`` on that ends whole ones,
    and where they end; None when no such end is found within WALK_MISSES wrong ones."""
    if cut < 0:
        return None
    try:
        return ELEMENTS.decode(b"[" + text[pos : cut + 1] + b"]"), cut
    except msgspec.DecodeError:
        pass
    for _miss in range(WALK_MISSES):
        cut = text.find(_BOUNDARY, cut + 1)
        if cut < 0:
            return None
        buf = b"[" + text[pos : cut + 1] + b"]"
        try:
            _SCAN.decode(buf)
        except msgspec.DecodeError:
            continue
        return ELEMENTS.decode(buf), cut
    return None


_EVENT_FIRST = b'{"event":'
_LABELS_NEXT = b',"labels":'


def _split(text: bytes) -> dict[str, Any]:
    """The event's fields, arrays as Raw elements. A snapshot as ``drafts`` writes it is
    ``{"event":E,"labels":L}``: E alone is split, L (~16% of the bytes) is not even scanned.
    The cut is checked by the decode itself (E must be one whole JSON object: a
    ``,"labels":`` found inside L leaves trailing text, which fails), else all is split."""
    cut = text.rfind(_LABELS_NEXT)
    if text.startswith(_EVENT_FIRST) and cut > 0:
        try:
            return _OBJECT.decode(memoryview(text)[len(_EVENT_FIRST) : cut])
        except msgspec.DecodeError:
            pass
    return _SNAPSHOT.decode(text).event


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
