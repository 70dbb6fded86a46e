"""Regression tests for "fail closed at every edge": one per finding of the review, each a
read path that spoke of stored data instead of what the caller receives (DESIGN.md §3,
"What leaves the hub"). Every test failed on the code before the released view."""

from __future__ import annotations

import base64
import copy
import uuid as uuid_mod
from typing import Any

import orjson
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select

from hub.db import session_scope
from hub.models import AuditEntry, EventVersion, Sighting
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import Who, make_people

PRODUCER = 'misp-galaxy:producer="Secret Producer"'


def submit(client: Any, key: str, ev: dict[str, Any]) -> Any:
    r = client.post("/api/v1/events", json=ev, headers={"Authorization": key})
    assert r.status_code in (200, 201), r.text
    return r


def misp(client: Any, who: Who, path: str, body: Any = None) -> Any:
    return client.post(f"/misp/{path}", json=body or {}, headers=who.headers)


def rest(client: Any, who: Who, path: str) -> Any:
    return client.get(f"/api/v1/{path}", headers=who.headers)


@pytest.fixture
def people(factory):
    return make_people(factory, role=Role.PARTNER)


def _json_text(response: Any) -> str:
    return response.text


# --- value oracles through paging -------------------------------------------------------------


def _elsewhere() -> dict[str, Any]:
    """A sharing group naming only an organisation that is not the caller: an attribute
    addressed to it passes the SQL pre-filter on its label, and is withheld by the rules."""
    org = str(uuid_mod.uuid4())
    return {
        "distribution": "4",
        "SharingGroup": {
            "uuid": str(uuid_mod.uuid4()),
            "name": "elsewhere",
            "SharingGroupOrg": [{"Organisation": {"uuid": org, "name": "elsewhere"}}],
        },
    }


def test_attribute_search_pages_hide_hidden_values(client, people) -> None:
    source, who = people
    conn = who["conn"]  # up to GREEN
    hidden = attr("dup.example", type="domain", **_elsewhere())
    shown = attr("dup.example", type="domain")
    submit(client, source.key, event(attributes=[hidden, attr("198.51.100.2")]))
    submit(client, source.key, event(attributes=[shown]))
    # REST: the hidden row comes first by id; a page of one holds the visible one, no more.
    r = rest(client, conn, "attributes?value=dup.example&limit=1").json()
    assert [a["uuid"] for a in r["items"]] == [shown["uuid"]] and r["next_cursor"] is None
    # /misp: a LIKE pattern that matches only the hidden token answers like no match at all.
    token = attr("tok-4711-secret", type="text", category="Other", **_elsewhere())
    submit(client, source.key, event(attributes=[token, attr("198.51.100.3")]))
    for pattern in ("tok-4711%", "tok-47__-secret", "%secret"):
        hit = misp(client, conn, "attributes/restSearch", {"value": pattern, "limit": 1})
        miss = misp(client, conn, "attributes/restSearch", {"value": "zz%", "limit": 1})
        assert hit.status_code == miss.status_code == 200
        assert hit.json() == miss.json() == {"response": {"Attribute": []}}
        assert hit.headers["X-Result-Count"] == miss.headers["X-Result-Count"] == "0"
    page = misp(client, conn, "attributes/restSearch", {"value": "dup%", "limit": 1, "page": 1})
    assert [a["uuid"] for a in page.json()["response"]["Attribute"]] == [shown["uuid"]]


def test_cursors_are_opaque_and_cannot_be_forged(client, people) -> None:
    source, who = people
    for i in range(3):
        submit(client, source.key, event(f"e{i}", attributes=[attr(f"198.51.100.{i + 10}")]))
    r = rest(client, who["core"], "events?limit=1").json()
    cursor = r["next_cursor"]
    assert cursor
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(raw)  # not a readable position (row ids would count hidden rows)
    forged = base64.urlsafe_b64encode(orjson.dumps({"t": "2000-01-01T00:00:00", "id": 1}))
    bad = rest(client, who["core"], f"events?limit=1&cursor={forged.decode()}")
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"
    # a cursor continues only its own query, for its own caller
    other = rest(client, who["eco"], f"events?limit=1&cursor={cursor}")
    assert other.status_code == 422
    assert rest(client, who["core"], f"events?limit=1&since=5&cursor={cursor}").status_code == 422
    assert rest(client, who["core"], f"events?limit=1&cursor={cursor}").status_code == 200


# --- proposals, sightings, submitted identities -------------------------------------------------


