"""restSearch exports other than JSON: ``csv``, ``text`` and ``stix2`` (pure, on what a search
released; the search recorded it, so an export is decided and audited as any delivery).

CSV and text follow MISP's exporters (app/Lib/Export/CsvExport.php, TextExport.php): one
line per attribute (those in objects included), MISP's default columns or
``requested_attributes``, event context columns with ``includeContext``, ``headerless``;
text is the distinct values, one per line. STIX 2.1 goes through misp-stix with the TLP 2.0
marking each element goes out with (``hub.intel.stix.event_to_bundle``), one bundle for the
whole answer.
"""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Iterator
from typing import Any

import tlp
from hub.intel.stix import event_to_bundle
from hub.misp_compat.params import truthy
from hub.sharing.stix import bundle_marked, exercise_of

DEFAULT_COLUMNS = (
    "uuid",
    "event_id",
    "category",
    "type",
    "value",
    "comment",
    "to_ids",
    "timestamp",
    "object_relation",
    "attribute_tag",
)
OBJECT_COLUMNS = ("object_uuid", "object_name", "object_meta-category")
CONTEXT_COLUMNS = (
    "event_info",
    "event_member_org",
    "event_source_org",
    "event_distribution",
    "event_threat_level_id",
    "event_analysis",
    "event_date",
    "event_tag",
    "event_timestamp",
)
_TLP_PREFIX = "tlp:"


def _field(value: Any) -> str:
    """MISP's CSV field: booleans 1/0, numbers bare, text quoted with quotes doubled."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return '""'
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if _numeric(text):
        return text
    return '"' + text.replace('"', '""') + '"'


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text != ""


def _columns(body: dict[str, Any]) -> list[str]:
    requested = body.get("requested_attributes")
    if isinstance(requested, str):
        requested = [c.strip() for c in requested.split(",") if c.strip()]
    columns = list(requested) if requested else list(DEFAULT_COLUMNS)
    obj_requested = body.get("requested_obj_attributes")
    if obj_requested:
        columns += [f"object_{c}" for c in obj_requested]
    elif not requested:
        columns += OBJECT_COLUMNS
    if truthy(body.get("includeContext", False)):
        columns += CONTEXT_COLUMNS
    if truthy(body.get("includeEventUuid", False)) and "event_uuid" not in columns:
        columns.append("event_uuid")
    return columns


def _tags(tags: list[Any] | None) -> str:
    return ",".join(str(t.get("name")) for t in tags or [] if isinstance(t, dict))


def _context(event: dict[str, Any]) -> dict[str, Any]:
    orgc = event.get("Orgc") or {}
    return {
        "event_info": event.get("info"),
        "event_member_org": orgc.get("name", ""),
        "event_source_org": orgc.get("name", ""),
        "event_distribution": event.get("distribution"),
        "event_threat_level_id": event.get("threat_level_id"),
        "event_analysis": event.get("analysis"),
        "event_date": event.get("date"),
        "event_tag": _tags(event.get("Tag")),
        "event_timestamp": event.get("timestamp"),
        "event_uuid": event.get("uuid"),
    }


def _lines_of_events(events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for wrapped in events:
        event = wrapped.get("Event", wrapped)
        context = _context(event)
        for attr in event.get("Attribute") or []:
            yield {**attr, **context, "attribute_tag": _tags(attr.get("Tag"))}
        for obj in event.get("Object") or []:
            extra = {
                "object_uuid": obj.get("uuid"),
                "object_name": obj.get("name"),
                "object_meta-category": obj.get("meta-category"),
            }
            for attr in obj.get("Attribute") or []:
                yield {**attr, **context, **extra, "attribute_tag": _tags(attr.get("Tag"))}


def _lines_of_attributes(attributes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for attr in attributes:
        line = {**attr, "attribute_tag": _tags(attr.get("Tag"))}
        event = attr.get("Event")
        if isinstance(event, dict):
            line.update(_context(event))
        line.setdefault("event_uuid", attr.get("event_uuid"))
        yield line


def _lines(
    events: list[dict[str, Any]] | None, attributes: list[dict[str, Any]] | None
) -> Iterator[dict[str, Any]]:
    if events is not None:
        return _lines_of_events(events)
    return _lines_of_attributes(attributes or [])


def to_csv(
    *,
    events: list[dict[str, Any]] | None = None,
    attributes: list[dict[str, Any]] | None = None,
    body: dict[str, Any],
) -> str:
    """MISP's CSV of the attributes of released events, or of released attributes."""
    columns = _columns(body)
    lines = (
        _lines_of_events(events) if events is not None else _lines_of_attributes(attributes or [])
    )
    out = []
    if not truthy(body.get("headerless", False)):
        out.append(",".join("date" if c == "timestamp" else c.replace("-", "_") for c in columns))
    for line in lines:
        out.append(",".join(_field(line.get(c, "")) for c in columns))
    return "\n".join(out) + "\n"


