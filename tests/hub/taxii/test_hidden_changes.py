"""A change a TAXII poller cannot see leaves its answers as they were (#13): the creator's
identity, the event's container and its event-level galaxies say nothing about a value and go
out along with what the poller may see; an element added for others (a higher label, a
narrower addressing) must not list them again, re-date them or add to their versions
(taxii2-client against the app on a loopback port)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.taxii.conftest import TAXII, KeyAuth, collection
from tests.hub.taxii.test_client import content, submit
from tests.hub.taxii.test_release_leaks import galaxy


def _hidden(kind: str) -> dict[str, Any]:
    """An attribute the GREEN-only reader may not see: RED, for the hub alone, or for a
    sharing group the reader is not in."""
    if kind == "red":
        return attr("203.0.113.66", "red", to_ids=True, timestamp="1700000100")
    if kind == "hub-only":
        return attr("203.0.113.67", to_ids=True, timestamp="1700000100", distribution="0")
    group = {
        "uuid": str(uuid.uuid4()),
        "name": "others",
        "SharingGroupOrg": [{"Organisation": {"uuid": str(uuid.uuid4()), "name": "other"}}],
    }
    return attr(
        "203.0.113.68",
        to_ids=True,
        timestamp="1700000100",
        distribution="4",
        SharingGroup=group,
    )


def _view(coll: Any, url: str, key: str) -> dict[str, Any]:
    """What the poller is told: every object, the manifest, the identity's versions."""
    objects = content([coll.get_objects()])
    manifest = coll.get_manifest()["objects"]
    identity = next(o["id"] for o in objects if o["type"] == "identity")
    return {
        "objects": sorted(objects, key=lambda o: o["id"]),
        "manifest": sorted(manifest, key=lambda m: m["id"]),
        "versions": coll.object_versions(identity),
        "identity": content([coll.get_object(identity, version="all")]),
    }


def _last_added(url: str, key: str, coll: Any) -> str:
    r = requests.get(
        f"{url}/taxii2/cwn/collections/{coll.id}/objects/",
        headers={"Accept": TAXII},
        auth=KeyAuth(key),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.headers["X-TAXII-Date-Added-Last"]


@pytest.mark.parametrize("kind", ["red", "hub-only", "sharing-group"])
def test_a_hidden_element_does_not_list_the_identity_again(
    client, factory, server_url, kind
) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    reader = factory.partner("Green reader", tier="connection")  # GREEN at most
    source_key, reader_key = factory.key(Role.PARTNER, source), factory.key(Role.SYNC, reader)
    green = attr("198.51.100.10", to_ids=True, timestamp="1700000001")
    ev = event("hidden", attributes=[green], timestamp=1_700_000_001, Galaxy=galaxy("APT H"))
    submit(client, source_key, ev)
    coll = collection(server_url, reader_key, "all")
    before = _view(coll, server_url, reader_key)
    assert {o["type"] for o in before["objects"]} >= {"identity", "indicator", "threat-actor"}
    mark = _last_added(server_url, reader_key, coll)
    assert mark == max(m["date_added"] for m in before["manifest"])

    # Upstream adds an attribute the reader may not see.
    submit(
        client,
        source_key,
        event(
            "hidden",
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_100,
            attributes=[_hidden(kind)],
            Galaxy=ev["Event"]["Galaxy"],
        ),
    )
    assert [o["type"] for o in content([coll.get_objects(added_after=mark)])] == []
    assert coll.get_manifest(added_after=mark).get("objects") is None
    assert _view(coll, server_url, reader_key) == before

    # A change the reader sees reaches it, and still not the identity again.
    more = attr("198.51.100.11", to_ids=True, timestamp="1700000200")
    submit(
        client,
        source_key,
        event(
            "hidden",
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_200,
            attributes=[more],
            Galaxy=ev["Event"]["Galaxy"],
        ),
    )
    news = content([coll.get_objects(added_after=mark)])
    assert f"indicator--{more['uuid']}" in {o["id"] for o in news}
    assert not [o for o in news if o["type"] in ("identity", "threat-actor")]
    after = _view(coll, server_url, reader_key)
    assert after["versions"] == before["versions"] and after["identity"] == before["identity"]


def test_the_identity_still_needs_something_the_caller_may_see(client, factory, server_url):
    """Fail closed: an event whose every element is hidden from the reader does not name its
    creator to it, before or after a hidden change."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    reader = factory.partner("Green reader", tier="connection")
    source_key, reader_key = factory.key(Role.PARTNER, source), factory.key(Role.SYNC, reader)
    ev = event("nothing for you", attributes=[_hidden("red")], timestamp=1_700_000_001)
    submit(client, source_key, ev)
    coll = collection(server_url, reader_key, "all")
    assert coll.get_objects().get("objects") is None
    submit(
        client,
        source_key,
        event(
            "nothing for you",
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_100,
            attributes=[_hidden("sharing-group")],
        ),
    )
    assert coll.get_objects().get("objects") is None
    # a GREEN element for the community: now the reader gets it, with the identity
    shown = attr("198.51.100.12", to_ids=True, timestamp="1700000200")
    submit(
        client,
        source_key,
        event(
            "nothing for you", uuid=ev["Event"]["uuid"], timestamp=1_700_000_200, attributes=[shown]
        ),
    )
    types = {o["type"] for o in content([coll.get_objects()])}
    assert {"identity", "indicator"} <= types


def test_the_identity_goes_when_the_last_thing_the_caller_may_see_goes(
    client, factory, server_url
) -> None:
    """Not re-dated is not frozen: the identity's substance classes follow every rendering,
    so once the reader may see nothing of the event it no longer gets the identity."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    reader = factory.partner("Green reader", tier="connection")
    source_key, reader_key = factory.key(Role.PARTNER, source), factory.key(Role.SYNC, reader)
    green = attr("198.51.100.13", to_ids=True, timestamp="1700000001")
    # the other attribute keeps the identity's label (GREEN): only its substance changes
    ev = event("going", attributes=[green, _hidden("sharing-group")], timestamp=1_700_000_001)
    submit(client, source_key, ev)
    coll = collection(server_url, reader_key, "all")
    assert "identity" in {o["type"] for o in content([coll.get_objects()])}
    gone = {**green, "deleted": True, "timestamp": "1700000100"}
    submit(
        client,
        source_key,
        event("going", uuid=ev["Event"]["uuid"], timestamp=1_700_000_100, attributes=[gone]),
    )
    left = content([coll.get_objects()])
    assert not [o for o in left if o["type"] == "identity"]
    assert not [o for o in left if not o.get("revoked")], [o["type"] for o in left]