def test_proposals_and_other_organisations_sightings_never_leave(client, people, maker) -> None:
    source, who = people
    core = who["core"]
    target = attr("198.51.100.20")
    proposal = {
        "uuid": str(uuid_mod.uuid4()),
        "type": "ip-dst",
        "value": "203.0.113.66",
        "category": "Network activity",
        "email": "proposer@other.example",
        "Org": {"uuid": str(uuid_mod.uuid4()), "name": "Third Party Org"},
    }
    target["ShadowAttribute"] = [dict(proposal, uuid=str(uuid_mod.uuid4()))]
    target["Sighting"] = [
        {
            "uuid": str(uuid_mod.uuid4()),
            "type": "0",
            "date_sighting": "1700000000",
            "source": "sensor of Third Party Org",
            "Organisation": {"uuid": str(uuid_mod.uuid4()), "name": "Third Party Org"},
        }
    ]
    ev = event(
        "with proposals",
        attributes=[target],
        ShadowAttribute=[proposal],
        event_creator_email="someone-else@victim.example",
    )
    submit(client, source.key, ev)
    uuid = ev["Event"]["uuid"]
    for response in (
        rest(client, core, f"events/{uuid}"),
        rest(client, core, f"events/{uuid}?format=stix"),
        client.get(f"/misp/events/view/{uuid}", headers=core.headers),
    ):
        assert response.status_code == 200, response.text
        text = response.text
        for secret in (
            "203.0.113.66",
            "proposer@other.example",
            "Third Party Org",
            "someone-else@victim.example",
            "ShadowAttribute",
        ):
            assert secret not in text, (secret, response.url)
    # the sighting was recorded as the submitter's: it reports what it saw itself
    with session_scope(maker) as s:
        orgs = set(s.scalars(select(Sighting.org_uuid)))
    assert orgs == {source.uuid}


# --- filters over released attributes ----------------------------------------------------------


def test_event_filters_match_only_released_attributes(client, people) -> None:
    source, who = people
    conn = who["conn"]
    ev = event(attributes=[attr("198.51.100.30"), attr("hidden.example", "amber", type="domain")])
    submit(client, source.key, ev)
    assert rest(client, conn, "events?type=domain").json()["items"] == []
    listed = rest(client, conn, "events?type=ip-dst").json()["items"]
    assert [e["uuid"] for e in listed] == [ev["Event"]["uuid"]]
    assert listed[0]["attribute_count"] == 1  # not the stored 2
    assert "version" not in listed[0]  # internal version numbers count hidden edits
    eco = rest(client, who["eco"], "events?type=domain").json()["items"]
    assert [e["uuid"] for e in eco] == [ev["Event"]["uuid"]] and eco[0]["attribute_count"] == 2


# --- local tags and TLP:EX:CHR ---------------------------------------------------------------------


def test_local_tags_never_leave(client, people) -> None:
    source, who = people
    core = who["core"]
    tagged = attr("198.51.100.40", Tag=[{"name": "internal:case-77", "local": True}])
    ev = event(attributes=[tagged])
    ev["Event"]["Tag"].append({"name": "internal:watchlist", "local": True})
    submit(client, source.key, ev)
    listed = rest(client, core, "events").json()["items"]
    assert "internal:watchlist" not in listed[0]["tags"]
    assert rest(client, core, "events?tag=internal:watchlist").json()["items"] == []
    index = misp(client, core, "events/index", {})
    assert "internal:" not in index.text
    assert misp(client, core, "events/index", {"tag": "internal:watchlist"}).json() == []
    found = rest(client, core, "attributes?value=198.51.100.40").json()["items"]
    assert found and "internal:" not in orjson.dumps(found).decode()
    assert (
        "internal:"
        not in client.get(f"/misp/events/view/{ev['Event']['uuid']}", headers=core.headers).text
    )


def test_a_chr_producer_is_not_listed_filtered_on_or_collected_by_sector(
    client, factory, people
) -> None:
    source, who = people
    core = who["core"]
    ev = event("chr", attributes=[attr("198.51.100.50")])
    ev["Event"]["Tag"] += [{"name": "tlp:ex:chr"}, {"name": PRODUCER}]
    submit(client, source.key, ev)
    listed = rest(client, core, "events").json()["items"]
    assert PRODUCER not in listed[0]["tags"] and "orgc" not in listed[0]
    assert misp(client, core, "events/index", {"tag": PRODUCER}).json() == []
    excluded = misp(client, core, "events/index", {"tag": f"!{PRODUCER}"}).json()
    assert [r["uuid"] for r in excluded] == [ev["Event"]["uuid"]]  # as if it had no such tag
    assert "Secret Producer" not in misp(client, core, "events/index", {}).text


