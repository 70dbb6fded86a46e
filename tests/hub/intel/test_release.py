"""The release path: each partner's REST view holds exactly what DESIGN.md §3 allows.

The oracle below is written from the rule table, independently of `tlp/`: labels by rank,
tier ceilings, the TLP agreement, addressing (community, sharing group, the hub alone).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from hub.audit import releases as release_index
from hub.audit import service as audit
from hub.models import AuditEntry, Release
from hub.vocabulary import Role
from tests.builders import attr, event

RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
CEILING = {"core": 4, "ecosystem": 2, "connection": 1}


@dataclass
class Who:
    name: str
    tier: str
    tlp: bool
    uuid: str = ""
    key: str = ""


def oracle(who: Who, *, label: str, distribution: int, members: set[str], source: str) -> bool:
    """May `who` receive an element with this label and addressing over REST?"""
    if who.uuid == source:
        return True
    rank = RANK[label]
    if rank > CEILING[who.tier]:
        return False
    if not who.tlp and rank > 0:
        return False
    if distribution == 0:
        return False
    if distribution in (1, 2, 3):
        return rank <= RANK["amber"]  # AMBER+STRICT and RED need naming
    return who.uuid in members  # sharing group: named, up to the ceiling (RED over REST too)


PARTNERS = [
    Who("core", "core", True),
    Who("eco", "ecosystem", True),
    Who("conn", "connection", True),
    Who("core-no-tlp", "core", False),
]


@pytest.fixture
def world(client: TestClient, factory):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    source_key = factory.key(Role.PARTNER, source)
    people = {}
    for who in PARTNERS:
        partner = factory.partner(f"P-{who.name}", tier=who.tier, tlp=who.tlp)
        people[who.name] = Who(
            who.name, who.tier, who.tlp, partner.uuid, factory.key(Role.PARTNER, partner)
        )
    members = [people["eco"].uuid, people["conn"].uuid, people["core-no-tlp"].uuid]
    labels = ["clear", "green", "amber", "amber+strict", "red"]
    events = []
    for ev_label, dist in itertools.product(labels, (0, 1, 3, 4)):
        attrs = [
            attr(f"10.{RANK[ev_label]}.{dist}.{i}", a_label)
            for i, a_label in enumerate([None, *labels])
        ]
        events.append(
            event(
                f"{ev_label} d{dist}",
                tlp=ev_label,
                distribution=dist,
                attributes=attrs,
                members=members if dist == 4 else None,
            )
        )
    r = client.post("/api/v1/events", json=events, headers={"Authorization": source_key})
    assert r.status_code == 201, r.text
    return source, people, events, set(members)


def expected_attributes(who: Who, ev: dict, members: set[str], source: str) -> set[str]:
    inner = ev["Event"]
    ev_label = inner["Tag"][0]["name"][4:]
    dist = int(inner["distribution"])
    if not oracle(who, label=ev_label, distribution=dist, members=members, source=source):
        return set()
    out = set()
    for a in inner["Attribute"]:
        own = a["Tag"][0]["name"][4:] if a.get("Tag") else ev_label
        label = max(own, ev_label, key=RANK.get)  # an attribute never lowers its event
        if oracle(who, label=label, distribution=dist, members=members, source=source):
            out.add(a["uuid"])
    return out


@pytest.mark.parametrize("name", [w.name for w in PARTNERS])
def test_each_partner_sees_exactly_what_the_rules_allow(client, world, name, maker) -> None:
    source, people, events, members = world
    who = people[name]
    headers = {"Authorization": who.key}
    listed, cursor = set(), None
    while True:
        page = client.get(
            "/api/v1/events?limit=7" + (f"&cursor={cursor}" if cursor else ""), headers=headers
        ).json()
        listed |= {e["uuid"] for e in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    wanted = {
        ev["Event"]["uuid"]: expected_attributes(who, ev, members, source.uuid) for ev in events
    }
    assert listed == {u for u, attrs in wanted.items() if attrs}
    for uuid, attrs in wanted.items():
        r = client.get(f"/api/v1/events/{uuid}", headers=headers)
        if not attrs:
            assert r.status_code == 404, (name, uuid)
            continue
        assert r.status_code == 200
        got = r.json()["Event"]
        assert {a["uuid"] for a in got["Attribute"]} == attrs, (name, got["info"])
        labels = []
        for a in got["Attribute"]:
            tlp_tags = [t["name"] for t in a["Tag"] if t["name"].startswith("tlp:")]
            assert len(tlp_tags) == 1
            labels.append(tlp_tags[0][4:])
        top = max(labels, key=RANK.get)
        assert r.headers["X-Hub-TLP"] == f"TLP:{top.upper()}"
        assert r.json()["tlp"]["label"] == top


def test_every_delivery_and_denial_has_exactly_one_audit_entry(client, world, maker) -> None:
    source, people, events, members = world
    who = people["eco"]
    with maker() as s:
        start = s.scalar(select(func.max(AuditEntry.seq))) or 0
    statuses = [
        client.get(
            f"/api/v1/events/{ev['Event']['uuid']}", headers={"Authorization": who.key}
        ).status_code
        for ev in events
    ]
    client.get("/api/v1/events", headers={"Authorization": who.key})
    with maker() as s:
        entries = list(
            s.scalars(select(AuditEntry).where(AuditEntry.seq > start).order_by(AuditEntry.seq))
        )
        assert audit.verify(s).ok
        release_index.catch_up(s)
        releases = s.scalar(
            select(func.count(Release.id)).where(
                Release.audit_seq > start, Release.reason != "listed"
            )
        )
    # One entry per decision; a decision that withheld part of what it delivered has its
    # refusal beside it (hub.audit.addressing: the delivery is what the partner may read).
    beside = [e for e in entries if e.body["details"].get("delivery") is not None]
    decisions = [e for e in entries if e not in beside]
    assert all(b.seq - 1 in {e.seq for e in decisions} for b in beside)
    singles = [e for e in decisions if e.action in ("release", "deny")]
    assert [e.action for e in singles] == ["release" if st == 200 else "deny" for st in statuses]
    assert all(e.recipient_uuid == who.uuid for e in entries)
    assert [e.action for e in decisions].count("release.page") == 1
    assert releases == len(events)


def test_operators_see_who_received_what(client, world, auth) -> None:
    source, people, events, members = world
    uuid = events[5]["Event"]["uuid"]  # green, distribution 1
    for who in people.values():
        client.get(f"/api/v1/events/{uuid}", headers={"Authorization": who.key})
    rows = client.get(f"/api/v1/admin/events/{uuid}/releases", headers=auth).json()["items"]
    by = {r["recipient"]: (r["decision"], r["reason"]) for r in rows}
    assert by[people["core"].uuid][0] == "allow"
    assert by[people["core-no-tlp"].uuid][0] == "deny"
    partner_rows = client.get(
        f"/api/v1/admin/partners/{people['core'].uuid}/releases", headers=auth
    ).json()["items"]
    assert partner_rows[0]["event_uuid"] == uuid
    mine = client.get("/api/v1/me/releases", headers={"Authorization": people["core"].key})
    assert mine.json()["items"][0]["event_uuid"] == uuid


def test_stix_format_marks_every_object(client, world) -> None:
    source, people, events, members = world
    uuid = events[5]["Event"]["uuid"]
    r = client.get(
        f"/api/v1/events/{uuid}?format=stix", headers={"Authorization": people["core"].key}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/stix+json")
    bundle = r.json()
    definitions = {o["id"] for o in bundle["objects"] if o["type"] == "marking-definition"}
    for obj in bundle["objects"]:
        if obj["type"] != "marking-definition":
            assert obj["object_marking_refs"], obj["id"]
            assert set(obj["object_marking_refs"]) <= definitions


def test_attribute_search_respects_the_rules(client, world) -> None:
    source, people, events, members = world
    who = people["conn"]
    r = client.get("/api/v1/attributes?type=ip-dst&limit=500", headers={"Authorization": who.key})
    assert r.status_code == 200
    got = {a["uuid"] for a in r.json()["items"]}
    wanted = set().union(*(expected_attributes(who, ev, members, source.uuid) for ev in events))
    assert got == wanted
    one = next(iter(got))
    value = next(a["value"] for ev in events for a in ev["Event"]["Attribute"] if a["uuid"] == one)
    r = client.get(f"/api/v1/attributes?value={value}", headers={"Authorization": who.key})
    assert [a["uuid"] for a in r.json()["items"]] == [one]


def test_listing_pages_use_at_most_three_statements(client, world, engine) -> None:
    source, people, events, members = world
    headers = {"Authorization": people["core"].key}
    client.get("/api/v1/events?limit=1", headers=headers)  # key's last use recorded once
    counted: list[str] = []

    def count(conn, cursor, statement, *args):
        counted.append(statement)

    for limit in (1, 10, 50):
        counted.clear()
        sa_event.listen(engine, "before_cursor_execute", count)
        try:
            r = client.get(f"/api/v1/events?limit={limit}", headers=headers)
        finally:
            sa_event.remove(engine, "before_cursor_execute", count)
        assert r.status_code == 200
        # Not counted: the read of PostgreSQL's clock that dates a cursor handed out (one per
        # page, whatever its size: hub.sharing.feed).
        statements = [
            s
            for s in counted
            if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))
            and s.strip() != "SELECT clock_timestamp()"
        ]
        assert len(statements) <= 3, statements
