"""restSearch as MISP searches, its exports, and the new read paths of issue 15, over what
the caller receives only: tag AND/OR/NOT on event and attribute tags, include_context,
csv/text/stix2 each recorded like any delivery, invalid relative times, index order, bounded
listings; and an element the caller does not receive answers exactly as a missing one.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import MISP_HEADERS

MISSING = "00000000-0000-4000-8000-000000000000"


def headers(key: str) -> dict[str, str]:
    return {**MISP_HEADERS, "Authorization": key}


def tagged(value: str, *names: str, tlp: str | None = None, **extra: Any) -> dict[str, Any]:
    out = attr(value, tlp, **extra)
    out["Tag"] = [*out.get("Tag", []), *({"name": n} for n in names)]
    return out


def add(client: Any, key: str, ev: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/misp/events/add", json=ev, headers=headers(key))
    assert r.status_code == 200, r.text
    return r.json()["Event"]  # type: ignore[no-any-return]


def search(client: Any, key: str, path: str = "/misp/events/restSearch", **body: Any) -> Any:
    r = client.post(path, json={"returnFormat": "json", **body}, headers=headers(key))
    assert r.status_code == 200, r.text
    found = r.json()["response"]
    empty = not found or found == {"Attribute": []}
    # an answer names its audit entry when it delivered something, and only then
    assert bool(r.headers.get("X-Hub-Audit-Seq")) is not empty, r.headers
    return found


def test_tags_match_event_and_attribute_tags_with_and_or_not(client, factory) -> None:
    org = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, org)
    one = event(
        "one",
        distribution=3,
        attributes=[tagged("198.51.100.1", "kill-chain:delivery"), attr("198.51.100.2")],
        tlp=None,
        Tag=[{"name": "tlp:green"}, {"name": "campaign:x"}],
    )
    two = event("two", distribution=3, attributes=[tagged("198.51.100.3", "campaign:x")])
    three = event("three", distribution=3, attributes=[attr("198.51.100.4")])
    for ev in (one, two, three):
        add(client, key, ev)

    def uuids(found: list[dict[str, Any]]) -> list[str]:
        return [e["Event"]["info"] for e in found]

    assert uuids(search(client, key, tags=["campaign:x"])) == ["one", "two"]
    assert uuids(search(client, key, tags="CAMPAIGN:X")) == ["one", "two"]
    assert uuids(search(client, key, tags={"AND": ["campaign:x", "kill-chain:delivery"]})) == [
        "one"
    ]
    assert uuids(search(client, key, event_tags="campaign:x")) == ["one"]
    # NOT removes the attributes that carry the tag; an event tagged so is left out
    found = search(client, key, tags={"OR": ["campaign:x"], "NOT": ["kill-chain:delivery"]})
    assert uuids(found) == ["one", "two"]
    assert [a["value"] for a in found[0]["Event"]["Attribute"]] == ["198.51.100.2"]
    found = search(client, key, tags=["!campaign:x"])  # events are left out by their own tags
    assert uuids(found) == ["two", "three"] and found[0]["Event"]["Attribute"] == []
    # TLP tags: by the label every element goes out with (tlp:white is tlp:clear)
    assert len(search(client, key, tags="tlp:green")) == 3
    assert search(client, key, tags="tlp:white") == []
    # attributes: their own tags and their event's
    values = [
        a["value"]
        for a in search(client, key, "/misp/attributes/restSearch", tags="campaign:x")["Attribute"]
    ]
    assert values == ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    values = [
        a["value"]
        for a in search(
            client,
            key,
            "/misp/attributes/restSearch",
            tags={"OR": ["campaign:x"], "NOT": ["kill-chain:delivery"]},
        )["Attribute"]
    ]
    assert values == ["198.51.100.2", "198.51.100.3"]
    with_tags = search(
        client, key, "/misp/attributes/restSearch", value="198.51.100.2", includeEventTags=1
    )["Attribute"]
    assert [t["name"] for t in with_tags[0]["Tag"]] == ["campaign:x", "tlp:green"]


def test_filters_and_tags_see_only_what_the_caller_receives(client, factory) -> None:
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    reader = factory.partner("Gemeente-CERT", type="sectoral-csirt")
    skey, rkey = factory.key(Role.PARTNER, source), factory.key(Role.SYNC, reader)
    add(
        client,
        skey,
        event(
            "mixed",
            distribution=3,
            attributes=[attr("198.51.100.9"), tagged("10.9.9.9", "secret:x", tlp="amber+strict")],
        ),
    )
    # the hidden attribute's tag and value select nothing, and exclude nothing
    assert search(client, rkey, tags="secret:x") == []
    assert search(client, rkey, value="10.9.9.9") == []
    assert [e["Event"]["info"] for e in search(client, rkey, tags="!secret:x")] == ["mixed"]
    found = search(client, rkey, "/misp/attributes/restSearch", tags="secret:x")
    assert found == {"Attribute": []}
    for fmt in ("csv", "text"):
        r = client.post(
            "/misp/events/restSearch",
            json={"returnFormat": fmt, "published": [0, 1], "to_ids": [0, 1]},
            headers=headers(rkey),
        )
        assert r.status_code == 200 and "10.9.9.9" not in r.text, r.text
    r = client.post(
        "/misp/events/restSearch", json={"returnFormat": "stix2"}, headers=headers(rkey)
    )
    assert "10.9.9.9" not in r.text and "198.51.100.9" in r.text


def test_exports_are_misps_and_recorded(client, factory) -> None:
    org = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, org)
    ev = event(
        "exported",
        distribution=3,
        attributes=[attr("198.51.100.5"), attr("note", type="text", to_ids=False, comment='a "q"')],
    )
    add(client, key, ev)
    r = client.post("/misp/events/restSearch", json={"returnFormat": "csv"}, headers=headers(key))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["X-Hub-Audit-Seq"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert r.text.startswith("uuid,event_id,category,type,value,comment,to_ids,date,")
    assert [row["value"] for row in rows] == ["198.51.100.5", "note"]
    assert rows[1]["comment"] == 'a "q"' and rows[0]["to_ids"] == "1"
    assert rows[0]["attribute_tag"] == "tlp:green"
    r = client.post(
        "/misp/attributes/restSearch",
        json={
            "returnFormat": "csv",
            "includeContext": 1,
            "requested_attributes": ["value"],
            "headerless": 1,
        },
        headers=headers(key),
    )
    lines = r.text.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith('"198.51.100.5","exported"')
    # text: the values of to_ids attributes of published events (MISP's restrictive default)
    r = client.post("/misp/events/restSearch", json={"returnFormat": "text"}, headers=headers(key))
    assert r.text == "198.51.100.5\n" and r.headers["X-Hub-Audit-Seq"]
    r = client.post("/misp/events/restSearch", json={"returnFormat": "stix2"}, headers=headers(key))
    bundle = r.json()
    assert bundle["type"] == "bundle" and r.headers["X-Hub-Audit-Seq"]
    marked = [o for o in bundle["objects"] if o["type"] != "marking-definition"]
    green = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
    assert marked and all(o["object_marking_refs"][0] == green for o in marked)
    r = client.post("/misp/events/restSearch", json={"returnFormat": "stix"}, headers=headers(key))
    assert r.status_code == 422 and r.json()["saved"] is False


def test_context_order_times_and_bounds(client, factory) -> None:
    org = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, org)
    for info in ("b second", "a first", "c third"):
        add(client, key, event(info, distribution=3))
    found = search(client, key, "/misp/attributes/restSearch", includeContext=1)["Attribute"]
    assert [a["Event"]["info"] for a in found] == ["b second", "a first", "c third"]  # id order
    assert all(a["Event"]["Orgc"]["uuid"] == org.uuid for a in found)
    for bad in ("5x", "ad", "aaad"):
        assert search(client, key, publish_timestamp=bad) == []
        assert search(client, key, timestamp=bad) == []

    def index(**body: Any) -> list[str]:
        r = client.post("/misp/events/index", json=body, headers=headers(key))
        return [row["info"] for row in r.json()]

    assert index(sort="info", direction="asc") == ["a first", "b second", "c third"]
    assert index(sort="info", direction="desc", limit=1) == ["c third"]
    assert index(sort="info", desc=False) == ["a first", "b second", "c third"]
    r = client.get("/misp/attributes/index", headers=headers(key))
    assert len(r.json()) == 3 and r.headers["X-Hub-Audit-Seq"]
    r = client.get("/misp/attributes/index/limit:1001", headers=headers(key))
    assert r.status_code == 422
    r = client.post("/misp/objects/restSearch", json={"limit": 5000}, headers=headers(key))
    assert r.status_code == 422


def test_an_element_the_caller_does_not_receive_answers_as_a_missing_one(client, factory) -> None:
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    reader = factory.partner("Gemeente-CERT", type="sectoral-csirt")
    skey, rkey = factory.key(Role.PARTNER, source), factory.key(Role.SYNC, reader)
    hidden = tagged("10.7.7.7", tlp="amber+strict")
    obj = {
        "name": "domain-ip",
        "meta-category": "network",
        "distribution": "5",
        "Attribute": [{**attr("203.0.113.70", "amber+strict"), "object_relation": "ip"}],
    }
    made = add(
        client,
        skey,
        event(
            "partly hidden",
            distribution=3,
            attributes=[attr("198.51.100.70"), hidden],
            Object=[obj],
            EventReport=[
                {"name": "mine only", "content": "x", "distribution": "0"},
            ],
        ),
    )
    report_uuid = made["EventReport"][0]["uuid"]
    obj_uuid = made["Object"][0]["uuid"]
    h = headers(rkey)
    for path in (
        f"/misp/attributes/view/{hidden['uuid']}",
        f"/misp/objects/view/{obj_uuid}",
        f"/misp/eventReports/view/{report_uuid}",
    ):
        missing = path.rsplit("/", 1)[0] + "/" + MISSING
        got, absent = client.get(path, headers=h), client.get(missing, headers=h)
        assert got.status_code == absent.status_code == 404, path
        assert got.json()["errors"] == absent.json()["errors"]
    assert client.head(f"/misp/attributes/view/{hidden['uuid']}", headers=h).status_code == 404
    assert client.head(f"/misp/objects/view/{obj_uuid}", headers=h).status_code == 404
    r = client.post("/misp/objects/restSearch", json={}, headers=h)
    assert r.json()["response"] == []
    reports = client.get(f"/misp/eventReports/index/event_id:{made['uuid']}", headers=h)
    assert reports.json() == []
    # writes: another organisation's element is refused, a hidden one is missing
    r = client.post(
        f"/misp/attributes/edit/{made['Attribute'][0]['uuid']}", json={"comment": "x"}, headers=h
    )
    assert r.status_code == 403
    for path in (
        f"/misp/attributes/delete/{hidden['uuid']}",
        f"/misp/objects/delete/{obj_uuid}",
        f"/misp/eventReports/delete/{report_uuid}",
    ):
        assert client.post(path, json={}, headers=h).status_code == 404, path
    private = add(client, skey, event("hub only", distribution=0))
    answers = [
        client.post("/misp/tags/attachTagToObject", json={"uuid": u, "tag": "x"}, headers=h)
        for u in (hidden["uuid"], private["uuid"], MISSING)
    ]
    assert {(a.status_code, a.json()["errors"]) for a in answers} == {(404, "Invalid Target.")}
    # sightings: none on what the reader does not receive, and no one else's by source
    client.post(
        "/misp/sightings/add", json={"value": "10.7.7.7", "source": "s"}, headers=headers(skey)
    )
    client.post(
        "/misp/sightings/add", json={"value": "198.51.100.70", "source": "s"}, headers=headers(skey)
    )
    found = client.post("/misp/sightings/restSearch", json={}, headers=h).json()["response"]
    assert [s["Sighting"]["attribute_uuid"] for s in found] == [made["Attribute"][0]["uuid"]]
    assert found[0]["Sighting"]["source"] == "" and "Organisation" not in found[0]["Sighting"]
    assert (
        client.post("/misp/sightings/restSearch", json={"source": "s"}, headers=h).json()[
            "response"
        ]
        == []
    )
