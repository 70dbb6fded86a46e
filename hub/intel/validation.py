"""Validating and normalising a MISP event as MISP and PyMISP produce it (pure, on dicts).

Normalisation, so that stored events look as MISP would send them: numbers become strings
(``"distribution": "3"``), booleans accept ``0/1``/``"0"/"1"``, a missing uuid or timestamp is
generated (as MISP does), a missing event distribution is the hub's default
(``HUB_DEFAULT_DISTRIBUTION``, 1 = the community, as MISP's default) and a missing attribute
distribution is 5 (inherit), a missing category is the type's default. Local numeric ids are
dropped: the hub identifies everything by uuid.

An element that comes without a timestamp gets "now" and is named in ``stamped``: the merge
applies it whatever the stored one's timestamp (PyMISP drops the timestamp of every element
it changed, and two edits within one second must not lose the second).
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import tlp
from hub.intel.misp_fields import (
    ATTRIBUTE_FIELDS,
    EVENT_FIELDS,
    MAX_VALUE,
    OBJECT_FIELDS,
    ORG_FIELDS,
    REFERENCE_FIELDS,
    REPORT_FIELDS,
    as_bool,
    as_int,
    as_uuid,
    check_galaxies,
    check_sharing_group,
    check_sightings,
    fail,
    is_day,
    keep_fields,
    list_of,
    own_label,
    tags_of,
)

MAX_INFO = 65_535
_ID_KEYS = ("id", "event_id", "object_id", "org_id", "orgc_id", "sharing_group_id", "user_id")


@lru_cache(maxsize=1)
def describe_types() -> dict[str, Any]:
    """MISP's attribute types and categories, as PyMISP ships them (describeTypes.json)."""
    import pymisp

    path = Path(pymisp.__file__).parent / "data" / "describeTypes.json"
    return json.loads(path.read_text())["result"]  # type: ignore[no-any-return]


def _common(
    element: dict[str, Any],
    path: str,
    *,
    now: int,
    default_distribution: int,
    stamped: set[str] | None = None,
) -> None:
    for key in _ID_KEYS:
        element.pop(key, None)
    element["uuid"] = as_uuid(element.get("uuid"), f"{path}.uuid")
    stamp = element.get("timestamp")
    if stamp in (None, "", 0, "0"):
        element["timestamp"] = str(now)
        if stamped is not None:
            stamped.add(element["uuid"])
    elif not (isinstance(stamp, str) and stamp.isascii() and stamp.isdigit() and len(stamp) < 19):
        # the common string (ASCII digits, 64 bits) is kept as it is
        element["timestamp"] = str(as_int(stamp, f"{path}.timestamp", low=0))
    dist = element.get("distribution")
    if dist in (None, ""):
        distribution = default_distribution
    else:
        distribution = as_int(dist, f"{path}.distribution", low=0, high=5)
    if not (isinstance(dist, str) and len(dist) == 1):
        element["distribution"] = str(distribution)
    check_sharing_group(element, distribution, path)
    if "deleted" in element:
        element["deleted"] = as_bool(element["deleted"], f"{path}.deleted")
    if element.get("comment") is not None and not isinstance(element["comment"], str):
        raise fail(f"{path}.comment", "must be text")


