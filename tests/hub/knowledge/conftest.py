"""Knowledge tests: people of the network, a source event, and products driven over REST."""

from __future__ import annotations

from typing import Any

import pytest

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.taxii.conftest import server_url  # noqa: F401  (the app on a loopback port)


def headers(key: str) -> dict[str, str]:
    return {"Authorization": key}


@pytest.fixture
def people(factory) -> dict[str, Any]:
    """A source CSIRT, an author organisation with two keys (author and reviewer), a partner
    allowed GREEN (connection tier: ceiling GREEN) and a partner that receives CLEAR only
    (no TLP agreement)."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt", sectors=["health"])
    author_org = factory.partner("Knowledge Desk", type="sectoral-csirt", sectors=["energy"])
    green = factory.partner("Green Reader", tier="connection")
    clear = factory.partner("Clear Reader", tlp=False)
    return {
        "source": source,
        "source_key": factory.key(Role.PARTNER, source),
        "author_org": author_org,
        "author": factory.key(Role.PARTNER, author_org),
        "reviewer": factory.key(Role.PARTNER, author_org),
        "green": green,
        "green_key": factory.key(Role.PARTNER, green),
        "clear": clear,
        "clear_key": factory.key(Role.PARTNER, clear),
    }


def submit(client, key: str, ev: dict[str, Any]) -> str:
    r = client.post("/api/v1/events", json=ev, headers=headers(key))
    assert r.status_code == 201, r.text
    return ev["Event"]["uuid"]


def source_event(tlp: str = "green", *, chr: bool = False, distribution: int = 1) -> dict[str, Any]:
    ev = event(
        "Source findings", tlp=tlp, distribution=distribution, attributes=[attr("203.0.113.7")]
    )
    if chr:
        ev["Event"]["Tag"].append({"name": "tlp:ex:chr"})
    return ev


def product_body(sources: list[dict[str, Any]], **over: Any) -> dict[str, Any]:
    body = {
        "kind": "analysis",
        "title": "OT intrusions in the energy sector",
        "body": "# Findings\n\nAttackers reuse VPN credentials.",
        "tlp": "green",
        "themes": ["ot", "sector-energy"],
        "sources": sources,
    }
    return {**body, **over}


def publish(client, people: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Draft by the author, review by a colleague, publish: the published product."""
    r = client.post("/api/v1/knowledge", json=body, headers=headers(people["author"]))
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    r = client.post(
        f"/api/v1/knowledge/{uuid}/review", json={}, headers=headers(people["reviewer"])
    )
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/knowledge/{uuid}/publish", headers=headers(people["author"]))
    assert r.status_code == 200, r.text
    return r.json()
