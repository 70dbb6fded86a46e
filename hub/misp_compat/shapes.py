"""MISP's JSON shapes on the way out (pure, on dicts).

MISP sends integers as strings and booleans as booleans (``JsonTool::convertIntegersToStrings``;
some consumers compare ``=== '2'``, Sighting.php:1291), and every tag with its ``local`` flag:
the pulling server reads ``Tag[].local`` on every element and strips local tags
(Server.php:304-436). The hub never serves ``protected: true`` (its pull would demand a PGP
signature, Server.php:501-506).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Attribute, Event, EventObject, EventReport
from hub.sharing.ids import IdScope
from hub.sharing.view import EventSummary

_ELEMENT_DROP = ("ShadowAttribute", "RelatedAttribute")
# Fields MISP always sends on an attribute or object, with its defaults: PyMISP marks an
# element edited (and drops its timestamp, so the edit is applied) only when a field it
# changes was there when it read the element.
_ELEMENT_DEFAULTS = (
    ("comment", ""),
    ("deleted", False),
    ("disable_correlation", False),
    ("first_seen", None),
    ("last_seen", None),
)
STREAM_CHUNK = 1000


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


@dataclass(slots=True)
class Numbering:
    """The numeric ids one caller sees for one event's elements (``hub.sharing.ids``)."""

    ids: IdScope
    event_id: str
    attributes: dict[str, int] = field(default_factory=dict)  # uuid → row id
    objects: dict[str, int] = field(default_factory=dict)
    reports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, ids: IdScope, row: Event) -> Numbering:
        """Row ids of the event's attributes, objects and reports (three statements)."""
        attributes = dict(
            session.execute(
                select(Attribute.uuid, Attribute.id).where(Attribute.event_id == row.id)
            ).all()  # type: ignore[arg-type]
        )
        objects = dict(
            session.execute(
                select(EventObject.uuid, EventObject.id).where(EventObject.event_id == row.id)
            ).all()  # type: ignore[arg-type]
        )
        reports = dict(
            session.execute(
                select(EventReport.uuid, EventReport.id).where(EventReport.event_id == row.id)
            ).all()  # type: ignore[arg-type]
        )
        return cls(ids, ids.public_str("event", row.id), attributes, objects, reports)

    def attribute(self, uuid: str) -> str:
        row_id = self.attributes.get(uuid)
        return self.ids.public_str("attribute", row_id) if row_id else "0"

    def report(self, uuid: str) -> str:
        row_id = self.reports.get(uuid)
        return self.ids.public_str("report", row_id) if row_id else "0"

    def object(self, uuid: str) -> str:
        row_id = self.objects.get(uuid)
        return self.ids.public_str("object", row_id) if row_id else "0"


def defaults(element: dict[str, Any]) -> dict[str, Any]:
    """MISP's default fields on an attribute or object (``_ELEMENT_DEFAULTS``)."""
    for key, value in _ELEMENT_DEFAULTS:
        if key not in element:
            element[key] = value
    return element


def attribute(
    attr: dict[str, Any], tags: TagShaper, *, sightings: bool = True, **extra: Any
) -> dict[str, Any]:
    """One released attribute (a dict the release path made for this response) in MISP shape;
    ``sightings`` False leaves its sightings out (``noSightings:1``)."""
    attr["Tag"] = tags(attr.get("Tag"))
    for key in _ELEMENT_DROP:
        attr.pop(key, None)
    defaults(attr)
    attr.setdefault("object_relation", None)
    if not sightings:
        attr.pop("Sighting", None)
    if str(attr.get("distribution")) != "4":
        attr.pop("SharingGroup", None)
        attr["sharing_group_id"] = "0"
    attr.update(extra)
    return attr


def obj(
    item: dict[str, Any], tags: TagShaper, numbering: Numbering, *, sightings: bool = True
) -> dict[str, Any]:
    object_id = numbering.object(item["uuid"])
    item["Attribute"] = [
        attribute(
            a,
            tags,
            sightings=sightings,
            id=numbering.attribute(a["uuid"]),
            event_id=numbering.event_id,
            object_id=object_id,
        )
        for a in item.get("Attribute") or []
    ]
    if "Tag" in item:
        item["Tag"] = tags(item["Tag"])
    defaults(item)
    if str(item.get("distribution")) != "4":
        item.pop("SharingGroup", None)
        item["sharing_group_id"] = "0"
    item["id"] = object_id
    item["event_id"] = numbering.event_id
    for ref in item.get("ObjectReference") or []:
        if isinstance(ref, dict):
            ref["object_id"] = object_id
            ref["event_id"] = numbering.event_id
    return item