def _attribute(
    attr: Any,
    path: str,
    *,
    now: int,
    in_object: bool,
    stamped: set[str] | None = None,
    ceiling: tlp.Tlp | None = None,
) -> dict[str, Any]:
    if not isinstance(attr, dict):
        raise fail(path, "an attribute must be an object")
    types = describe_types()
    kind = attr.get("type")
    if not isinstance(kind, str) or kind not in types["sane_defaults"]:
        raise fail(f"{path}.type", f"unknown attribute type {kind!r}")
    value = attr.get("value")
    if isinstance(value, bool):  # MISP stores boolean values as 1 and 0
        value = "1" if value else "0"
    if not isinstance(value, (str, int, float)):
        raise fail(f"{path}.value", "an attribute needs a value (text)")
    value = str(value)
    if not value.strip() or len(value) > MAX_VALUE:
        raise fail(f"{path}.value", "must be non-empty text of at most 131072 characters")
    attr["value"] = value
    category = attr.get("category") or types["sane_defaults"][kind]["default_category"]
    if category not in types["categories"]:
        raise fail(f"{path}.category", f"unknown category {category!r}")
    attr["category"] = category
    attr["to_ids"] = as_bool(
        attr.get("to_ids", types["sane_defaults"][kind]["to_ids"]), f"{path}.to_ids"
    )
    _common(attr, path, now=now, default_distribution=5, stamped=stamped)
    attr["Tag"] = tags_of(attr, path)
    if in_object and not isinstance(attr.get("object_relation"), str):
        raise fail(f"{path}.object_relation", "an object's attribute needs its relation")
    for key in ("ShadowAttribute", "RelatedAttribute", "Sighting"):
        if key in attr and not isinstance(attr[key], list):
            raise fail(f"{path}.{key}", "must be a list")
    check_sightings(attr, path, ceiling)
    check_galaxies(attr, path)
    keep_fields(attr, ATTRIBUTE_FIELDS)
    return attr


def normalise_event(
    payload: Any,
    *,
    now: int | None = None,
    default_distribution: int = 1,
    stamped: set[str] | None = None,
) -> dict[str, Any]:
    """A validated, normalised bare event; InvalidField naming the first wrong field.

    The payload is normalised in place (no copy of 10^5 attribute dicts): pass a freshly
    parsed one. ``stamped`` collects the uuids of the elements that came without a timestamp
    (see the module doc).
    """
    now = now or int(time.time())
    if isinstance(payload, dict) and isinstance(payload.get("Event"), dict):
        payload = payload["Event"]
    if not isinstance(payload, dict):
        raise fail("Event", "an event must be a JSON object")
    event = payload  # normalised in place: the caller hands over a freshly parsed payload
    path = "Event"
    _event_fields(event, path, now=now, default_distribution=default_distribution)
    event["Tag"] = tags_of(event, path)
    ceiling = own_label(event)
    event["Attribute"] = [
        _attribute(
            a, f"{path}.Attribute.{i}", now=now, in_object=False, stamped=stamped, ceiling=ceiling
        )
        for i, a in enumerate(list_of(event, "Attribute", path))
    ]
    event["Object"] = [
        _object(obj, f"{path}.Object.{i}", now=now, stamped=stamped, ceiling=ceiling)
        for i, obj in enumerate(list_of(event, "Object", path))
    ]
    if "EventReport" in event:
        event["EventReport"] = [
            _report(r, f"{path}.EventReport.{i}", now=now, stamped=stamped, ceiling=ceiling)
            for i, r in enumerate(list_of(event, "EventReport", path))
        ]
    check_galaxies(event, path)
    _no_duplicate_uuids(event)
    keep_fields(event, EVENT_FIELDS)
    if isinstance(event.get("Orgc"), dict):
        keep_fields(event["Orgc"], ORG_FIELDS)
    return event


def _event_fields(event: dict[str, Any], path: str, *, now: int, default_distribution: int) -> None:
    """The event's own fields (not its elements): its info, uuid, timestamp, distribution,
    flags, levels and date."""
    info = event.get("info")
    if not isinstance(info, str) or not info.strip():
        raise fail(f"{path}.info", "an event needs an info (its title)")
    if len(info) > MAX_INFO:
        raise fail(f"{path}.info", "is longer than 65535 characters")
    _common(event, path, now=now, default_distribution=default_distribution)
    if event["distribution"] == "5":
        raise fail(f"{path}.distribution", "5 (inherit) is for attributes and objects only")
    event["published"] = as_bool(event.get("published", False), f"{path}.published")
    for key in ("threat_level_id", "analysis"):
        if key in event:
            high = 4 if key == "threat_level_id" else 2
            event[key] = str(
                as_int(event[key], f"{path}.{key}", low=0 if key == "analysis" else 1, high=high)
            )
    if "deleted" in event:  # set by the event's deletion through /misp (hub.misp_compat)
        event["deleted"] = as_bool(event["deleted"], f"{path}.deleted")
    if "publish_timestamp" in event:
        event["publish_timestamp"] = str(
            as_int(event["publish_timestamp"], f"{path}.publish_timestamp", low=0)
        )
    date = event.get("date")
    if date is not None and not is_day(date):
        raise fail(f"{path}.date", "must be a calendar day, YYYY-MM-DD")


