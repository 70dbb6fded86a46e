"""MISP's update rule on plain dicts: newer wins, per element, and an edit is a merge.

An element (attribute, object, object reference, report) that exists is replaced only when
the incoming one has a strictly newer timestamp; elements missing from the edit stay; tags
are only ever added (MISP does not propagate tag removal, so a TLP label can be raised by an
update but never lowered by omission). Soft deletes are just newer versions with
``deleted: true``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_CHILD_LISTS = ("Attribute", "Object", "EventReport")


@dataclass(slots=True)
class Changes:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    # uuids of the elements (attributes, objects, object attributes, reports) this version
    # added or replaced: what its recipients may see change
    changed: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
        }


def _tag_union(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {t["name"].lower() for t in new}
    return list(new) + [t for t in old if t["name"].lower() not in seen]


def _newer(incoming: dict[str, Any], current: dict[str, Any]) -> bool:
    return int(incoming.get("timestamp") or 0) > int(current.get("timestamp") or 0)


def _merge_list(
    current: list[dict[str, Any]],
    incoming: list[dict[str, Any]],
    changes: Changes,
    merge_one: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
) -> list[dict[str, Any]]:
    by_uuid = {item["uuid"]: i for i, item in enumerate(current)}
    out = list(current)
    for item in incoming:
        index = by_uuid.get(item["uuid"])
        if index is None:
            out.append(item)
            changes.new += 1
            changes.changed.add(item["uuid"])
            changes.changed.update(a["uuid"] for a in item.get("Attribute") or ())
        elif _newer(item, out[index]):
            if item.get("deleted") and not out[index].get("deleted"):
                changes.deleted.append(item["uuid"])
            out[index] = merge_one(out[index], item)
            changes.updated += 1
            changes.changed.add(item["uuid"])
        else:
            changes.unchanged += 1
    return out


def _merge_attribute(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    merged = {**old, **new}
    merged["Tag"] = _tag_union(old.get("Tag", []), new.get("Tag", []))
    return merged


def merge_event(
    current: dict[str, Any], incoming: dict[str, Any]
) -> tuple[dict[str, Any], Changes]:
    """The event after applying ``incoming`` (newer, already normalised) to ``current``."""
    changes = Changes()
    merged = {**current, **{k: v for k, v in incoming.items() if k not in _CHILD_LISTS}}
    merged["Tag"] = _tag_union(current.get("Tag", []), incoming.get("Tag", []))
    merged["Attribute"] = _merge_list(
        current.get("Attribute", []), incoming.get("Attribute", []), changes, _merge_attribute
    )

    def merge_object(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        obj = {**old, **new}
        inner = Changes()
        obj["Attribute"] = _merge_list(
            old.get("Attribute", []), new.get("Attribute", []), inner, _merge_attribute
        )
        obj["ObjectReference"] = _merge_list(
            old.get("ObjectReference", []),
            new.get("ObjectReference", []),
            inner,
            lambda a, b: {**a, **b},
        )
        changes.deleted.extend(inner.deleted)
        changes.changed.update(inner.changed)
        return obj

    merged["Object"] = _merge_list(
        current.get("Object", []), incoming.get("Object", []), changes, merge_object
    )
    merged["EventReport"] = _merge_list(
        current.get("EventReport", []),
        incoming.get("EventReport", []),
        changes,
        lambda a, b: {**a, **b},
    )
    if not merged["EventReport"]:
        merged.pop("EventReport")
    return merged, changes