# --- withdrawn content -----------------------------------------------------------------------------


def test_withdrawn_content_reaches_only_who_had_it(client, factory, people) -> None:
    source, who = people
    ev = event(attributes=[attr("198.51.100.60"), attr("198.51.100.61")], timestamp=1_800_000_000)
    submit(client, source.key, ev)
    uuid = ev["Event"]["uuid"]
    assert rest(client, who["core"], f"events/{uuid}").status_code == 200  # core had it
    edit = copy.deepcopy(ev)
    edit["Event"]["timestamp"] = "1800000010"
    gone = dict(ev["Event"]["Attribute"][1], deleted=True, timestamp="1800000010")
    edit["Event"]["Attribute"] = [gone]
    submit(client, source.key, edit)
    had = rest(client, who["core"], f"events/{uuid}?include_deleted=true").json()["Event"]
    assert {a["value"]: a.get("deleted", False) for a in had["Attribute"]} == {
        "198.51.100.60": False,
        "198.51.100.61": True,
    }
    late = rest(client, who["eco"], f"events/{uuid}?include_deleted=true").json()["Event"]
    assert [a["value"] for a in late["Attribute"]] == ["198.51.100.60"]
    pulled = client.get(
        f"/misp/events/view/{uuid}/deleted[]:0/deleted[]:1", headers=who["eco"].headers
    ).json()["Event"]
    assert "198.51.100.61" not in orjson.dumps(pulled).decode()


# --- existence oracles for a uuid the caller may not see ---------------------------------------


def test_a_foreign_uuid_is_answered_as_a_missing_one_and_audited(client, factory, maker) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    source_key = factory.key(Role.PARTNER, source)
    hidden = event("hidden", tlp="red", distribution=0, attributes=[attr("198.51.100.70")])
    submit(client, source_key, hidden)
    other = factory.partner("Other", tier="core")
    key = factory.key(Role.PARTNER, other)
    headers = {"Authorization": key}
    stale = copy.deepcopy(hidden)
    stale["Event"]["timestamp"] = "1"
    r = client.post("/api/v1/events", json=stale, headers=headers)
    assert r.status_code == 403
    assert '"version"' not in r.text and "unchanged" not in r.text
    # /misp: an edit of it answers as for a uuid that does not exist at all
    missing = str(uuid_mod.uuid4())
    for target in (hidden["Event"]["uuid"], missing):
        body = dict(stale["Event"], uuid=target)
        r = client.post(f"/misp/events/edit/{target}", json={"Event": body}, headers=headers)
        assert (r.status_code, r.json()["errors"]) == (404, f"Invalid event {target}")
    offered = [
        {"Event": {"uuid": hidden["Event"]["uuid"], "timestamp": "1"}},
        {"Event": {"uuid": missing, "timestamp": "1"}},
    ]
    wanted = client.post("/misp/events/filterEventIdsForPush", json=offered, headers=headers)
    assert sorted(wanted.json()) == sorted([hidden["Event"]["uuid"], missing])
    # an attribute uuid that belongs to the hidden event: refused without naming anything
    clash = event("clash", attributes=[dict(hidden["Event"]["Attribute"][0])])
    r = client.post("/api/v1/events", json=clash, headers=headers)
    assert r.status_code == 422 and hidden["Event"]["uuid"] not in r.text
    with session_scope(maker) as s:
        refused = s.scalars(select(AuditEntry).where(AuditEntry.action == "submit.refused")).all()
    assert len(refused) >= 2 and all(e.recipient_uuid == other.uuid for e in refused)