def event_head(
    event: dict[str, Any], row: Event, tags: TagShaper, numbering: Numbering
) -> dict[str, Any]:
    """The event's own fields (no Attribute/Object) as MISP sends them; ``timestamp`` and
    ``attribute_count`` are what the release path computed for this caller."""
    head = {k: v for k, v in event.items() if k not in ("Attribute", "Object")}
    head["id"] = numbering.event_id
    head["protected"] = False
    head["locked"] = False
    head.setdefault("date", row.date or "")
    head.setdefault("threat_level_id", "4")
    head.setdefault("analysis", "0")
    head.setdefault("publish_timestamp", str(row.publish_timestamp or 0))
    head.setdefault("sharing_group_id", "0")
    head.setdefault("extends_uuid", "")
    head.setdefault("disable_correlation", False)
    head.setdefault("proposal_email_lock", False)
    head["Tag"] = tags(event.get("Tag"))
    for key in ("Sighting", "ShadowAttribute", "RelatedEvent", "Org"):
        head.pop(key, None)
    for report in head.get("EventReport") or []:
        if isinstance(report, dict):
            report["event_id"] = numbering.event_id
            report["id"] = numbering.report(str(report.get("uuid")))
    return head


def full_event(
    event: dict[str, Any],
    row: Event,
    numbering: Numbering,
    *,
    metadata: bool = False,
    sightings: bool = True,
) -> dict[str, Any]:
    """A released event (bare) as ``{"Event": {...}}``, built in memory (restSearch, add)."""
    tags = TagShaper()
    out = event_head(event, row, tags, numbering)
    if not metadata:
        out["Attribute"] = [
            attribute(
                a,
                tags,
                sightings=sightings,
                id=numbering.attribute(a["uuid"]),
                event_id=out["id"],
                object_id="0",
            )
            for a in event.get("Attribute") or []
        ]
        out["Object"] = [
            obj(o, tags, numbering, sightings=sightings) for o in event.get("Object") or []
        ]
    else:
        out.pop("EventReport", None)
    return {"Event": out}


def stream_event(
    event: dict[str, Any], row: Event, numbering: Numbering, *, sightings: bool = True
) -> Iterator[bytes]:
    """``{"Event": {...}}`` serialised piece by piece: shaping and orjson run a chunk of
    elements at a time, so the whole response never exists as one Python object or one
    bytes buffer (S1; MISP/MISP#10753 is what building it whole costs). The head and the
    numbering are made now, so the generator needs nothing from the (closed) session."""
    tags = TagShaper()
    head = event_head(event, row, tags, numbering)
    return _stream(head, event, tags, numbering, sightings)


def _stream(
    head: dict[str, Any],
    event: dict[str, Any],
    tags: TagShaper,
    numbering: Numbering,
    sightings: bool,
) -> Iterator[bytes]:
    event_id = head["id"]
    yield b'{"Event":' + orjson.dumps(head)[:-1]  # head always has keys: "id" at least
    for key in ("Attribute", "Object"):
        items = event.get(key) or []
        yield b',"' + key.encode() + b'":['
        for start in range(0, len(items), STREAM_CHUNK):
            chunk = items[start : start + STREAM_CHUNK]
            shaped = (
                [
                    attribute(
                        a,
                        tags,
                        sightings=sightings,
                        id=numbering.attribute(a["uuid"]),
                        event_id=event_id,
                        object_id="0",
                    )
                    for a in chunk
                ]
                if key == "Attribute"
                else [obj(o, tags, numbering, sightings=sightings) for o in chunk]
            )
            body = orjson.dumps(shaped)[1:-1]
            yield (b"," + body) if start else body
        yield b"]"
    yield b"}}"


def index_row(
    summary: EventSummary,
    *,
    event_id: str,
    minimal: bool,
    sighting_timestamp: int,
    chr_orgc: dict[str, str] | None,
) -> dict[str, Any]:
    """One row of ``/events/index``: minimal as the sync pull reads it (EventsController.php:
    943-962), or the full metadata PyMISP's ``search_index`` turns into MISPEvents, over
    what the caller receives (its timestamp, count and tags).

    ``chr_orgc`` replaces the creator for a TLP:EX:CHR event the caller did not create: the
    event view strips attribution, so the index must not give it away.
    """
    row = summary.row
    orgc = chr_orgc or {"uuid": row.orgc_uuid, "name": row.orgc_name}
    out: dict[str, Any] = {
        "id": event_id,
        "timestamp": str(summary.timestamp),
        "sighting_timestamp": str(sighting_timestamp),
        "published": summary.published,
        "uuid": row.uuid,
        "orgc_uuid": orgc["uuid"],
    }
    if minimal:
        return out
    out.update(
        {
            "info": row.info,
            "date": row.date or "",
            "distribution": str(row.distribution),
            "sharing_group_id": "0",
            "attribute_count": str(summary.attribute_count),
            "publish_timestamp": str(summary.publish_timestamp),
            "threat_level_id": "4",
            "analysis": "0",
            "locked": False,
            "protected": False,
            "disable_correlation": False,
            "Orgc": {"uuid": orgc["uuid"], "name": orgc["name"]},
            "Tag": [{"name": n, "local": False} for n in summary.tags],
        }
    )
    return out
