"""Regression tests: TAXII must not serve more than the /misp view would (review findings 5-7).

5. an older version of an object never goes out under its older, looser label/addressing;
6. sightings do not name the organisations that saw a value;
7. the event container (with its title) and event-level galaxies go out only with something
   of substance (an attribute, object or report) the caller may see.
"""

from __future__ import annotations

import uuid
from typing import Any

from hub.vocabulary import Role
from tests.builders import attr, event

TAXII = {"Accept": "application/taxii+json;version=2.1"}


def post(client, key: str, ev: dict[str, Any]) -> None:
    r = client.post("/api/v1/events", json=ev, headers={"Authorization": key})
    assert r.status_code in (200, 201), r.text


def get(client, key: str, path: str = "collections/all/objects/", **params: str):
    r = client.get(f"/taxii2/cwn/{path}", params=params, headers={**TAXII, "Authorization": key})
    return r.status_code, r.json()


def content(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in body.get("objects", []) if o["type"] != "marking-definition"]


def partners(factory):
    src = factory.partner("Source")
    conn = factory.partner("Conn", tier="connection")
    return src, factory.key(Role.PARTNER, src), factory.key(Role.PARTNER, conn)


def galaxy(value: str) -> list[dict[str, Any]]:
    return [
        {
            "uuid": str(uuid.uuid4()),
            "name": "Threat Actor",
            "type": "threat-actor",
            "namespace": "misp",
            "description": "ta",
            "GalaxyCluster": [
                {
                    "uuid": str(uuid.uuid4()),
                    "type": "threat-actor",
                    "value": value,
                    "tag_name": f'misp-galaxy:threat-actor="{value}"',
                    "description": "d",
                    "meta": {},
                }
            ],
        }
    ]


def test_a_tightened_attribute_is_not_served_in_its_older_version(client, factory) -> None:
    _src, source_key, conn_key = partners(factory)
    a = attr("198.51.100.200", "green", to_ids=True, timestamp="1700000000")
    ev = event("relabel", tlp="green", attributes=[a], timestamp=1700000000)
    post(client, source_key, ev)
    iid = f"indicator--{a['uuid']}"
    status, body = get(client, conn_key, f"collections/all/objects/{iid}/versions/")
    assert status == 200 and len(body["versions"]) == 1  # GREEN: the partner had it
    # The source corrects: RED, not beyond the hub, a newer timestamp.
    a["Tag"] = [{"name": "tlp:red"}]
    a["timestamp"] = "1700000600"
    a["distribution"] = "0"
    ev["Event"]["timestamp"] = "1700000600"
    post(client, source_key, ev)
    for params in ({}, {"match[version]": "all"}, {"match[version]": "first"}):
        status, body = get(client, conn_key, **params)
        assert status == 200 and content(body) == [], params
        assert "198.51.100.200" not in str(body)
    for version in ("all", "first"):
        status, body = get(
            client, conn_key, f"collections/all/objects/{iid}/", **{"match[version]": version}
        )
        assert status == 404 or content(body) == [], (version, body)
    status, body = get(client, conn_key, f"collections/all/objects/{iid}/versions/")
    assert status == 404 or body.get("versions") in (None, []), body
    status, body = get(client, conn_key, "collections/all/manifest/", **{"match[version]": "all"})
    assert status == 404 or content(body) == [], body
    # The source itself sees only the current version (RED never goes over TAXII).
    status, body = get(client, source_key, **{"match[version]": "all"})
    assert "198.51.100.200" not in str(body)


def test_sightings_do_not_name_who_saw_a_value(client, factory) -> None:
    _src, source_key, conn_key = partners(factory)
    a = attr("198.51.100.201", "green", to_ids=True)
    a["Sighting"] = [
        {
            "uuid": str(uuid.uuid4()),
            "type": "0",
            "date_sighting": "1700000000",
            "source": "",
            "Organisation": {"uuid": str(uuid.uuid4()), "name": "Some Bank That Was Hit"},
        }
    ]
    ev = event("sightings", tlp="green", attributes=[a])
    post(client, source_key, ev)
    for key in (conn_key, source_key):
        status, body = get(client, key, **{"match[version]": "all"})
        objects = content(body)
        assert status == 200 and any(o["type"] == "indicator" for o in objects)
        assert "Some Bank That Was Hit" not in str(body)
        assert not [o for o in objects if o["type"] == "sighting"]
        assert [o["name"] for o in objects if o["type"] == "identity"] == ["Source"]
        ids = {o["id"] for o in objects}
        for obj in objects:  # no reference to what was dropped
            for ref in obj.get("object_refs", []):
                assert ref in ids or ref.startswith("marking-definition--"), ref


def test_event_galaxies_do_not_carry_the_container_alone(client, factory) -> None:
    _src, source_key, conn_key = partners(factory)
    ev = event(
        "SECRET TITLE galaxy",
        tlp="green",
        attributes=[attr("192.0.2.7", "amber", to_ids=True)],
        Galaxy=galaxy("APT-SECRET"),
    )
    post(client, source_key, ev)
    view = client.get(
        f"/misp/events/view/{ev['Event']['uuid']}",
        headers={"Authorization": conn_key, "Accept": "application/json"},
    )
    assert view.status_code == 404
    status, body = get(client, conn_key, **{"match[version]": "all"})
    assert status == 200 and content(body) == [], body
    assert "SECRET TITLE" not in str(body) and "APT-SECRET" not in str(body)
    for kind in ("grouping", "report", "threat-actor", "identity"):
        status, body = get(client, conn_key, **{"match[type]": kind})
        assert content(body) == [], kind
    # The source gets its own event back, container and galaxy included.
    status, body = get(client, source_key)
    types = {_container(o["type"]) for o in content(body)}
    assert {"grouping", "threat-actor", "indicator"} <= types, types


def test_event_galaxies_go_with_a_visible_attribute(client, factory) -> None:
    _src, source_key, conn_key = partners(factory)
    ev = event(
        "visible galaxy",
        tlp="green",
        attributes=[
            attr("192.0.2.8", "amber", to_ids=True),
            attr("192.0.2.9", "green", to_ids=True),
        ],
        Galaxy=galaxy("APT-VISIBLE"),
    )
    post(client, source_key, ev)
    status, body = get(client, conn_key)
    objects = content(body)
    types = {_container(o["type"]) for o in objects}
    assert {"grouping", "threat-actor", "indicator", "identity"} <= types, types
    assert "192.0.2.9" in str(body) and "192.0.2.8" not in str(body)
    grouping = next(o for o in objects if _container(o["type"]) == "grouping")
    ids = {o["id"] for o in objects}
    assert all(r in ids or r.startswith("marking-definition--") for r in grouping["object_refs"])


def test_a_report_alone_gives_the_event_substance(client, factory) -> None:
    _src, source_key, conn_key = partners(factory)
    ev = event("report only", tlp="green", attributes=[attr("192.0.2.10", "amber")])
    ev["Event"]["EventReport"] = [
        {
            "uuid": str(uuid.uuid4()),
            "name": "a report",
            "content": "nothing referenced",
            "distribution": "5",
            "timestamp": "1700000000",
            "deleted": False,
        }
    ]
    post(client, source_key, ev)
    status, body = get(client, conn_key)
    types = {o["type"] for o in content(body)}
    assert "note" in types and "192.0.2.10" not in str(body), types


def _container(kind: str) -> str:
    """An event's container: misp-stix makes a report of a published event, else a grouping."""
    return "grouping" if kind == "report" else kind
