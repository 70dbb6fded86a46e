"""Deterministic synthetic MISP events: realistic types, TLP labels at event and attribute level."""

from __future__ import annotations

import random
import uuid
from typing import Any

TYPES = (
    ("ip-dst", "Network activity"),
    ("ip-src", "Network activity"),
    ("domain", "Network activity"),
    ("hostname", "Network activity"),
    ("url", "Network activity"),
    ("md5", "Payload delivery"),
    ("sha1", "Payload delivery"),
    ("sha256", "Payload delivery"),
    ("filename", "Payload delivery"),
    ("email-src", "Payload delivery"),
)
LABELS = ("clear", "green", "amber", "amber+strict", "red")


def _value(kind: str, i: int) -> str:
    if kind == "ip-dst":
        return f"10.{i % 250}.{(i // 250) % 250}.{i % 199 + 1}"
    if kind == "ip-src":
        return f"172.16.{(i // 200) % 250}.{i % 200 + 1}"
    if kind == "domain":
        return f"d{i}.example.com"
    if kind == "hostname":
        return f"host{i}.example.net"
    if kind == "url":
        return f"https://u{i}.example.org/path/{i % 97}"
    if kind == "email-src":
        return f"sender{i}@example.com"
    if kind == "filename":
        return f"payload-{i}.exe"
    width = {"md5": 32, "sha1": 40, "sha256": 64}[kind]
    return f"{i:0{width}x}"


def make_event(
    attributes: int,
    *,
    seed: int = 20261123,
    event_label: str = "green",
    distribution: int = 1,
    attribute_labels: bool = True,
) -> dict[str, Any]:
    """One MISP event; attribute labels cycle through all five TLP labels when asked."""
    rnd = random.Random(seed)
    attrs = []
    for i in range(attributes):
        kind, category = TYPES[i % len(TYPES)]
        attr: dict[str, Any] = {
            "uuid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "type": kind,
            "category": category,
            "value": _value(kind, i),
            "to_ids": i % 2 == 0,
            "timestamp": "1700000000",
            "distribution": "5",
            "comment": "",
        }
        if attribute_labels:
            attr["Tag"] = [{"name": f"tlp:{LABELS[i % len(LABELS)]}", "local": False}]
        attrs.append(attr)
    return {
        "Event": {
            "uuid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
            "info": f"synthetic event, {attributes} attributes",
            "date": "2026-11-23",
            "distribution": str(distribution),
            "threat_level_id": "2",
            "analysis": "1",
            "published": True,
            "timestamp": "1700000001",
            "Tag": [{"name": f"tlp:{event_label}", "local": False}],
            "Attribute": attrs,
        }
    }
