"""Who sees what over TAXII: every object checked against an oracle written from DESIGN.md §3,
no reference to what the caller may not see, at most three SQL statements per page."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from taxii2client.v21 import as_pages

import tlp
from hub.db import session_scope
from hub.intel.projection import MAX_RENDER_AT_INGEST, render_pending
from hub.models import StixObject, StixRendering
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.taxii.conftest import RANK, TAXII, collection, taxii_oracle, taxii_server

LABELS = ["clear", "green", "amber", "amber+strict", "red"]
TLP2_IDS = {
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": "clear",
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": "green",
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": "amber",
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": "amber+strict",
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": "red",
}
FROM_ATTRIBUTE = {"indicator", "observed-data", "network-traffic", "ipv4-addr"}


@dataclass
class Who:
    name: str
    tier: str
    tlp: bool
    sector: str
    uuid: str = ""
    key: str = ""


READERS = [
    Who("core", "core", True, "health"),
    Who("eco", "ecosystem", True, "energy"),
    Who("conn", "connection", True, "energy"),
    Who("core-no-tlp", "core", False, "health"),
]


@pytest.fixture
def world(client, factory):
    source = factory.partner("Source CSIRT", type="sectoral-csirt", sectors=["health"])
    source_key = factory.key(Role.PARTNER, source)
    people = {"source": Who("source", "core", True, "health", source.uuid, source_key)}
    for who in READERS:
        partner = factory.partner(f"P-{who.name}", tier=who.tier, tlp=who.tlp, sectors=[who.sector])
        people[who.name] = Who(
            who.name, who.tier, who.tlp, who.sector, partner.uuid, factory.key(Role.SYNC, partner)
        )
    members = {people["eco"].uuid, people["conn"].uuid, people["core-no-tlp"].uuid}
    events = []
    for ev_label, dist in itertools.product(LABELS, (0, 1, 3, 4)):
        attrs = [
            attr(f"10.{RANK[ev_label]}.{dist}.{i}", a_label, to_ids=True)
            for i, a_label in enumerate([None, *LABELS])
        ]
        events.append(
            event(
                f"{ev_label} d{dist}",
                tlp=ev_label,
                distribution=dist,
                attributes=attrs,
                members=sorted(members) if dist == 4 else None,
            )
        )
    r = client.post("/api/v1/events", json=events, headers={"Authorization": source_key})
    assert r.status_code == 201, r.text
    return people, events, members


def expected(who: Who, events: list[dict[str, Any]], members: set[str], source: str):
    """attribute uuid → its label, for the attributes `who` may receive; events with any."""
    attrs: dict[str, str] = {}
    groupings: set[str] = set()
    for ev in events:
        inner = ev["Event"]
        ev_label = inner["Tag"][0]["name"][4:]
        dist = int(inner["distribution"])
        for a in inner["Attribute"]:
            own = a["Tag"][0]["name"][4:] if a.get("Tag") else ev_label
            label = max(own, ev_label, key=RANK.get)  # an attribute never lowers its event
            if taxii_oracle(
                who.uuid,
                who.tier,
                who.tlp,
                label=label,
                distribution=dist,
                members=members,
                source=source,
            ):
                attrs[a["uuid"]] = label
                groupings.add(f"grouping--{inner['uuid']}")
    return attrs, groupings


def read_all(url: str, key: str, alias: str = "all") -> list[dict[str, Any]]:
    coll = collection(url, key, alias)
    return [o for env in as_pages(coll.get_objects, per_request=50) for o in env.get("objects", [])]


def references(obj: dict[str, Any]) -> list[str]:
    out = []
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            out.append(value)
        elif key.endswith("_refs") and isinstance(value, list):
            out += value
    return out


@pytest.mark.parametrize("name", ["source", *(w.name for w in READERS)])
def test_each_partner_sees_exactly_what_the_rules_allow(world, server_url, name) -> None:
    people, events, members = world
    who = people[name]
    source = people["source"].uuid
    got = read_all(server_url, who.key)
    content = [o for o in got if o["type"] != "marking-definition"]
    ids = {o["id"] for o in content}
    attrs, groupings = expected(who, events, members, source)
    by_attr: dict[str, set[str]] = {}
    for o in content:
        if o["type"] in FROM_ATTRIBUTE:
            by_attr.setdefault(o["id"].split("--", 1)[1], set()).add(o["type"])
    assert set(by_attr) == set(attrs), name
    assert all(types == FROM_ATTRIBUTE for types in by_attr.values())
    # the event's container: a report for a published event (misp-stix), else a grouping
    containers = {
        o["id"].replace("report--", "grouping--", 1)
        for o in content
        if o["type"] in ("grouping", "report")
    }
    assert containers == groupings
    relationships = [o for o in content if o["type"] == "relationship"]
    assert {r["source_ref"].split("--", 1)[1] for r in relationships} == set(attrs)
    identities = {o["id"] for o in content if o["type"] == "identity"}
    assert identities == ({f"identity--{source}"} if groupings else set())
    for o in content:
        marks = [TLP2_IDS[m] for m in o["object_marking_refs"] if m in TLP2_IDS]
        assert len(marks) == 1, o["id"]  # exactly one TLP 2.0 marking on every object
        assert marks[0] != "red"  # RED never goes over TAXII
        if o["type"] in FROM_ATTRIBUTE:
            assert marks[0] == attrs[o["id"].split("--", 1)[1]], o["id"]
        for ref in references(o):
            assert ref in ids or ref in TLP2_IDS, (o["id"], ref)  # nothing dangles
    definitions = {o["id"] for o in got if o["type"] == "marking-definition"}
    assert definitions == {m for o in content for m in o["object_marking_refs"]}


def test_partners_see_different_collections(world, server_url) -> None:
    people, events, members = world
    aliases = {
        name: [c.alias for c in taxii_server(server_url, people[name].key).api_roots[0].collections]
        for name in ("core", "eco", "conn", "core-no-tlp")
    }
    assert aliases == {
        "core": ["all", "tlp-clear", "tlp-green", "tlp-amber", "tlp-amber-strict", "sector-health"],
        "eco": ["all", "tlp-clear", "tlp-green", "tlp-amber", "sector-energy"],
        "conn": ["all", "tlp-clear", "tlp-green", "sector-energy"],
        "core-no-tlp": ["all", "tlp-clear", "sector-health"],
    }
    core = people["core"]
    everything = [o for o in read_all(server_url, core.key) if o["type"] != "marking-definition"]
    for label in ("green", "amber"):
        alias = "tlp-" + label.replace("+", "-")
        only = [
            o for o in read_all(server_url, core.key, alias) if o["type"] != "marking-definition"
        ]
        wanted = [o["id"] for o in everything if TLP2_IDS.get(o["object_marking_refs"][0]) == label]
        assert sorted(o["id"] for o in only) == sorted(wanted) and wanted
    health = read_all(server_url, core.key, "sector-health")
    assert sorted(o["id"] for o in health if o["type"] != "marking-definition") == sorted(
        o["id"] for o in everything
    )  # every object here comes from the source, which is in the health sector
    assert "objects" not in collection(server_url, people["eco"].key, "sector-energy").get_objects()


def test_sector_collection_of_another_sector_is_not_found(world, client) -> None:
    people, events, members = world
    r = client.get(
        "/taxii2/cwn/collections/sector-health/objects/",
        headers={"Authorization": people["eco"].key, "Accept": TAXII},
    )
    assert r.status_code == 404 and r.headers["content-type"] == TAXII


def test_at_most_three_statements_per_page(world, client, engine) -> None:
    people, events, members = world
    headers = {"Authorization": people["core"].key, "Accept": TAXII}
    client.get("/taxii2/cwn/collections/", headers=headers)  # key's last use recorded once
    counted: list[str] = []

    def count(conn, cursor, statement, *args):
        counted.append(statement)

    urls = [
        f"/taxii2/cwn/collections/{alias}/{what}/?limit={limit}"
        for alias in ("all", "tlp-green", "sector-health")
        for what in ("objects", "manifest")
        for limit in (1, 10, 100, 500)
    ]
    urls.append("/taxii2/cwn/collections/sector-energy/objects/")  # not a member: 404
    for url in urls:
        counted.clear()
        sa_event.listen(engine, "before_cursor_execute", count)
        try:
            r = client.get(url, headers=headers)
        finally:
            sa_event.remove(engine, "before_cursor_execute", count)
        assert r.status_code in (200, 404), r.text
        statements = [s for s in counted if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]
        assert len(statements) <= 3, (url, statements)


def test_a_wider_release_reaches_pollers_with_added_after(client, factory, server_url) -> None:
    """An object that becomes visible later (same version, wider addressing) gets a new
    date_added, so a poller that went past its first appearance still receives it."""
    source = factory.partner("Source")
    source_key = factory.key(Role.PARTNER, source)
    reader = factory.partner("Reader", tier="connection")
    coll = collection(server_url, factory.key(Role.PARTNER, reader), "all")
    ev = event(
        "widened",
        tlp="green",
        distribution=0,  # first for the hub alone
        attributes=[attr("203.0.113.5", None, to_ids=True, timestamp="1700000000")],
        timestamp=1_700_000_000,
    )
    uuid = ev["Event"]["Attribute"][0]["uuid"]

    def post(body: dict[str, Any]) -> None:
        r = client.post("/api/v1/events", json=body, headers={"Authorization": source_key})
        assert r.status_code == 201, r.text

    post(ev)
    assert "objects" not in coll.get_objects()
    post(event("marker", attributes=[attr("203.0.113.6", to_ids=True)]))
    last = max(m["date_added"] for m in coll.get_manifest()["objects"])
    ev["Event"]["distribution"] = "1"  # now for the community
    ev["Event"]["timestamp"] = "1700000500"
    post(ev)
    new = {o["id"] for o in coll.get_objects(added_after=last)["objects"]}
    container = f"--{ev['Event']['uuid']}"
    assert f"indicator--{uuid}" in new and any(i.endswith(container) for i in new - {uuid})
    # ... and narrowing it again withdraws the same objects.
    ev["Event"]["distribution"] = "0"
    ev["Event"]["timestamp"] = "1700000900"
    post(ev)
    pages = as_pages(coll.get_objects, per_request=20)
    assert f"indicator--{uuid}" not in {o["id"] for env in pages for o in env.get("objects", [])}


def test_a_conversion_failure_does_not_break_ingest(client, factory, maker, monkeypatch) -> None:
    from hub.intel import stix_convert

    source = factory.partner("Source")
    key = factory.key(Role.PARTNER, source)

    def unconvertible(event: object) -> object:
        raise ValueError("misp-stix cannot convert this event")

    monkeypatch.setattr(stix_convert, "event_to_bundle", unconvertible)
    broken = attr("192.0.2.7", to_ids=True)
    ev = event("unconvertible", attributes=[broken])
    r = client.post("/api/v1/events", json=ev, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    with maker() as s:
        rendering = s.scalar(select(StixRendering))
        assert rendering is not None and rendering.status == "failed" and rendering.reason
        assert s.scalar(select(func.count(StixObject.id))) == 0
    r = client.get(
        "/taxii2/cwn/collections/all/objects/", headers={"Authorization": key, "Accept": TAXII}
    )
    assert r.status_code == 200 and "objects" not in r.json()


def test_large_events_are_rendered_in_the_background(client, factory, maker) -> None:
    source = factory.partner("Source")
    key = factory.key(Role.PARTNER, source)
    n = MAX_RENDER_AT_INGEST + 1
    big = event("big", attributes=[attr(f"10.9.{i // 250}.{i % 250}") for i in range(n)])
    r = client.post("/api/v1/events", json=big, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    url = "/taxii2/cwn/collections/all/objects/?limit=10"
    headers = {"Authorization": key, "Accept": TAXII}
    assert "objects" not in client.get(url, headers=headers).json()  # pending: nothing yet
    with session_scope(maker) as session:
        assert render_pending(session, policy=tlp.DEFAULT_POLICY) == 1
    with maker() as s:
        assert s.scalar(select(StixRendering.status)) == "rendered"
        assert s.scalar(select(func.count(StixObject.id))) > 3 * n
    page = client.get(url, headers=headers).json()
    assert page["more"] is True and len(page["objects"]) == 10
