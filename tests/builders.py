"""Builders of test inputs shared by every test package: MISP events and attributes with
the markings, distributions and uuids a test asks for (import them from here, not from a
conftest)."""

from __future__ import annotations

import itertools
import uuid as uuid_mod
from typing import Any

_stamps = itertools.count(1_700_000_000)


def attr(
    value: str, tlp: str | None = None, *, type: str = "ip-dst", **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uuid": str(uuid_mod.uuid4()),
        "type": type,
        "value": value,
        "category": "Network activity",
        "to_ids": True,
        **extra,
    }
    if tlp:
        out["Tag"] = [{"name": f"tlp:{tlp}"}]
    return out


def event(
    info: str = "test event",
    *,
    tlp: str | None = "green",
    distribution: int = 1,
    attributes: list[dict[str, Any]] | None = None,
    members: list[str] | None = None,
    uuid: str | None = None,
    timestamp: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "uuid": uuid or str(uuid_mod.uuid4()),
        "info": info,
        "date": "2026-11-23",
        "distribution": str(distribution),
        "threat_level_id": "2",
        "analysis": "1",
        "published": True,
        "timestamp": str(timestamp or next(_stamps)),
        "Attribute": attributes if attributes is not None else [attr("198.51.100.1")],
        **extra,
    }
    if tlp:
        ev["Tag"] = [{"name": f"tlp:{tlp}", "colour": "#33FF00"}]
    if distribution == 4:
        ev["SharingGroup"] = {
            "uuid": str(uuid_mod.uuid4()),
            "name": "sg",
            "SharingGroupOrg": [{"Organisation": {"uuid": m, "name": m}} for m in members or []],
        }
    return {"Event": ev}
