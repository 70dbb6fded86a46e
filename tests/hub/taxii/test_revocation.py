"""Withdrawn objects reach TAXII pollers as ``"revoked": true`` versions, and only the pollers
who could see what was withdrawn (taxii2-client against the app on a loopback port)."""

from __future__ import annotations

from typing import Any

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.taxii.conftest import collection
from tests.hub.taxii.test_client import TLP2, content, submit

AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"


def _latest_added(coll: Any) -> str:
    return max(m["date_added"] for m in coll.get_manifest()["objects"])


def _named_after(objects: list[dict[str, Any]], uuid: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["id"].endswith(uuid)]


def test_a_deleted_attribute_is_revoked_for_those_who_had_it(client, factory, server_url) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    core = factory.partner("Core reader")  # may see AMBER
    connection = factory.partner("Connection reader", tier="connection")  # GREEN at most
    source_key = factory.key(Role.PARTNER, source)
    kept = attr("198.51.100.1", to_ids=True, timestamp="1700000001")
    amber = attr("198.51.100.2", "amber", to_ids=True, timestamp="1700000001")
    ev = event("revoke me", attributes=[kept, amber], timestamp=1_700_000_001)
    submit(client, source_key, ev)
    core_coll = collection(server_url, factory.key(Role.SYNC, core), "all")
    conn_coll = collection(server_url, factory.key(Role.SYNC, connection), "all")
    had = _named_after(content([core_coll.get_objects()]), amber["uuid"])
    assert {o["type"] for o in had} >= {"indicator", "observed-data"}
    assert not _named_after(content([conn_coll.get_objects()]), amber["uuid"])
    core_mark, conn_mark = _latest_added(core_coll), _latest_added(conn_coll)

    # Upstream deletes the AMBER attribute: a newer event version with it soft-deleted.
    gone = {**amber, "deleted": True, "timestamp": "1700000100"}
    edit = event(uuid=ev["Event"]["uuid"], timestamp=1_700_000_100, attributes=[gone])
    submit(client, source_key, edit)

    news = content([core_coll.get_objects(added_after=core_mark)])
    revoked = [o for o in news if o.get("revoked")]
    versioned = {o["id"]: o for o in had if "modified" in o}
    assert {o["id"] for o in _named_after(revoked, amber["uuid"])} == set(versioned)
    for obj in _named_after(revoked, amber["uuid"]):
        before = versioned[obj["id"]]
        assert obj["modified"] > before["modified"]
        assert obj["object_marking_refs"][0] == AMBER == before["object_marking_refs"][0]
    assert any(o["type"] == "relationship" for o in revoked)  # indicator based-on observation
    assert not _named_after(news, kept["uuid"])  # the kept attribute did not change
    # the revocation is what the poller gets for the object from now on
    indicator = f"indicator--{amber['uuid']}"
    assert content([core_coll.get_object(indicator)])[0]["revoked"] is True

    # The partner who never saw the AMBER attribute learns nothing about it.
    theirs = content([conn_coll.get_objects(added_after=conn_mark)])
    assert not [o for o in theirs if o.get("revoked")]
    assert not _named_after(theirs, amber["uuid"])
    assert all(o["object_marking_refs"][0] == TLP2["green"] for o in theirs)

    # A later version leaves the revocation as it is (not revoked again, not dropped).
    mark = _latest_added(core_coll)
    more = attr("198.51.100.3", to_ids=True, timestamp="1700000200")
    submit(
        client,
        source_key,
        event(uuid=ev["Event"]["uuid"], timestamp=1_700_000_200, attributes=[more]),
    )
    later = content([core_coll.get_objects(added_after=mark)])
    assert not _named_after(later, amber["uuid"])
    assert content([core_coll.get_object(indicator)])[0]["revoked"] is True


def test_a_corrected_value_is_a_new_version_not_a_revocation(client, factory, server_url) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    reader = factory.partner("Reader")
    source_key = factory.key(Role.PARTNER, source)
    a = attr("198.51.100.7", to_ids=True, timestamp="1700000001")
    ev = event("correct me", attributes=[a], timestamp=1_700_000_001)
    submit(client, source_key, ev)
    coll = collection(server_url, factory.key(Role.SYNC, reader), "all")
    mark = _latest_added(coll)
    fixed = {**a, "value": "198.51.100.8", "timestamp": "1700000100"}
    submit(
        client,
        source_key,
        event(uuid=ev["Event"]["uuid"], timestamp=1_700_000_100, attributes=[fixed]),
    )
    news = content([coll.get_objects(added_after=mark)])
    indicator = next(o for o in news if o["id"] == f"indicator--{a['uuid']}")
    assert "198.51.100.8" in indicator["pattern"] and not indicator.get("revoked")