def to_text(
    *, events: list[dict[str, Any]] | None = None, attributes: list[dict[str, Any]] | None = None
) -> str:
    """The distinct values, one per line (MISP's text export)."""
    lines = (
        _lines_of_events(events) if events is not None else _lines_of_attributes(attributes or [])
    )
    values = dict.fromkeys(str(line.get("value")) for line in lines)
    return "\n".join(values) + "\n"


def to_stix2(
    *, events: list[dict[str, Any]] | None = None, attributes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """One STIX 2.1 bundle of the released events (or of the released attributes grouped by
    event), every object with the TLP 2.0 marking it goes out with."""
    if events is None:
        events = _events_of(attributes or [])
    objects: list[dict[str, Any]] = []
    seen: set[str] = set()
    for wrapped in events:
        event = _without_sightings(wrapped.get("Event", wrapped))
        bundle = bundle_marked(event_to_bundle({"Event": event}), exercise_of(event))
        for obj in bundle.get("objects", []):
            if obj["id"] in seen:
                continue
            seen.add(obj["id"])
            objects.append(obj)
    markings = [o for o in objects if o.get("type") == "marking-definition"]
    rest = [o for o in objects if o.get("type") != "marking-definition"]
    return {"type": "bundle", "id": f"bundle--{uuid_mod.uuid4()}", "objects": markings + rest}


def _without_sightings(event: dict[str, Any]) -> dict[str, Any]:
    def strip(attrs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in a.items() if k not in ("Sighting", "Event")} for a in attrs]

    out = dict(event)
    out["Attribute"] = strip(event.get("Attribute") or [])
    out["Object"] = [
        {**o, "Attribute": strip(o.get("Attribute") or [])} for o in event.get("Object") or []
    ]
    return out


def _events_of(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Released attributes as minimal events (their event's uuid and title), so misp-stix
    can convert them; the container is marked with the lowest label of what it holds."""
    events: dict[str, dict[str, Any]] = {}
    for attr in attributes:
        uuid = str(attr.get("event_uuid") or "")
        context = attr.get("Event") if isinstance(attr.get("Event"), dict) else {}
        event = events.setdefault(
            uuid,
            {
                "uuid": uuid,
                "info": (context or {}).get("info") or f"Attributes of event {uuid}",
                "date": (context or {}).get("date") or "",
                "timestamp": str(attr.get("timestamp") or "0"),
                "Attribute": [],
                "Object": [],
                "Tag": [],
            },
        )
        event["Attribute"].append(attr)
    for event in events.values():
        labels = [
            t["name"]
            for a in event["Attribute"]
            for t in a.get("Tag") or []
            if str(t.get("name", "")).lower().startswith(_TLP_PREFIX)
            and ":ex:" not in str(t.get("name", "")).lower()
        ]
        event["Tag"] = [{"name": _lowest(labels)}] if labels else []
    return list(events.values())


def _lowest(labels: list[str]) -> str:
    return min((tlp.parse_label(n) for n in labels), key=lambda label: label.rank).tag