def _object(
    obj: Any, where: str, *, now: int, stamped: set[str] | None, ceiling: tlp.Tlp | None
) -> dict[str, Any]:
    """A MISP object: a name, its attributes and its references."""
    if not isinstance(obj, dict):
        raise fail(where, "an object must be a JSON object")
    if not isinstance(obj.get("name"), str) or not obj["name"]:
        raise fail(f"{where}.name", "an object needs a name")
    _common(obj, where, now=now, default_distribution=5, stamped=stamped)
    obj["Attribute"] = [
        _attribute(
            a,
            f"{where}.Attribute.{j}",
            now=now,
            in_object=True,
            stamped=stamped,
            ceiling=ceiling,
        )
        for j, a in enumerate(list_of(obj, "Attribute", where))
    ]
    obj["ObjectReference"] = [
        _reference(ref, f"{where}.ObjectReference.{j}", obj["uuid"], now, stamped, ceiling)
        for j, ref in enumerate(list_of(obj, "ObjectReference", where))
    ]
    keep_fields(obj, OBJECT_FIELDS)
    return obj


def _reference(
    ref: Any,
    where: str,
    object_uuid: str,
    now: int,
    stamped: set[str] | None,
    ceiling: tlp.Tlp | None,
) -> dict[str, Any]:
    """An object reference: which element its object refers to (by uuid)."""
    if not isinstance(ref, dict) or not ref.get("referenced_uuid"):
        raise fail(where, "a reference needs referenced_uuid")
    for key in ("id", "object_id", "event_id", "referenced_id"):
        ref.pop(key, None)
    ref["uuid"] = as_uuid(ref.get("uuid"), f"{where}.uuid")
    ref["referenced_uuid"] = as_uuid(ref["referenced_uuid"], f"{where}.referenced_uuid")
    ref["object_uuid"] = object_uuid
    if ref.get("timestamp") in (None, "", 0, "0") and stamped is not None:
        stamped.add(ref["uuid"])
    ref["timestamp"] = str(as_int(ref.get("timestamp") or now, f"{where}.timestamp", low=0))
    keep_fields(ref, REFERENCE_FIELDS, where, ceiling=ceiling)
    return ref


def _report(
    report: Any, path: str, *, now: int, stamped: set[str] | None, ceiling: tlp.Tlp | None
) -> dict[str, Any]:
    """An event report (MISP's markdown report): a name, its content, a uuid and a timestamp."""
    if not isinstance(report, dict):
        raise fail(path, "an event report must be an object")
    if not isinstance(report.get("name"), str) or not report["name"].strip():
        raise fail(f"{path}.name", "an event report needs a name")
    content = report.get("content")
    if content is None:
        report["content"] = ""
    elif not isinstance(content, str) or len(content) > MAX_VALUE * 8:
        raise fail(f"{path}.content", "must be text of at most 1048576 characters")
    _common(report, path, now=now, default_distribution=5, stamped=stamped)
    keep_fields(report, REPORT_FIELDS, path, ceiling=ceiling)
    return report


def _no_duplicate_uuids(event: dict[str, Any]) -> None:
    seen: dict[str, str] = {event["uuid"]: "Event"}

    def check(uuid: str, where: str) -> None:
        if uuid in seen:
            raise fail(f"{where}.uuid", f"uuid {uuid} is used twice in this event ({seen[uuid]})")
        seen[uuid] = where

    for i, attr in enumerate(event["Attribute"]):
        check(attr["uuid"], f"Event.Attribute.{i}")
    for i, obj in enumerate(event["Object"]):
        check(obj["uuid"], f"Event.Object.{i}")
        for j, attr in enumerate(obj["Attribute"]):
            check(attr["uuid"], f"Event.Object.{i}.Attribute.{j}")
