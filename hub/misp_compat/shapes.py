"""MISP's JSON shapes on the way out (pure, on dicts).

MISP sends integers as strings and booleans as booleans (``JsonTool::convertIntegersToStrings``;
some consumers compare ``=== '2'``, Sighting.php:1291), and every tag with its ``local`` flag:
the pulling server reads ``Tag[].local`` on every element and strips local tags
(Server.php:304-436). The hub never serves ``protected: true`` (its pull would demand a PGP
signature, Server.php:501-506).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from hub.misp_compat.params import truthy
from hub.models import Event

_DOWNGRADE = {"1": "0", "2": "1", 1: "0", 2: "1"}
_ELEMENT_DROP = ("Sighting", "ShadowAttribute", "RelatedAttribute")
STREAM_CHUNK = 1000


def downgrade(distribution: Any) -> str:
    """Distribution as a pulling MISP stores it (Server.php:314-430): 1→0, 2→1."""
    return _DOWNGRADE.get(distribution, str(distribution))


class TagShaper:
    """Adds ``"local": false`` to tags; the release path shares one tag list per label, so the
    shaped list is made once per distinct list, not once per attribute."""

    __slots__ = ("_lists",)

    def __init__(self) -> None:
        self._lists: dict[int, tuple[list[Any], list[dict[str, Any]]]] = {}

    def __call__(self, tags: list[Any] | None) -> list[dict[str, Any]]:
        if not tags:
            return []
        found = self._lists.get(id(tags))
        if found is not None:
            return found[1]
        shaped = [
            {**t, "local": False} if isinstance(t, dict) else {"name": str(t), "local": False}
            for t in tags
        ]
        self._lists[id(tags)] = (tags, shaped)  # keep ``tags`` alive: ids must stay unique
        return shaped


def attribute(attr: dict[str, Any], tags: TagShaper, **extra: Any) -> dict[str, Any]:
    """One released attribute (a dict the release path made for this response) in MISP shape."""
    attr["Tag"] = tags(attr.get("Tag"))
    for key in _ELEMENT_DROP:
        attr.pop(key, None)
    if attr.get("distribution") != "4":
        attr.pop("SharingGroup", None)
    attr.update(extra)
    return attr


def obj(item: dict[str, Any], tags: TagShaper, event_id: str) -> dict[str, Any]:
    item["Attribute"] = [attribute(a, tags, event_id=event_id) for a in item.get("Attribute") or []]
    if "Tag" in item:
        item["Tag"] = tags(item["Tag"])
    item["event_id"] = event_id
    return item


def event_head(event: dict[str, Any], row: Event, tags: TagShaper) -> dict[str, Any]:
    """The event's own fields (no Attribute/Object) as MISP sends them."""
    head = {k: v for k, v in event.items() if k not in ("Attribute", "Object")}
    head["id"] = str(row.id)
    # What this caller receives, not what the hub holds: the stored count includes the
    # attributes the release path withheld, and would tell how many there are.
    head["attribute_count"] = str(delivered_count(event))
    head["protected"] = False
    head["locked"] = False
    head.setdefault("date", row.date or "")
    head.setdefault("threat_level_id", "4")
    head.setdefault("analysis", "0")
    head.setdefault("publish_timestamp", str(row.publish_timestamp or 0))
    head.setdefault("sharing_group_id", "0")
    head["Tag"] = tags(event.get("Tag"))
    for key in ("Sighting", "ShadowAttribute", "RelatedEvent", "Org"):
        head.pop(key, None)
    return head


def delivered_count(event: dict[str, Any]) -> int:
    """The live attributes of a released event, standalone and in objects."""
    count = sum(1 for a in event.get("Attribute") or [] if not truthy(a.get("deleted")))
    for item in event.get("Object") or []:
        if truthy(item.get("deleted")):
            continue
        count += sum(1 for a in item.get("Attribute") or [] if not truthy(a.get("deleted")))
    return count


def full_event(event: dict[str, Any], row: Event, *, metadata: bool = False) -> dict[str, Any]:
    """A released event (bare) as ``{"Event": {...}}``, built in memory (restSearch, add)."""
    tags = TagShaper()
    out = event_head(event, row, tags)
    if not metadata:
        event_id = out["id"]
        out["Attribute"] = [
            attribute(a, tags, event_id=event_id) for a in event.get("Attribute") or []
        ]
        out["Object"] = [obj(o, tags, event_id) for o in event.get("Object") or []]
    return {"Event": out}


def stream_event(event: dict[str, Any], row: Event) -> Iterator[bytes]:
    """``{"Event": {...}}`` serialised piece by piece: shaping and orjson run a chunk of
    elements at a time, so the whole response never exists as one Python object or one
    bytes buffer (S1; MISP/MISP#10753 is what building it whole costs). The head is built
    now, from the row, so the generator needs nothing from the (closed) session."""
    tags = TagShaper()
    head = event_head(event, row, tags)
    return _stream(head, event, tags)


def _stream(head: dict[str, Any], event: dict[str, Any], tags: TagShaper) -> Iterator[bytes]:
    event_id = head["id"]
    yield b'{"Event":' + orjson.dumps(head)[:-1]  # head always has keys: "id" at least
    for key in ("Attribute", "Object"):
        items = event.get(key) or []
        yield b',"' + key.encode() + b'":['
        for start in range(0, len(items), STREAM_CHUNK):
            chunk = items[start : start + STREAM_CHUNK]
            shaped = (
                [attribute(a, tags, event_id=event_id) for a in chunk]
                if key == "Attribute"
                else [obj(o, tags, event_id) for o in chunk]
            )
            body = orjson.dumps(shaped)[1:-1]
            yield (b"," + body) if start else body
        yield b"]"
    yield b"}}"


def index_row(
    row: Event, *, minimal: bool, sighting_timestamp: int, chr_orgc: dict[str, str] | None
) -> dict[str, Any]:
    """One row of ``/events/index``: minimal as the sync pull reads it (EventsController.php:
    943-962), or the full metadata PyMISP's ``search_index`` turns into MISPEvents.

    ``chr_orgc`` replaces the creator for a TLP:EX:CHR event the caller did not create: the
    event view strips attribution, so the index must not give it away.
    """
    orgc = chr_orgc or {"uuid": row.orgc_uuid, "name": row.orgc_name}
    out: dict[str, Any] = {
        "id": str(row.id),
        "timestamp": str(row.timestamp),
        "sighting_timestamp": str(sighting_timestamp),
        "published": bool(row.published),
        "uuid": row.uuid,
        "orgc_uuid": orgc["uuid"],
    }
    if minimal:
        return out
    out.update(
        {
            "info": row.info,
            "date": row.date or "",
            "distribution": downgrade(row.distribution),
            "sharing_group_id": "0",
            # No ``attribute_count``: the stored count includes attributes the caller may
            # not receive, and the index is decided per event, not per attribute. MISP's
            # pull does not read it (it pulls each event whole, reference/misp-sync.md §2.2)
            # and PyMISP's search_index treats it as optional; the view counts what it sends.
            "publish_timestamp": str(row.publish_timestamp or 0),
            "threat_level_id": "4",
            "analysis": "0",
            "locked": False,
            "protected": False,
            "disable_correlation": False,
            "Orgc": {"uuid": orgc["uuid"], "name": orgc["name"]},
        }
    )
    return out
