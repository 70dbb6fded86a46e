"""Regression tests for what the MISP API let slip about attributes and events a caller may
not receive (security review): restSearch matching withheld attributes, ``attribute_count``
counting them, sightings written on (and uuids probed in) events the caller may not see,
and HEAD answering otherwise than the view."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

from sqlalchemy import func, select

from hub.db import session_scope
from hub.models import Event, Sighting
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import Who, make_people


def push(client: Any, who: Who, ev: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/misp/events/add/metadata:1", json=ev, headers=who.headers)
    assert r.status_code == 200, r.text
    return ev["Event"]


def search(client: Any, who: Who, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.post("/misp/events/restSearch", json=body, headers=who.headers)
    assert r.status_code == 200, r.text
    return [e["Event"] for e in r.json()["response"]]


def sighting(attr_uuid: str) -> dict[str, Any]:
    return {
        "uuid": str(uuid_mod.uuid4()),
        "attribute_uuid": attr_uuid,
        "type": "0",
        "source": "ids",
        "date_sighting": "1700000000",
    }


def stored_sightings(maker: Any) -> int:
    with session_scope(maker) as s:
        return int(s.scalar(select(func.count(Sighting.id))) or 0)


def test_rest_search_matches_only_attributes_the_caller_receives(client, factory) -> None:
    source, people = make_people(factory)
    conn, eco = people["conn"], people["eco"]  # connection: up to GREEN; ecosystem: AMBER
    ev = push(
        client,
        source,
        event(
            "oracle",
            tlp="green",
            attributes=[
                attr("198.51.100.1"),
                attr("secret.example", "amber", type="domain", category="Network activity"),
            ],
        ),
    )
    for value in ("secret.example", "secret.%", "secret.exampl_", "%.example", "nothere.x"):
        assert search(client, conn, {"value": value}) == [], value
    assert search(client, conn, {"type": "domain"}) == []
    assert search(client, conn, {"value": "secret.example", "type": "domain"}) == []
    # What the caller receives still matches, and comes without the withheld attribute.
    got = search(client, conn, {"value": "198.51.100.%"})
    assert [e["uuid"] for e in got] == [ev["uuid"]]
    assert [a["value"] for a in got[0]["Attribute"]] == ["198.51.100.1"]
    # Whoever receives the attribute finds the event by it.
    assert [e["uuid"] for e in search(client, eco, {"value": "secret.%"})] == [ev["uuid"]]


def test_rest_search_pages_over_what_matches_for_the_caller(client, factory) -> None:
    source, people = make_people(factory)
    conn = people["conn"]
    older = push(client, source, event("visible match", attributes=[attr("shared.example")]))
    push(  # newer: listed first; matches only by an AMBER attribute the caller does not get
        client,
        source,
        event("hidden match", attributes=[attr("192.0.2.7"), attr("shared.example", "amber")]),
    )
    got = search(client, conn, {"value": "shared.example", "limit": 1, "page": 1})
    assert [e["uuid"] for e in got] == [older["uuid"]]
    assert search(client, conn, {"value": "shared.example", "limit": 1, "page": 2}) == []


def test_attribute_count_is_what_the_caller_receives(client, factory) -> None:
    source, people = make_people(factory)
    conn = people["conn"]
    ev = push(
        client,
        source,
        event(
            "counts",
            attributes=[attr("192.0.2.1"), attr("192.0.2.2", "amber"), attr("192.0.2.3", "amber")],
        ),
    )
    view = client.get(f"/misp/events/view/{ev['uuid']}", headers=conn.headers).json()["Event"]
    assert len(view["Attribute"]) == 1 and view["attribute_count"] == "1"
    found = search(client, conn, {"eventid": ev["uuid"]})
    assert found[0]["attribute_count"] == "1"
    found = search(client, conn, {"eventid": ev["uuid"], "metadata": 1})
    assert found[0]["attribute_count"] == "1"
    rows = client.post("/misp/events/index", json={}, headers=conn.headers).json()
    row = next(r for r in rows if r["uuid"] == ev["uuid"])
    assert row.get("attribute_count") in (None, "1")
    # The creator's own view counts everything it receives back.
    mine = client.get(f"/misp/events/view/{ev['uuid']}", headers=source.headers).json()["Event"]
    assert mine["attribute_count"] == "3"


def test_bulk_sightings_need_an_event_the_caller_may_see(client, factory, maker) -> None:
    source, people = make_people(factory)
    conn = people["conn"]
    red = push(
        client,
        source,
        event("hub only", tlp="red", distribution=0, attributes=[attr("192.0.2.99")]),
    )
    red_attr = red["Attribute"][0]["uuid"]
    with session_scope(maker) as s:
        red_id = s.scalar(select(Event.id).where(Event.uuid == red["uuid"]))
    # The creator may sight its own event, even one the hub keeps for itself.
    mine = sighting(red_attr)
    r = client.post(
        f"/misp/sightings/bulkSaveSightings/{red['uuid']}", json=[mine], headers=source.headers
    )
    assert r.status_code == 200 and r.json()["success"] == "1 sightings added."
    before = stored_sightings(maker)
    answers = []
    for ident in (str(red_id), red["uuid"], "999999", str(uuid_mod.uuid4())):
        r = client.post(
            f"/misp/sightings/bulkSaveSightings/{ident}",
            json=[sighting(red_attr)],
            headers=conn.headers,
        )
        body = r.json()
        answers.append((r.status_code, {k: str(v).replace(ident, "X") for k, v in body.items()}))
    assert answers[0][0] == 404
    assert all(a == answers[0] for a in answers), answers
    assert stored_sightings(maker) == before
    # Which sighting uuids exist is not told for an event the caller may not see.
    for ident in (red["uuid"], str(red_id)):
        r = client.post(
            f"/misp/sightings/filterSightingUuidsForPush/{ident}",
            json=[mine["uuid"]],
            headers=conn.headers,
        )
        assert r.status_code == 200 and r.json() == []
    r = client.post(
        f"/misp/sightings/filterSightingUuidsForPush/{red['uuid']}",
        json=[mine["uuid"]],
        headers=source.headers,
    )
    assert r.json() == [mine["uuid"]]


def test_bulk_sightings_only_on_attributes_the_caller_receives(client, factory, maker) -> None:
    source, people = make_people(factory)
    conn = people["conn"]
    ev = push(
        client, source, event("mixed", attributes=[attr("192.0.2.10"), attr("192.0.2.11", "amber")])
    )
    green, amber = (a["uuid"] for a in ev["Attribute"])
    before = stored_sightings(maker)
    r = client.post(
        f"/misp/sightings/bulkSaveSightings/{ev['uuid']}",
        json=[sighting(green), sighting(amber)],
        headers=conn.headers,
    )
    assert r.status_code == 200 and r.json()["success"] == "1 sightings added."
    assert stored_sightings(maker) == before + 1


def test_head_answers_as_the_view(client, factory) -> None:
    source, people = make_people(factory)
    conn, core = people["conn"], people["core"]
    other = str(uuid_mod.uuid4())
    group = {
        "uuid": str(uuid_mod.uuid4()),
        "name": "sg",
        "SharingGroupOrg": [{"Organisation": {"uuid": other, "name": "x"}}],
    }
    events = [
        push(client, source, event("red", tlp="red", distribution=0)),
        push(client, source, event("all amber", attributes=[attr("192.0.2.20", "amber")])),
        push(
            client,
            source,
            event(
                "elsewhere", attributes=[attr("192.0.2.21", distribution="4", SharingGroup=group)]
            ),
        ),
        push(client, source, event("green")),
    ]
    for who in (conn, core):
        for ev in events:
            get = client.get(f"/misp/events/view/{ev['uuid']}", headers=who.headers)
            head = client.head(f"/misp/events/view/{ev['uuid']}", headers=who.headers)
            assert head.status_code == (200 if get.status_code == 200 else 404), (
                who.name,
                ev["info"],
            )


def test_head_on_a_hidden_element_answers_as_on_a_missing_one(client, factory) -> None:
    """HEAD on an attribute or object the caller may not receive is a 404 with exactly the
    headers of a uuid the hub never had: no audit entry number (the refusal's entry) to tell
    them apart."""
    source, people = make_people(factory)
    conn = people["conn"]  # connection tier: up to GREEN
    hidden_obj = str(uuid_mod.uuid4())
    ev = event(
        "head oracle",
        tlp="green",
        attributes=[
            attr("198.51.100.1"),
            attr("secret.example", "amber", type="domain", category="Network activity"),
        ],
    )
    ev["Event"]["Object"] = [
        {
            "uuid": hidden_obj,
            "name": "domain-ip",
            "meta-category": "network",
            "template_uuid": "43b3b146-77eb-4931-b4cc-b66c60f28734",
            "template_version": "9",
            "distribution": "5",
            "Tag": [{"name": "tlp:amber"}],
            "Attribute": [
                attr(
                    "hidden.example",
                    "amber",
                    type="domain",
                    category="Network activity",
                    object_relation="domain",
                )
            ],
        }
    ]
    stored = push(client, source, ev)
    hidden_attr = next(a["uuid"] for a in stored["Attribute"] if a["value"] == "secret.example")
    for path, uuid in (
        ("/misp/attributes/view/", hidden_attr),
        ("/misp/objects/view/", hidden_obj),
    ):
        seen = client.head(path + uuid, headers=source.headers)
        assert seen.status_code == 200, path  # its source receives it
        hidden = client.head(path + uuid, headers=conn.headers)
        missing = client.head(path + str(uuid_mod.uuid4()), headers=conn.headers)
        assert hidden.status_code == missing.status_code == 404, path
        strip = {"x-request-id", "date"}
        assert {k: v for k, v in hidden.headers.items() if k not in strip} == {
            k: v for k, v in missing.headers.items() if k not in strip
        }, path
        assert "x-hub-audit-seq" not in hidden.headers, path
