"""MISP's update rule on plain dicts: newer wins, per element, and an edit is a merge.

An element (attribute, object, object reference, report) that exists is replaced only when
the incoming one has a strictly newer timestamp, or came without one (``fresh``: stamped
"now" by normalisation, so always applied, even within the second of the stored version, as
MISP applies an edit without a timestamp); elements missing from the edit stay; tags are
only ever added (MISP does not propagate tag removal, so a TLP label can be raised by an
update but never lowered by omission), except on the elements named in ``exact_tags``,
whose tag lists the edit gives whole (an explicit removal through ``/misp``, which checks
that no TLP label is lowered). Soft deletes are just newer versions with ``deleted: true``.
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


@dataclass(frozen=True, slots=True)
class _Rules:
    fresh: frozenset[str] | set[str]
    exact_tags: frozenset[str] | set[str]

    def newer(self, incoming: dict[str, Any], current: dict[str, Any]) -> bool:
        if incoming["uuid"] in self.fresh:
            return True
        if int(incoming.get("timestamp") or 0) > int(current.get("timestamp") or 0):
            return True
        # An object is edited when any of its own elements came without a timestamp.
        return any(
            isinstance(child, dict) and child.get("uuid") in self.fresh
            for key in ("Attribute", "ObjectReference")
            for child in incoming.get(key) or ()
        )

    def tags(
        self, uuid: str, old: list[dict[str, Any]], new: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return list(new) if uuid in self.exact_tags else _tag_union(old, new)


def _merge_list(
    current: list[dict[str, Any]],
    incoming: list[dict[str, Any]],
    changes: Changes,
    merge_one: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
    rules: _Rules,
) -> list[dict[str, Any]]:
    by_uuid = {item["uuid"]: i for i, item in enumerate(current)}
    out = list(current)
    for item in incoming:
        index = by_uuid.get(item["uuid"])
        if index is None:
            by_uuid[item["uuid"]] = len(out)
            out.append(item)
            changes.new += 1
            changes.changed.add(item["uuid"])
            changes.changed.update(a["uuid"] for a in item.get("Attribute") or ())
        elif rules.newer(item, out[index]):
            if item.get("deleted") and not out[index].get("deleted"):
                changes.deleted.append(item["uuid"])
            out[index] = merge_one(out[index], item)
            changes.updated += 1
            changes.changed.add(item["uuid"])
        else:
            changes.unchanged += 1
    return out


def merge_event(
    current: dict[str, Any],
    incoming: dict[str, Any],
    *,
    fresh: frozenset[str] | set[str] = frozenset(),
    exact_tags: frozenset[str] | set[str] = frozenset(),
) -> tuple[dict[str, Any], Changes]:
    """The event after applying ``incoming`` (newer, already normalised) to ``current``;
    ``fresh``: the elements that came without a timestamp; ``exact_tags``: the elements
    (the event's uuid included) whose tags ``incoming`` gives whole (module doc)."""
    rules = _Rules(fresh, exact_tags)
    changes = Changes()
    merged = {**current, **{k: v for k, v in incoming.items() if k not in _CHILD_LISTS}}
    merged["Tag"] = rules.tags(current["uuid"], current.get("Tag", []), incoming.get("Tag", []))

    def merge_attribute(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        out = {**old, **new}
        out["Tag"] = rules.tags(old["uuid"], old.get("Tag", []), new.get("Tag", []))
        return out

    merged["Attribute"] = _merge_list(
        current.get("Attribute", []), incoming.get("Attribute", []), changes, merge_attribute, rules
    )

    def merge_object(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        obj = {**old, **new}
        inner = Changes()
        obj["Attribute"] = _merge_list(
            old.get("Attribute", []), new.get("Attribute", []), inner, merge_attribute, rules
        )
        obj["ObjectReference"] = _merge_list(
            old.get("ObjectReference", []),
            new.get("ObjectReference", []),
            inner,
            lambda a, b: {**a, **b},
            rules,
        )
        changes.deleted.extend(inner.deleted)
        changes.changed.update(inner.changed)
        return obj

    merged["Object"] = _merge_list(
        current.get("Object", []), incoming.get("Object", []), changes, merge_object, rules
    )
    merged["EventReport"] = _merge_list(
        current.get("EventReport", []),
        incoming.get("EventReport", []),
        changes,
        lambda a, b: {**a, **b},
        rules,
    )
    if not merged["EventReport"]:
        merged.pop("EventReport")
    return merged, changes
