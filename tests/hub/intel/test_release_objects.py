"""Regressions from the security review: objects go whole, and a title goes only with content."""

from __future__ import annotations

import uuid

import pytest

from hub.vocabulary import Role
from tests.builders import attr, event

OTHER_ORG = "0b5e1c3a-9d47-4d6e-8f2a-5c1d2e3f4a5b"


@pytest.fixture
def parties(client, factory):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    core = factory.partner("Core ISP", tier="core")
    conn = factory.partner("Connection partner", tier="connection")
    keys = {
        name: {"Authorization": factory.key(Role.PARTNER, p)}
        for name, p in (("source", source), ("core", core), ("conn", conn))
    }
    return keys


def _object(*attributes: dict, distribution: int = 5, members: list[str] | None = None) -> dict:
    obj = {
        "uuid": str(uuid.uuid4()),
        "name": "domain-ip",
        "distribution": str(distribution),
        "Attribute": [dict(a, object_relation="ip") for a in attributes],
    }
    if distribution == 4:
        obj["SharingGroup"] = {
            "uuid": str(uuid.uuid4()),
            "name": "sg",
            "SharingGroupOrg": [{"Organisation": {"uuid": m}} for m in members or []],
        }
    return obj


def _submit(client, keys, body) -> None:
    r = client.post("/api/v1/events", json=body, headers=keys["source"])
    assert r.status_code == 201, r.text


def _values(client, headers, value: str) -> list[str]:
    r = client.get(f"/api/v1/attributes?value={value}", headers=headers)
    assert r.status_code == 200
    return [a["value"] for a in r.json()["items"]]


def test_an_object_sharing_group_binds_its_attributes(client, parties) -> None:
    body = event(tlp="green", attributes=[attr("192.0.2.10")])
    body["Event"]["Object"] = [_object(attr("203.0.113.88"), distribution=4, members=[OTHER_ORG])]
    _submit(client, parties, body)
    assert _values(client, parties["core"], "203.0.113.88") == []
    assert _values(client, parties["core"], "192.0.2.10") == ["192.0.2.10"]
    assert _values(client, parties["source"], "203.0.113.88") == ["203.0.113.88"]


def test_an_object_goes_whole_in_attribute_search(client, parties) -> None:
    body = event(tlp="green", attributes=[attr("192.0.2.11")])
    body["Event"]["Object"] = [_object(attr("203.0.113.77"), attr("203.0.113.78", "amber"))]
    _submit(client, parties, body)
    assert _values(client, parties["conn"], "203.0.113.77") == []  # its sibling is AMBER
    r = client.get("/api/v1/attributes?value=203.0.113.77", headers=parties["core"])
    tags = [t["name"] for t in r.json()["items"][0]["Tag"] if t["name"].startswith("tlp:")]
    assert tags == ["tlp:amber"]  # the object's label travels on each of its attributes


def test_no_title_without_deliverable_content(client, parties) -> None:
    restricted = attr(
        "198.51.100.99",
        distribution="4",
        SharingGroup={
            "uuid": str(uuid.uuid4()),
            "name": "sg",
            "SharingGroupOrg": [{"Organisation": {"uuid": OTHER_ORG}}],
        },
    )
    body = event("SECRET TITLE", tlp="green", attributes=[restricted])
    _submit(client, parties, body)
    uuid_ = body["Event"]["uuid"]
    listed = client.get("/api/v1/events", headers=parties["core"]).json()["items"]
    assert uuid_ not in {e["uuid"] for e in listed}
    assert client.get(f"/api/v1/events/{uuid_}", headers=parties["core"]).status_code == 404
    own = client.get("/api/v1/events", headers=parties["source"]).json()["items"]
    assert uuid_ in {e["uuid"] for e in own}  # the source still sees its own event


@pytest.mark.parametrize("tag", ["tlp:red", "TLP:AMBER+STRICT", " tlp : amber"])
def test_a_tlp_tag_on_an_event_report_is_refused_not_dropped(client, parties, tag) -> None:
    """MISP keeps no tags on event reports, so the hub did not either: a report tagged RED in a
    GREEN event went to every tier as GREEN (black-box attack, 2026-12-03). A marking the hub
    cannot keep is refused, naming where; nothing is stored, nothing reaches anyone."""
    body = event(tlp="green", attributes=[attr("192.0.2.11")])
    body["Event"]["EventReport"] = [
        {"name": "rep", "content": "REPORT SECRET", "Tag": [{"name": tag}]}
    ]
    r = client.post("/api/v1/events", json=body, headers=parties["source"])
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "Event.EventReport.0.Tag"
    uuid_ = body["Event"]["uuid"]
    for who in ("source", "core", "conn"):
        got = client.get(f"/api/v1/events/{uuid_}", headers=parties[who])
        assert got.status_code == 404 and "REPORT SECRET" not in got.text
    # Other tags on a report are not markings: dropped as before, the event is stored.
    body["Event"]["EventReport"][0]["Tag"] = [{"name": 'osint:source-type="blog-post"'}]
    assert client.post("/api/v1/events", json=body, headers=parties["source"]).status_code == 201
    r = client.get(f"/api/v1/events/{uuid_}", headers=parties["conn"])
    assert r.status_code == 200 and "REPORT SECRET" in r.text


