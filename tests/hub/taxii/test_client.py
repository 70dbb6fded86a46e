"""The TAXII 2.1 server through the real taxii2-client, over HTTP on a loopback port."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from taxii2client.v21 import as_pages

from hub.audit import releases as release_index
from hub.models import AuditEntry, Release, StixObject
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.taxii.conftest import TAXII, KeyAuth, collection, taxii_server

TLP2 = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
}


@pytest.fixture
def people(factory) -> dict[str, Any]:
    source = factory.partner("Source CSIRT", type="sectoral-csirt", sectors=["health"])
    reader = factory.partner("Reader", sectors=["health"])
    return {
        "source": source,
        "source_key": factory.key(Role.PARTNER, source),
        "reader": reader,
        "reader_key": factory.key(Role.SYNC, reader),
    }


def submit(client, key: str, *events: dict[str, Any]) -> None:
    r = client.post("/api/v1/events", json=list(events), headers={"Authorization": key})
    assert r.status_code == 201, r.text


def big_event(n: int = 250, **kwargs: Any) -> dict[str, Any]:
    """n attributes, all for IDS: five STIX objects each (indicator, observed-data, two
    observables, relationship), so 250 give about 1,250 objects in a fraction of a second."""
    attrs = [attr(f"10.{i // 250}.{i % 250}.1", None, to_ids=True) for i in range(n)]
    return event("big", attributes=attrs, **kwargs)


def all_pages(coll, per_request: int, **filters: Any) -> list[dict[str, Any]]:
    envelopes = list(as_pages(coll.get_objects, per_request=per_request, **filters))
    return envelopes


def content(envelopes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for e in envelopes for o in e.get("objects", []) if o["type"] != "marking-definition"]


def test_discovery_api_root_and_collections(client, people, server_url) -> None:
    server = taxii_server(server_url, people["reader_key"])
    assert server.title.startswith("CWN hub")
    assert server.default.url == f"{server_url}/taxii2/cwn/"
    root = server.api_roots[0]
    assert root.title and "application/taxii+json;version=2.1" in root.versions
    assert root.max_content_length == 4 * 1024 * 1024
    aliases = [c.alias for c in root.collections]
    assert aliases == [
        "all",
        "tlp-clear",
        "tlp-green",
        "tlp-amber",
        "tlp-amber-strict",
        "sector-health",
    ]
    for c in root.collections:
        uuid.UUID(c.id)  # collection ids are identifiers (UUIDs)
        assert c.can_read and c.media_types == ["application/stix+json;version=2.1"]
        assert c.can_write == (c.alias == "all")
    by_id = requests.get(
        f"{server_url}/taxii2/cwn/collections/{root.collections[0].id}/",
        headers={"Accept": TAXII},
        auth=KeyAuth(people["reader_key"]),
    )
    assert by_id.headers["Content-Type"] == TAXII and by_id.json()["alias"] == "all"


def test_paging_over_a_thousand_objects(client, people, server_url, maker) -> None:
    submit(client, people["source_key"], big_event())
    with maker() as s:
        stored = set(s.scalars(select(StixObject.stix_id)))
        audit_before = s.scalar(select(func.max(AuditEntry.seq)))
    assert len(stored) > 1000
    coll = collection(server_url, people["reader_key"], "all")
    envelopes = all_pages(coll, per_request=90)
    got = content(envelopes)
    ids = [o["id"] for o in got]
    assert len(ids) == len(set(ids)) == len(stored)
    assert set(ids) == stored
    assert len(envelopes) >= 12 and envelopes[-1]["more"] is False
    for env in envelopes:
        assert len(env["objects"]) <= 90  # the marking definitions count towards the limit
        defined = {o["id"] for o in env["objects"] if o["type"] == "marking-definition"}
        for obj in env["objects"]:
            if obj["type"] != "marking-definition":
                assert obj["object_marking_refs"][0] == TLP2["green"]
                assert set(obj["object_marking_refs"]) <= defined
    with maker() as s:
        pages = s.scalar(
            select(func.count(AuditEntry.seq)).where(
                AuditEntry.seq > audit_before, AuditEntry.action == "release.page"
            )
        )
        release_index.catch_up(s)
        releases = s.scalar(
            select(func.count(Release.id)).where(
                Release.audit_seq > audit_before, Release.channel == "taxii"
            )
        )
    assert pages == len(envelopes)  # every page served is a release with one audit entry
    assert releases == len(envelopes)  # one event per page here


def test_added_after_sees_only_later_releases(client, people, server_url) -> None:
    key = people["source_key"]
    first = event("first", attributes=[attr("198.51.100.1", to_ids=True)])
    submit(client, key, first)
    coll = collection(server_url, people["reader_key"], "all")
    last = max(m["date_added"] for m in coll.get_manifest()["objects"])
    assert "objects" not in coll.get_objects(added_after=last)
    second = event("second", attributes=[attr("198.51.100.2", to_ids=True)])
    submit(client, key, second)
    new = content([coll.get_objects(added_after=last)])
    # misp-stix renders a published event (publish_timestamp set) as a report
    container = "report" if any(o["type"] == "report" for o in new) else "grouping"
    assert {o["type"] for o in new} == {
        container,
        "identity",
        "indicator",
        "observed-data",
        "network-traffic",
        "ipv4-addr",
        "relationship",
    }
    grouping = next(o for o in new if o["type"] == container)
    assert grouping["id"] == f"{container}--{second['Event']['uuid']}"
    assert not any(first["Event"]["uuid"] in o["id"] for o in new)


def test_match_type_manifest_and_versions(client, people, server_url) -> None:
    ev = event("versions", attributes=[attr("198.51.100.9", to_ids=True, timestamp="1700000000")])
    submit(client, people["source_key"], ev)
    coll = collection(server_url, people["reader_key"], "all")
    indicators = content([coll.get_objects(type="indicator")])
    assert [o["type"] for o in indicators] == ["indicator"]
    both = content([coll.get_objects(type=["indicator", "ipv4-addr"])])
    assert sorted(o["type"] for o in both) == ["indicator", "ipv4-addr"]
    manifest = coll.get_manifest()
    objects = content([coll.get_objects()])
    assert [m["id"] for m in manifest["objects"]] == [o["id"] for o in objects]
    for record in manifest["objects"]:
        assert record["media_type"] == "application/stix+json;version=2.1"
        assert record["date_added"].endswith("Z") and record["version"].endswith("Z")
    # A new event version that changes the attribute: a new version of its indicator, which
    # replaces the older one (an older version may carry a looser label: never kept).
    indicator_id = indicators[0]["id"]
    before = coll.object_versions(indicator_id)["versions"]
    changed = ev["Event"]
    changed["timestamp"] = str(int(changed["timestamp"]) + 10)
    changed["Attribute"][0]["timestamp"] = "1700000100"
    changed["Attribute"][0]["comment"] = "now with a comment"
    submit(client, people["source_key"], ev)
    versions = coll.object_versions(indicator_id)["versions"]
    assert len(before) == len(versions) == 1 and before[0] < versions[0]
    last = content([coll.get_object(indicator_id)])
    assert len(last) == 1 and last[0]["modified"].startswith(versions[0][:19])
    every = content([coll.get_object(indicator_id, version="all")])
    assert len(every) == 1 and every[0]["modified"].startswith(versions[0][:19])
    first = content([coll.get_object(indicator_id, version="first")])
    assert first[0]["modified"].startswith(versions[0][:19])
    at = content([coll.get_objects(version=versions[0], id=indicator_id)])
    assert [o["id"] for o in at] == [indicator_id]
    assert content([coll.get_objects(version=before[0], id=indicator_id)]) == []
    assert content([coll.get_objects(spec_version="2.0")]) == []


def test_add_objects_and_status(client, people, server_url, maker) -> None:
    coll = collection(server_url, people["reader_key"], "all")
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-20T10:00:00.000Z",
        "modified": "2026-11-20T10:00:00.000Z",
        "name": "bad domain",
        "pattern": "[domain-name:value = 'bad.example']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
        "object_marking_refs": [TLP2["green"]],
    }
    status = coll.add_objects({"objects": [indicator, {"type": "nonsense"}]})
    assert status.status == "complete"
    assert status.total_count == 2 and status.success_count == 1 and status.failure_count == 1
    assert status.successes[0]["id"] == indicator["id"]
    assert status.failures[0]["id"] == "objects[1]" and status.failures[0]["message"]
    status.refresh()  # GET {api-root}/status/{id}/
    assert status.success_count == 1
    stored = content([coll.get_objects(type="indicator")])
    assert any(o["pattern"] == indicator["pattern"] for o in stored)
    with maker() as s:
        assert s.scalar(select(func.count(StixObject.id))) > 0
    # Unreadable marking: accepted, held in quarantine, reported as a failure, not stored.
    unknown = dict(indicator, id=f"indicator--{uuid.uuid4()}")
    unknown["object_marking_refs"] = [f"marking-definition--{uuid.uuid4()}"]
    held = coll.add_objects({"objects": [unknown]})
    assert held.failure_count == 1 and "quarantine" in held.failures[0]["message"]
    # Someone else's status is not found.
    other = requests.get(
        f"{server_url}/taxii2/cwn/status/{status.id}/",
        headers={"Accept": TAXII},
        auth=KeyAuth(people["source_key"]),
    )
    assert other.status_code == 404 and other.headers["Content-Type"] == TAXII


class TestErrors:
    """Every error under /taxii2 is a TAXII error resource with the exact media type."""

    def check(self, r: requests.Response, status: int) -> dict[str, Any]:
        assert r.status_code == status, r.text
        assert r.headers["Content-Type"] == TAXII
        body = r.json()
        assert body["http_status"] == str(status) and body["title"] and body["description"]
        return body

    def test_without_a_key(self, client, server_url) -> None:
        url = f"{server_url}/taxii2/cwn/collections/"
        self.check(requests.get(url, headers={"Accept": TAXII}), 401)
        self.check(requests.get(url, headers={"Accept": "text/html"}), 401)
        post = requests.post(
            url + "all/objects/", data=b"{broken", headers={"Content-Type": "text/plain"}
        )
        self.check(post, 401)

    def test_not_acceptable_and_unsupported_media_type(self, client, people, server_url) -> None:
        auth = KeyAuth(people["reader_key"])
        url = f"{server_url}/taxii2/cwn/collections/all/objects/"
        for accept in ("application/json", "application/taxii+json;version=2.0", "text/html"):
            self.check(requests.get(url, headers={"Accept": accept}, auth=auth), 406)
        for ok in (TAXII, "application/taxii+json", "*/*"):
            assert requests.get(url, headers={"Accept": ok}, auth=auth).status_code == 200
        for media in ("application/json", "application/stix+json;version=2.1", None):
            headers = {"Accept": TAXII, **({"Content-Type": media} if media else {})}
            r = requests.post(url, data=b'{"objects": []}', headers=headers, auth=auth)
            self.check(r, 415)

    def test_too_large_not_found_and_bad_cursor(self, client, people, server_url) -> None:
        auth = KeyAuth(people["reader_key"])
        base = f"{server_url}/taxii2/cwn/collections/"
        headers = {"Accept": TAXII, "Content-Type": TAXII}
        big = b'{"objects": [' + b" " * (5 * 1024 * 1024) + b"]}"
        self.check(requests.post(base + "all/objects/", data=big, headers=headers, auth=auth), 413)
        self.check(requests.get(base + "nothing/objects/", headers=headers, auth=auth), 404)
        self.check(requests.get(base + "sector-energy/", headers=headers, auth=auth), 404)
        self.check(requests.get(f"{server_url}/taxii2/nothing", headers=headers, auth=auth), 404)
        r = requests.get(base + "all/objects/?next=forged", headers=headers, auth=auth)
        assert self.check(r, 400)["details"] == {"field": "next"}
        r = requests.get(base + "all/objects/?added_after=yesterday", headers=headers, auth=auth)
        self.check(r, 400)
        r = requests.get(f"{server_url}/taxii2/", headers={"Accept": TAXII}, auth=auth)
        assert r.status_code == 200 and r.headers["Content-Type"] == TAXII
