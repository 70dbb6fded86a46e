"""The store's own reading and writing helpers, shared by ingest and everything that reads
events back: parsing submitted JSON, packing version snapshots, the current and live state of
an event, a sharing group's members, the GC pause for bulk work on dicts.
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import BadRequest, InvalidField
from hub.intel import pieces
from hub.models import Event, EventVersion


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC paused for bulk work on dicts (no reference cycles: refcounting frees
    everything), resumed only if it was running.

    On resuming, what was allocated meanwhile (10^5 attribute dicts and their tag lists) is
    moved to the oldest generation without being walked (``gc.freeze`` + ``gc.unfreeze``:
    two list splices, and the young count back to 0). Plain ``gc.enable`` let the next
    allocation start a young collection over all of it and, later, a middle one: each
    0.1-0.3 s with the GIL held, while every other request of the worker waited (L1). Those
    objects are still walked by the next full collection if they are alive then; a cycle
    among them waits for it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def parse_body(body: bytes) -> Any:
    """Parse a submitted JSON body; BadRequest naming the problem if it is not JSON.

    msgspec builds the Python objects straight from the bytes; orjson's parser first builds
    a document of its own, which costs ~1.6x more peak memory on a 25 MB event (goal I3).
    The cyclic GC is paused while it runs: parsing creates ~10^6 objects for a 10^5-attribute
    event and no cycles, and GC passes over the growing heap made it ~3x slower (measured).
    """
    try:
        with gc_paused():
            return msgspec.json.decode(body)
    except msgspec.DecodeError as err:
        where = _out_of_range(body) if "out of range" in str(err) else None
        if where is not None:
            raise InvalidField(f"{where}: the number is out of range", field=where) from None
        raise BadRequest(f"request body is not valid JSON: {err}") from None


def _out_of_range(body: bytes) -> str | None:
    """Where a number too large for a float (``1e309``) is, for the 422 naming it; msgspec
    refuses it without saying where. Only on that error path."""
    try:
        document = json.loads(body)  # makes it ``inf``
    except (ValueError, RecursionError):
        return None
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path or "body"
        if isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def pack(value: Any) -> bytes:
    return zlib.compress(orjson.dumps(value), 1)


def unpack(blob: bytes) -> Any:
    # msgspec: several times faster than orjson here for 10^5-attribute snapshots (goal S1).
    return msgspec.json.decode(zlib.decompress(blob))


def sg_members(element: dict[str, Any]) -> str | None:
    if str(element.get("distribution")) != "4":
        return None
    group = element.get("SharingGroup") or {}
    members = set()
    for entry in group.get("SharingGroupOrg") or []:
        org = (entry or {}).get("Organisation") or {}
        if org.get("uuid"):
            members.add(str(org["uuid"]))
    owner = group.get("Organisation") or {}
    if owner.get("uuid"):
        members.add(str(owner["uuid"]))
    return dumps(sorted(members)).decode()


def live_state(event: dict[str, Any]) -> dict[str, Any]:
    """The event without its soft-deleted attributes and objects (a shallow copy)."""
    out = dict(event)
    out["Attribute"] = [a for a in event.get("Attribute") or [] if not a.get("deleted")]
    out["Object"] = [
        {**o, "Attribute": [a for a in o.get("Attribute") or [] if not a.get("deleted")]}
        for o in event.get("Object") or []
        if not o.get("deleted")
    ]
    return out


def current_state(session: Session, event: Event) -> dict[str, Any]:
    """The event's whole current state, as stored with its latest version."""
    blob = current_snapshot(session, event)
    with gc_paused():
        return pieces.event_of(blob)


def current_snapshot(session: Session, event: Event) -> bytes:
    """The stored snapshot of the event's latest version, compressed (``pieces.event_of``
    decodes it)."""
    blob = session.scalar(
        select(EventVersion.snapshot).where(
            EventVersion.event_id == event.id, EventVersion.version == event.version
        )
    )
    assert blob is not None, f"event {event.uuid} has no version {event.version}"
    return bytes(blob)


def group_id(group: dict[str, Any]) -> str:
    """A sharing group's id as the hub hands it out: stable, derived from its uuid (or its
    members), never the source's own number."""
    key = str(group.get("uuid") or "") or ",".join(sorted(_member_uuids(group)))
    return str(1 + int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % (2**31 - 1))


def _member_uuids(group: dict[str, Any]) -> set[str]:
    found = set()
    for entry in group.get("SharingGroupOrg") or []:
        org = (entry or {}).get("Organisation") if isinstance(entry, dict) else None
        if isinstance(org, dict) and org.get("uuid"):
            found.add(str(org["uuid"]))
    return found