def test_a_refused_event_is_decided_from_its_row(client, factory, engine) -> None:
    """Refusing a hidden event reads no snapshot (it would take as long as the event is
    large, unlike the answer for a missing uuid)."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    big = event(
        "big",
        tlp="red",
        distribution=0,
        attributes=[attr(f"10.0.{i // 250}.{i % 250}") for i in range(300)],
    )
    submit(client, factory.key(Role.PARTNER, source), big)
    key = factory.key(Role.PARTNER, factory.partner("Reader", tier="core"))
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        r = client.get(f"/api/v1/events/{big['Event']['uuid']}", headers={"Authorization": key})
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert r.status_code == 404
    assert not any(EventVersion.__tablename__ in s for s in seen), seen


# --- counts, activity and ids of hidden content ----------------------------------------------------


def test_hidden_edits_do_not_move_what_a_partner_sees(client, people) -> None:
    source, who = people
    conn = who["conn"]
    visible, hidden = attr("198.51.100.80"), attr("198.51.100.81", "amber")
    ev = event(attributes=[visible, hidden], timestamp=1_800_000_100)
    submit(client, source.key, ev)
    before = rest(client, conn, "events").json()["items"][0]
    index_before = misp(client, conn, "events/index", {"minimal": 1}).json()[0]
    edit = copy.deepcopy(ev)
    edit["Event"]["timestamp"] = "1800000200"
    edit["Event"]["Attribute"] = [dict(hidden, comment="changed", timestamp="1800000200")]
    submit(client, source.key, edit)
    after = rest(client, conn, "events").json()["items"][0]
    index_after = misp(client, conn, "events/index", {"minimal": 1}).json()[0]
    assert after["timestamp"] == before["timestamp"] and after["attribute_count"] == 1
    assert index_after["timestamp"] == index_before["timestamp"]
    view = client.get(f"/misp/events/view/{ev['Event']['uuid']}", headers=conn.headers)
    assert view.json()["Event"]["timestamp"] == index_after["timestamp"]
    # what the partner does receive moves it
    edit["Event"]["timestamp"] = "1800000300"
    edit["Event"]["Attribute"] = [dict(visible, comment="changed", timestamp="1800000300")]
    submit(client, source.key, edit)
    moved = misp(client, conn, "events/index", {"minimal": 1}).json()[0]
    assert int(moved["timestamp"]) > int(index_before["timestamp"])


def test_numeric_ids_are_per_organisation(client, people) -> None:
    source, who = people
    core, eco = who["core"], who["eco"]
    events = [event(f"n{i}", attributes=[attr(f"198.51.100.{90 + i}")]) for i in range(3)]
    for ev in events:
        submit(client, source.key, ev)
    ids = {r["uuid"]: r["id"] for r in misp(client, core, "events/index", {}).json()}
    others = {r["uuid"]: r["id"] for r in misp(client, eco, "events/index", {}).json()}
    assert set(ids) == set(others) and all(ids[u] != others[u] for u in ids)
    numbers = sorted(int(i) for i in ids.values())
    assert numbers[1:] != [n + 1 for n in numbers[:-1]]  # not consecutive row ids
    uuid = events[0]["Event"]["uuid"]
    mine = client.get(f"/misp/events/view/{ids[uuid]}", headers=core.headers)
    assert mine.status_code == 200 and mine.json()["Event"]["uuid"] == uuid
    assert client.get(f"/misp/events/view/{ids[uuid]}", headers=eco.headers).status_code in (
        200,
        404,
    )
    if others[uuid] != ids[uuid]:
        theirs = client.get(f"/misp/events/view/{ids[uuid]}", headers=eco.headers)
        assert theirs.status_code == 404 or theirs.json()["Event"]["uuid"] != uuid


# --- objects and sharing groups ---------------------------------------------------------------------


def test_an_object_goes_out_under_its_own_label(client, people) -> None:
    source, who = people
    eco = who["eco"]
    obj = {
        "uuid": str(uuid_mod.uuid4()),
        "name": "domain-ip",
        "meta-category": "network",
        "template_uuid": "43b3b146-77eb-4931-b4cc-b66c60f28734",
        "template_version": "9",
        "distribution": "5",
        "Attribute": [
            attr("obj.example", type="domain", object_relation="domain"),
            attr("198.51.100.99", "amber", object_relation="ip"),
        ],
    }
    ev = event("object", attributes=[attr("198.51.100.98")], Object=[obj])
    submit(client, source.key, ev)
    uuid = ev["Event"]["uuid"]
    for view in (
        rest(client, eco, f"events/{uuid}").json()["Event"],
        client.get(f"/misp/events/view/{uuid}", headers=eco.headers).json()["Event"],
    ):
        [got] = view["Object"]
        labels = [
            [t["name"] for t in a["Tag"] if t["name"].startswith("tlp:")] for a in got["Attribute"]
        ]
        assert labels == [["tlp:amber"], ["tlp:amber"]]
    found = rest(client, eco, "attributes?value=obj.example").json()["items"]
    assert [t["name"] for t in found[0]["Tag"]] == ["tlp:amber"]


def test_attribute_sharing_groups_reach_their_members_on_every_format(client, people) -> None:
    source, who = people
    core, eco = who["core"], who["eco"]
    group = {
        "uuid": str(uuid_mod.uuid4()),
        "name": "named few",
        "SharingGroupOrg": [{"Organisation": {"uuid": core.uuid, "name": "core"}}],
        "SharingGroupServer": [{"Server": {"url": "https://misp.internal.source.example"}}],
    }
    named = attr("198.51.100.110", distribution="4", SharingGroup=group)
    ev = event("sg", attributes=[attr("198.51.100.111"), named])
    submit(client, source.key, ev)
    uuid = ev["Event"]["uuid"]
    bundle = rest(client, core, f"events/{uuid}?format=stix").text
    assert (
        "198.51.100.110" in bundle
        and "198.51.100.110" not in rest(client, eco, f"events/{uuid}?format=stix").text
    )
    view = client.get(f"/misp/events/view/{uuid}", headers=core.headers).json()["Event"]
    [got] = [a for a in view["Attribute"] if a["uuid"] == named["uuid"]]
    assert got["distribution"] == "4" and got["sharing_group_id"] not in ("", "0", None)
    assert got["SharingGroup"]["id"] == got["sharing_group_id"]
    assert "misp.internal.source.example" not in orjson.dumps(view).decode()


def test_count_of_sightings_rows_is_unchanged_by_reading(client, people, maker) -> None:
    """Reading never writes sightings (a guard for the anonymised rebuild)."""
    source, who = people
    submit(client, source.key, event(attributes=[attr("198.51.100.120")]))
    with session_scope(maker) as s:
        before = s.scalar(select(func.count(Sighting.id)))
    rest(client, who["core"], "events")
    with session_scope(maker) as s:
        assert s.scalar(select(func.count(Sighting.id))) == before


def test_a_sighting_on_a_withheld_attribute_does_not_move_sighting_timestamp(
    client, people
) -> None:
    """Found by a black-box attack: /misp/events/index told a partner when a RED attribute
    it does not receive was sighted."""
    source, who = people
    core = who["core"]
    t0 = 1_796_000_000
    shown = attr("198.51.100.20", "amber", Sighting=[{"date_sighting": str(t0 + 5), "type": "0"}])
    hidden = attr("198.51.100.21", "red")
    ev = event("sighted", tlp="amber", attributes=[shown, hidden], timestamp=t0)
    submit(client, source.key, ev)

    def stamp() -> str:
        r = misp(client, core, "events/index", {"eventid": ev["Event"]["uuid"]})
        assert r.status_code == 200, r.text
        [row] = [e for e in r.json() if e["uuid"] == ev["Event"]["uuid"]]
        return str(row["sighting_timestamp"])

    assert stamp() == str(t0 + 5)
    later = copy.deepcopy(ev)
    later["Event"]["timestamp"] = str(t0 + 60)
    later["Event"]["Attribute"][1]["Sighting"] = [{"date_sighting": str(t0 + 60), "type": "0"}]
    submit(client, source.key, later)
    assert stamp() == str(t0 + 5)


def test_misp_object_answers_name_no_withheld_element(client, people) -> None:
    """Found by the black-box attack: /misp/objects/view and objects/restSearch kept an
    ObjectReference to a RED attribute the caller does not receive (its uuid and the
    relationship), while the event views dropped it."""
    source, who = people
    core = who["core"]
    red = attr("198.51.100.30", "red")
    obj = {
        "uuid": str(uuid_mod.uuid4()),
        "name": "domain-ip",
        "distribution": "5",
        "Attribute": [attr("shown.example", type="domain", object_relation="domain")],
        "ObjectReference": [
            {
                "uuid": str(uuid_mod.uuid4()),
                "referenced_uuid": red["uuid"],
                "relationship_type": "OBJREF-to-red",
            }
        ],
    }
    ev = event("objref", tlp="amber", attributes=[red], Object=[obj])
    submit(client, source.key, ev)
    answers = [
        misp(client, core, "objects/restSearch", {"uuid": obj["uuid"]}),
        misp(client, core, "objects/restSearch", {"eventid": ev["Event"]["uuid"]}),
        client.get(f"/misp/objects/view/{obj['uuid']}", headers=core.headers),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        assert "shown.example" in r.text  # the object arrives
        assert red["uuid"] not in r.text and "OBJREF-to-red" not in r.text
    own = client.get(f"/misp/objects/view/{obj['uuid']}", headers=source.headers)
    assert red["uuid"] in own.text  # its creator keeps its reference
