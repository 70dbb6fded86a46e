"""Observations: what an event version says about addresses, networks and domains a partner's
constituency holds, each with the label and addressing it goes out with."""

from __future__ import annotations

from typing import Any

import orjson

import tlp
from hub.notifications import matching
from hub.sharing.records import addressing_of


def _members(element: dict[str, Any]) -> str | None:
    group = element.get("SharingGroup")
    if not isinstance(group, dict):
        return None
    members = {
        str(o["Organisation"]["uuid"])
        for o in group.get("SharingGroupOrg") or []
        if isinstance(o, dict) and (o.get("Organisation") or {}).get("uuid")
    }
    if (group.get("Organisation") or {}).get("uuid"):
        members.add(str(group["Organisation"]["uuid"]))
    return orjson.dumps(sorted(members)).decode()


def _addressing(*elements: dict[str, Any]) -> tlp.Addressing:
    addressing: tlp.Addressing | None = None
    for element in elements:
        dist = int(element.get("distribution", 5) or 0)
        if dist == 5 and addressing is not None:
            continue
        mine = addressing_of(dist if dist != 5 else 1, _members(element))
        addressing = mine if addressing is None else addressing.narrow(mine)
    assert addressing is not None
    return addressing


def _stored(addressing: tlp.Addressing) -> tuple[int, str | None]:
    members = addressing.members
    return addressing.distribution, (
        orjson.dumps(sorted(members)).decode() if members is not None else None
    )


def observations_of(
    event: dict[str, Any], labels: dict[str, Any], *, event_version_id: int, version: int
) -> list[dict[str, Any]]:
    """Rows for every matchable value in a version's snapshot (deleted elements skipped)."""
    rows: list[dict[str, Any]] = []
    source = (event.get("Orgc") or {}).get("uuid", "")
    event_kind = matching.kind_of(event) or "target"
    ranks = {k: tlp.parse_label(v).rank for k, v in labels["attributes"].items() if v}
    obj_ranks = {k: tlp.parse_label(v).rank for k, v in labels["objects"].items() if v}
    event_rank = tlp.parse_label(labels["event"]).rank

    def add(attr: dict[str, Any], obj: dict[str, Any] | None) -> None:
        if attr.get("deleted") or (obj is not None and obj.get("deleted")):
            return
        values = matching.values_of(str(attr.get("type")), str(attr.get("value", "")))
        if not values:
            return
        rank = ranks.get(attr["uuid"], event_rank)
        chain = [event] + ([obj] if obj else []) + [attr]
        if obj is not None:
            rank = max(rank, obj_ranks.get(obj["uuid"], rank))
        dist, members = _stored(_addressing(*chain))
        kind = matching.kind_of(attr, obj) or event_kind
        for v in values:
            rows.append(
                {
                    "event_version_id": event_version_id,
                    "event_uuid": event["uuid"],
                    "event_version": version,
                    "attribute_uuid": attr["uuid"],
                    "attribute_type": str(attr["type"]),
                    "field": v.field,
                    "value": v.value,
                    "kind": kind,
                    "tlp_rank": rank,
                    "distribution": dist,
                    "sg_members": members,
                    "source_uuid": source,
                }
            )

    for attr in event.get("Attribute", []):
        add(attr, None)
    for obj in event.get("Object", []):
        for attr in obj.get("Attribute", []):
            add(attr, obj)
    dist, members = _stored(_addressing(event))
    for sector in matching.sectors_of(event):
        rows.append(
            {
                "event_version_id": event_version_id,
                "event_uuid": event["uuid"],
                "event_version": version,
                "attribute_uuid": None,
                "attribute_type": "cwn:sector",
                "field": "sector",
                "value": sector,
                "kind": event_kind,
                "tlp_rank": event_rank,
                "distribution": dist,
                "sg_members": members,
                "source_uuid": source,
            }
        )
    return rows