def test_a_tlp_tag_on_a_misp_report_write_is_refused(client, parties) -> None:
    body = event(tlp="green", attributes=[attr("192.0.2.12")])
    _submit(client, parties, body)
    r = client.post(
        f"/misp/eventReports/add/{body['Event']['uuid']}",
        json={"name": "rep", "content": "REPORT SECRET", "Tag": [{"name": "tlp:red"}]},
        headers=parties["source"],
    )
    assert r.status_code in (403, 422), r.text
    assert (
        "REPORT SECRET"
        not in client.get(f"/api/v1/events/{body['Event']['uuid']}", headers=parties["conn"]).text
    )


@pytest.mark.parametrize(
    ("event_tlp", "tag"),
    [
        ("green", "tlp:green"),
        ("green", "tlp:white"),
        ("amber", "TLP:CLEAR"),
        ("amber", "tlp:green"),
    ],
)
def test_a_tlp_tag_no_stricter_than_the_event_is_dropped(client, parties, event_tlp, tag) -> None:
    """A TLP tag on a report, a sighting or a reference at or below the event's own label
    changes nothing (the element goes out under the event's label at least): it is dropped
    like any tag there, and the event is stored and delivered."""
    body = event(tlp=event_tlp, attributes=[attr("192.0.2.13", Sighting=[{"Tag": [tag]}])])
    body["Event"]["EventReport"] = [
        {"name": "rep", "content": "REPORT TEXT", "Tag": [{"name": tag}]}
    ]
    target = attr("192.0.2.14", object_relation="ip")
    obj = _object(attr("example.org", type="domain", object_relation="domain"), target)
    obj["ObjectReference"] = [
        {
            "referenced_uuid": body["Event"]["Attribute"][0]["uuid"],
            "relationship_type": "related-to",
            "Tag": [{"name": tag}],
        }
    ]
    body["Event"]["Object"] = [obj]
    r = client.post("/api/v1/events", json=body, headers=parties["source"])
    assert r.status_code == 201, r.text
    got = client.get(f"/api/v1/events/{body['Event']['uuid']}", headers=parties["core"])
    assert got.status_code == 200 and "REPORT TEXT" in got.text
    assert [t["name"] for t in got.json()["Event"]["Tag"] if "tlp" in t["name"].lower()] == [
        f"tlp:{event_tlp}"
    ]


@pytest.mark.parametrize(
    ("where", "tag"),
    [
        ("Event.EventReport.0.Tag", "tlp:ex:chr"),
        ("Event.Attribute.0.Sighting.0.Tag", "tlp:amber"),
        ("Event.Object.0.ObjectReference.0.Tag", "tlp:red"),
    ],
)
def test_a_stricter_tlp_tag_on_a_sighting_or_reference_is_refused(
    client, parties, where, tag
) -> None:
    """Stricter than the GREEN event (or a flag such as TLP:EX:CHR, which is no label): the
    hub cannot keep it there, so the event is refused naming the field, nothing stored."""
    sighting = [{"Tag": [tag]}] if "Sighting" in where else []
    body = event(tlp="green", attributes=[attr("192.0.2.15", Sighting=sighting)])
    report_tags = [{"name": tag}] if "EventReport" in where else []
    body["Event"]["EventReport"] = [{"name": "rep", "content": "SECRET", "Tag": report_tags}]
    obj = _object(attr("example.net", type="domain", object_relation="domain"))
    obj["ObjectReference"] = [
        {
            "referenced_uuid": body["Event"]["Attribute"][0]["uuid"],
            "relationship_type": "related-to",
            "Tag": [{"name": tag}] if "ObjectReference" in where else [],
        }
    ]
    body["Event"]["Object"] = [obj]
    r = client.post("/api/v1/events", json=body, headers=parties["source"])
    assert (r.status_code, r.json().get("field")) == (422, where), r.text
    got = client.get(f"/api/v1/events/{body['Event']['uuid']}", headers=parties["source"])
    assert got.status_code == 404
