"""Pure grouping of a page of STIX objects into bundles the hub ingests one by one."""

from __future__ import annotations

from typing import Any

_CONTAINERS = ("report", "grouping")
SHARED_TYPES = ("marking-definition", "identity", "extension-definition")


def split_by_container(objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """One group per report or grouping (with the objects it refers to that are on the page),
    one more for the rest; markings and identities go with every group.

    A MISP event travels as one report (misp-stix), so it arrives as one event again.
    """
    shared = [o for o in objects if o.get("type") in SHARED_TYPES]
    content = [o for o in objects if o.get("type") not in SHARED_TYPES]
    by_id = {o["id"]: o for o in content}
    taken: set[str] = set()
    groups: list[list[dict[str, Any]]] = []
    for container in (o for o in content if o.get("type") in _CONTAINERS):
        members = [container]
        taken.add(container["id"])
        for ref in container.get("object_refs") or []:
            if ref in by_id and ref not in taken:
                members.append(by_id[ref])
                taken.add(ref)
        groups.append(shared + members)
    rest = [o for o in content if o["id"] not in taken]
    if rest:
        groups.append(shared + rest)
    return groups
