"""MISP server sync replayed as a MISP instance sends it (reference/misp-sync.md §2.2, §2.3):
the same paths, named parameters, headers and bodies, the retry quirks, and every answer
checked against the TLP oracle and MISP's OpenAPI schemas."""

from __future__ import annotations

import copy
import re
import time
import uuid as uuid_mod

from fastapi.routing import APIRoute

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import (
    MISP_HEADERS,
    NOT_NEWER,
    RANK,
    Who,
    expected,
    make_people,
    tlp_of,
)
from tests.hub.misp_compat.openapi import assert_schema, assert_valid
from tests.hub.test_routes import flatten

PULL_VIEW = (
    "/misp/events/view/{uuid}/deleted[]:0/deleted[]:1/excludeGalaxy:1/"
    "includeEventCorrelations:0/includeFeedCorrelations:0/includeWarninglistHits:0/"
    "excludeLocalTags:1"
)
MISP_ERROR_KEYS = {"saved", "name", "message", "url", "errors"}


def check_event_shape(ev: dict) -> None:
    """What a pulling MISP relies on: every tag says ``local``, one TLP tag per element,
    numbers as strings, never ``protected``."""
    assert ev["protected"] is False
    assert isinstance(ev["id"], str) and ev["id"].isdigit()
    assert isinstance(ev["timestamp"], str) and isinstance(ev["distribution"], str)
    elements = [ev, *ev["Attribute"], *[a for o in ev["Object"] for a in o["Attribute"]]]
    for element in elements:
        assert all(t["local"] is False for t in element["Tag"]), element["Tag"]
        assert len([t for t in element["Tag"] if tlp_of({"Tag": [t]})]) == 1, element["Tag"]


def pull(client, who: Who, body: dict | None = None) -> dict[str, dict]:
    """Server::pull (Server.php:609-720): version, index with the pull rules, then each view."""
    r = client.get("/misp/servers/getVersion", headers=who.headers)
    assert r.status_code == 200
    assert_valid(r.json(), "/servers/getVersion")
    index_body = {**(body or {}), "minimal": 1, "published": 1}
    r = client.post(
        "/misp/events/index", json=index_body, headers={**who.headers, "If-None-Match": ""}
    )
    assert r.status_code == 200, r.text
    rows = r.json()
    assert_valid(rows, "/events/index", "post")
    assert r.headers["X-Result-Count"] == str(len(rows))
    got = {}
    for row in reversed(rows):  # oldest first, as MISP pulls
        assert set(row) == {
            "id",
            "timestamp",
            "sighting_timestamp",
            "published",
            "uuid",
            "orgc_uuid",
        }
        view = client.get(PULL_VIEW.format(uuid=row["uuid"]), headers=who.headers)
        assert view.status_code == 200, view.text
        assert_valid(view.json(), "/events/view/{eventId}")
        got[row["uuid"]] = view.json()["Event"]
    return got


def test_full_pull_gives_each_partner_exactly_what_the_rules_allow(client, world) -> None:
    for who in world.people.values():
        got = pull(client, who)
        wanted = {
            ev["Event"]["uuid"]: expected(who, ev, world.members, world.source.uuid)
            for ev in world.events
        }
        assert set(got) == {u for u, attrs in wanted.items() if attrs}, who.name
        for uuid, attrs in wanted.items():
            if not attrs:
                r = client.get(PULL_VIEW.format(uuid=uuid), headers=who.headers)
                assert r.status_code == 404 and MISP_ERROR_KEYS <= set(r.json())
                assert (
                    client.head(f"/misp/events/view/{uuid}", headers=who.headers).status_code == 404
                )
                continue
            ev = got[uuid]
            check_event_shape(ev)
            assert {a["uuid"] for a in ev["Attribute"]} == attrs, (who.name, ev["info"])
            sent = next(e["Event"] for e in world.events if e["Event"]["uuid"] == uuid)
            # Served as the hub holds it: the pulling MISP downgrades on its side (DESIGN §3).
            assert ev["distribution"] == sent["distribution"]
            assert ev["Orgc"]["uuid"] == world.source.uuid
            for a in ev["Attribute"]:
                assert RANK[tlp_of(a)] >= RANK[tlp_of(ev)]


def test_the_source_pulls_back_its_own_except_red(client, world) -> None:
    got = pull(client, world.source)
    for ev in world.events:
        attrs = expected(world.source, ev, world.members, world.source.uuid)
        assert (
            {a["uuid"] for a in got[ev["Event"]["uuid"]]["Attribute"]} if attrs else set()
        ) == attrs


def test_pull_rules_filter_the_index(client, world) -> None:
    core = world.people["core"]

    def index(body: dict) -> set[str]:
        r = client.post(
            "/misp/events/index", json={**body, "minimal": 1, "published": 1}, headers=core.headers
        )
        assert r.status_code == 200, r.text
        return {row["uuid"] for row in r.json()}

    everything = index({})
    labels = {e["Event"]["uuid"]: tlp_of(e["Event"]) for e in world.events}
    dists = {e["Event"]["uuid"]: e["Event"]["distribution"] for e in world.events}
    assert index({"tag": ["tlp:green"]}) == {u for u in everything if labels[u] == "green"}
    assert index({"tags": "tlp:green|tlp:clear"}) == {
        u for u in everything if labels[u] in ("green", "clear")
    }
    assert index({"tag": ["!tlp:amber", "!TLP:GREEN"]}) == {
        u for u in everything if labels[u] not in ("amber", "green")
    }
    assert index({"tag": ["tlp:white"]}) == {u for u in everything if labels[u] == "clear"}
    assert index({"org": [world.source.uuid]}) == everything
    assert index({"org": ["Source CSIRT"]}) == everything
    assert index({"org": ["!Source CSIRT"]}) == set()
    assert index({"distribution": "3"}) == {u for u in everything if dists[u] == "3"}
    assert index({"distribution": ["!3"]}) == {u for u in everything if dists[u] != "3"}
    some = sorted(everything)[:2]
    assert index({"eventid": some}) == set(some)
    assert index({"eventid": [f"!{some[0]}"]}) == everything - {some[0]}
    assert index({"timestamp": "30d"}) == set()  # the builder's timestamps are from 2023
    assert index({"timestamp": 1_600_000_000}) == everything
    # published on arrival without a publish time of their own: stamped then, as MISP does
    assert index({"publish_timestamp": "1d"}) == everything
    assert index({"publish_timestamp": [1, 1_600_000_000]}) == set()
    assert index({"sharinggroup": ["nope"]}) == set()
    assert index({"unknown_rule": "whatever", "url_params": "{}"}) == everything
    r = client.post("/misp/events/index", json={"published": 0}, headers=core.headers)
    assert r.json() == []


def test_full_index_and_search_index_rows(client, world) -> None:
    core = world.people["core"]
    r = client.post("/misp/events/index", json={"limit": 3, "page": 1}, headers=core.headers)
    rows = r.json()
    assert len(rows) == 3 and int(r.headers["X-Result-Count"]) > 3
    assert_valid(rows, "/events/index", "post")
    for row in rows:
        assert row["Orgc"]["uuid"] == world.source.uuid
        assert all(t["local"] is False for t in row["Tag"])
        assert len([t for t in row["Tag"] if t["name"].startswith("tlp:")]) == 1
    # GET with named parameters, as "Explore remote server" sends it
    r = client.get("/misp/events/index/limit:2/page:2.json", headers=core.headers)
    assert r.status_code == 200 and len(r.json()) == 2


def push_event(client, who: Who, ev: dict) -> tuple[int, dict, dict]:
    """Event::uploadEventToServer / ServerSyncTool::pushEvent (ServerSyncTool:117-175):
    HEAD, then add or edit, with the two retry quirks."""
    uuid = ev["Event"]["uuid"]
    head = client.head(f"/misp/events/view/{uuid}", headers=who.headers)
    assert head.status_code in (200, 404)
    if head.status_code == 404:
        r = client.post("/misp/events/add/metadata:1", json=ev, headers=who.headers)
        if r.status_code == 404 and "Location" in r.headers:
            target = r.headers["Location"].rstrip("/").split("/")[-1]
            r = client.post(f"/misp/events/edit/{target}/metadata:1", json=ev, headers=who.headers)
    else:
        r = client.post(f"/misp/events/edit/{uuid}/metadata:1", json=ev, headers=who.headers)
        if r.status_code == 404:
            r = client.post("/misp/events/add/metadata:1", json=ev, headers=who.headers)
    return r.status_code, r.json(), dict(r.headers)


def push_all(client, who: Who, events: list[dict]) -> list[tuple[int, dict]]:
    """Server::push (Server.php:1125-1340): version, filterEventIdsForPush, then each event."""
    r = client.get("/misp/servers/getVersion", headers=who.headers)
    assert r.json()["perm_sync"] is True
    offer = [
        {"Event": {"uuid": e["Event"]["uuid"], "timestamp": e["Event"]["timestamp"]}}
        for e in events
    ]
    r = client.post("/misp/events/filterEventIdsForPush", json=offer, headers=who.headers)
    assert r.status_code == 200
    wanted = set(r.json())
    out = []
    for ev in events:
        if ev["Event"]["uuid"] in wanted:
            status, body, _ = push_event(client, who, ev)
            out.append((status, body))
    return out


def as_pushed(ev: dict, who: Who) -> dict:
    """The body a pushing MISP sends (Event.php:963-1238): locked, Orgc, no Org."""
    ev = copy.deepcopy(ev)
    ev["Event"]["locked"] = True
    ev["Event"]["Orgc"] = {"uuid": who.uuid, "name": "Pusher", "local": True}
    return ev


def test_push_all_stores_new_and_newer_and_skips_the_rest(client, factory) -> None:
    pusher, people = make_people(factory)
    other = people["core"]
    events = [
        as_pushed(event(f"pushed {i}", tlp="green", distribution=3), pusher) for i in range(3)
    ]
    results = push_all(client, pusher, events)
    assert [s for s, _ in results] == [200, 200, 200]
    for _status, body in results:
        assert_valid(body, "/events/add", "post")
        assert body["Event"]["id"].isdigit() and "Attribute" not in body["Event"]
    assert push_all(client, pusher, events) == []  # nothing newer: nothing asked for
    uuid = events[0]["Event"]["uuid"]
    before = client.get(PULL_VIEW.format(uuid=uuid), headers=other.headers).json()["Event"]
    newcomer = people["eco"]  # pulls only after the deletion

    # an update with a soft-deleted attribute (timestamp bumped, MISP/MISP#6013)
    changed = copy.deepcopy(events[0])
    stamp = int(time.time()) + 10  # newer than the stored attribute timestamps ("now")
    changed["Event"]["timestamp"] = str(stamp)
    gone = changed["Event"]["Attribute"][0]
    gone.update(deleted=True, timestamp=str(stamp))
    changed["Event"]["Attribute"].append(attr("192.0.2.9", timestamp=str(stamp)))
    results = push_all(client, pusher, [changed, *events[1:]])
    assert [s for s, _ in results] == [200]
    uuid = changed["Event"]["uuid"]
    seen = client.get(PULL_VIEW.format(uuid=uuid), headers=other.headers).json()["Event"]
    by_uuid = {a["uuid"]: a for a in seen["Attribute"]}
    assert gone["uuid"] in {a["uuid"] for a in before["Attribute"]}
    # the deletion reaches who had the attribute; it moves the event's timestamp for them
    assert by_uuid[gone["uuid"]]["deleted"] is True and len(by_uuid) == 2
    assert int(seen["timestamp"]) > int(before["timestamp"])
    plain = client.get(f"/misp/events/view/{uuid}", headers=other.headers).json()["Event"]
    assert gone["uuid"] not in {a["uuid"] for a in plain["Attribute"]}
    # for a partner that never had it, the attribute never existed
    late = client.get(PULL_VIEW.format(uuid=uuid), headers=newcomer.headers).json()["Event"]
    assert gone["uuid"] not in {a["uuid"] for a in late["Attribute"]}

    # stale edit: MISP's exact 403, which the pushing MISP treats as benign
    r = client.post(f"/misp/events/edit/{uuid}/metadata:1", json=events[0], headers=pusher.headers)
    assert r.status_code == 403
    assert r.json()["saved"] is False and r.json()["errors"] == NOT_NEWER
    assert r.json()["name"] == "Could not edit Event"
    assert_schema(r.json(), "ApiError")

    # quirk: add of an existing uuid → 404 + Location → edit of the Location's last segment
    newer = copy.deepcopy(changed)
    newer["Event"]["timestamp"] = str(stamp + 5)
    r = client.post("/misp/events/add/metadata:1", json=newer, headers=pusher.headers)
    assert r.status_code == 404 and "Location" in r.headers
    target = r.headers["Location"].split("/")[-1]
    r = client.post(f"/misp/events/edit/{target}/metadata:1", json=newer, headers=pusher.headers)
    assert r.status_code == 200 and r.json()["Event"]["uuid"] == uuid
    # quirk: edit of an unknown uuid → 404 → add
    fresh = as_pushed(event("fresh", tlp="clear", distribution=3), pusher)
    r = client.post(
        f"/misp/events/edit/{fresh['Event']['uuid']}/metadata:1", json=fresh, headers=pusher.headers
    )
    assert r.status_code == 404
    assert push_event(client, pusher, fresh)[0] == 200

    # another organisation may neither relay nor overwrite
    relayed = as_pushed(event("relayed", distribution=3), other)
    r = client.post("/misp/events/add/metadata:1", json=relayed, headers=pusher.headers)
    assert r.status_code == 403 and MISP_ERROR_KEYS <= set(r.json())
    assert "relay permission" in r.json()["errors"]
    hijack = copy.deepcopy(newer)
    hijack["Event"].pop("Orgc")
    hijack["Event"]["timestamp"] = str(stamp + 100)
    r = client.post(f"/misp/events/edit/{uuid}/metadata:1", json=hijack, headers=other.headers)
    assert r.status_code == 403 and "belongs to another organisation" in r.json()["errors"]
    offer = [{"Event": {"uuid": uuid, "timestamp": str(stamp + 100)}}]
    assert (
        client.post("/misp/events/filterEventIdsForPush", json=offer, headers=other.headers).json()
        == []
    )


def test_red_and_own_organisation_only_are_stored_for_the_hub_alone(client, factory) -> None:
    pusher, people = make_people(factory)
    red = as_pushed(event("red", tlp="red", distribution=3), pusher)
    own = as_pushed(event("ours", tlp="green", distribution=0), pusher)
    results = push_all(client, pusher, [red, own])
    assert [s for s, _ in results] == [200, 200]  # stored, not refused: MISP would retry
    assert push_all(client, pusher, [red, own]) == []
    for who in people.values():
        uuids = {
            row["uuid"]
            for row in client.post(
                "/misp/events/index", json={"minimal": 1}, headers=who.headers
            ).json()
        }
        assert not uuids & {red["Event"]["uuid"], own["Event"]["uuid"]}
    r = client.get(f"/misp/events/view/{own['Event']['uuid']}", headers=pusher.headers)
    assert r.status_code == 200 and r.json()["Event"]["distribution"] == "0"
    assert (
        client.get(f"/misp/events/view/{red['Event']['uuid']}", headers=pusher.headers).status_code
        == 404
    )


def test_sightings_sync(client, world) -> None:
    source, core = world.source, world.people["core"]
    green = next(e["Event"] for e in world.events if e["Event"]["info"] == "green d3")
    attr_uuid = green["Attribute"][0]["uuid"]
    red_attr = green["Attribute"][-1]["uuid"]
    sightings = [
        {
            "uuid": str(uuid_mod.uuid4()),
            "attribute_uuid": a,
            "type": "0",
            "source": "ids",
            "date_sighting": str(int(time.time())),
            "Organisation": {"uuid": source.uuid, "name": "x"},
        }
        for a in (attr_uuid, red_attr)
    ]
    r = client.post(
        f"/misp/sightings/filterSightingUuidsForPush/{green['uuid']}",
        json=[s["uuid"] for s in sightings],
        headers=source.headers,
    )
    assert r.json() == []
    r = client.post(
        f"/misp/sightings/bulkSaveSightings/{green['uuid']}", json=sightings, headers=source.headers
    )
    assert r.status_code == 200 and r.json()["success"] == "2 sightings added."
    r = client.post(
        f"/misp/sightings/filterSightingUuidsForPush/{green['uuid']}",
        json=[s["uuid"] for s in sightings],
        headers=source.headers,
    )
    assert sorted(r.json()) == sorted(s["uuid"] for s in sightings)
    index = client.post(
        "/misp/events/index", json={"minimal": 1, "published": 1}, headers=core.headers
    ).json()
    assert next(row for row in index if row["uuid"] == green["uuid"])["sighting_timestamp"] != "0"
    body = {"returnFormat": "json", "last": 0, "includeUuid": True, "uuid": [green["uuid"]]}
    got = client.post("/misp/sightings/restSearch/event", json=body, headers=core.headers).json()[
        "response"
    ]
    assert [s["Sighting"]["attribute_uuid"] for s in got] == [attr_uuid]  # not the RED one
    assert "Organisation" not in got[0]["Sighting"]  # another organisation's: anonymised
    assert_schema(got[0]["Sighting"], "Sighting")
    mine = client.post(
        "/misp/sightings/restSearch/event", json=body, headers=source.headers
    ).json()["response"]
    assert mine[0]["Sighting"]["Organisation"]["uuid"] == source.uuid


def test_connection_test_and_remote_user(client, factory) -> None:
    who, _ = make_people(factory)
    r = client.post("/misp/servers/postTest", json={"testString": "x" * 6000}, headers=who.headers)
    body = r.json()
    assert body["body"]["testString"] == "x" * 6000
    assert body["headers"]["Accept"] == "application/json"
    assert body["headers"]["Content-type"] == "application/json"
    r = client.get("/misp/users/view/me.json", headers=who.headers)
    me = r.json()
    assert me["Role"]["perm_sync"] is True and me["Role"]["name"] == "Sync user"
    assert me["Organisation"]["uuid"] == who.uuid and "@" in me["User"]["email"]
    version = client.get("/misp/servers/getVersion", headers=who.headers).json()
    assert re.fullmatch(r"2\.5\.\d+", version["version"]) and version["request_encoding"] == []
    assert version["perm_analyst_data"] is False
    r = client.get("/misp/attributes/describeTypes.json", headers=who.headers)
    assert_valid(r.json()["result"], "/attributes/describeTypes")
    assert "ip-dst" in r.json()["result"]["types"]
    # what MISP asks for and the hub does not take part in: quiet, empty answers
    assert (
        client.get(
            "/misp/shadow_attributes/index/all:1/timestamp:0/limit:1000/page:1/deleted[]:0/deleted[]:1.json",
            headers=who.headers,
        ).json()
        == []
    )
    assert client.post(
        "/misp/galaxy_clusters/restSearch",
        json={"published": 1, "minimal": 1, "custom": 1},
        headers=who.headers,
    ).json() == {"response": []}
    assert (
        client.post(
            f"/misp/events/pushProposals/{uuid_mod.uuid4()}", json=[], headers=who.headers
        ).json()["counter"]
        == 0
    )
    assert client.get("/misp/eventReports/add", headers=who.headers).json()["description"]
    r = client.get("/misp/servers/getAvailableSyncFilteringRules", headers=who.headers)
    assert r.status_code == 404 and MISP_ERROR_KEYS <= set(r.json())


def misp_routes(app) -> list[tuple[str, str]]:
    out = []
    for route in flatten(app.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/misp"):
            out += [
                (m, re.sub(r"\{[^}]+\}", str(uuid_mod.uuid4()), route.path)) for m in route.methods
            ]
    return out


def test_every_misp_route_refuses_without_a_key_in_misps_shape(client, app, factory) -> None:
    operator = factory.key(Role.OPERATOR)
    routes = misp_routes(app)
    assert len(routes) > 40
    for method, path in routes:
        for headers, status in (
            ({}, 401),
            ({"Authorization": "x" * 40}, 401),
            ({"Authorization": operator}, 403),
        ):
            r = client.request(
                method, path, headers={**MISP_HEADERS, **headers}, content=b"{broken"
            )
            assert r.status_code == status, (method, path, r.status_code)
            if method != "HEAD":
                body = r.json()
                assert MISP_ERROR_KEYS <= set(body) and body["saved"] is False
                assert_schema(body, "UnauthorizedApiError")


def test_a_big_event_streams_as_valid_json(client, factory) -> None:
    """More attributes than one serialisation chunk: the pieces join into one valid event."""
    pusher, people = make_people(factory)
    attrs = [attr(f"10.9.{i // 250}.{i % 250}") for i in range(1_100)]  # two chunks
    big = as_pushed(event("big", tlp="green", distribution=3, attributes=attrs), pusher)
    assert (
        client.post("/misp/events/add/metadata:1", json=big, headers=pusher.headers).status_code
        == 200
    )
    r = client.get(PULL_VIEW.format(uuid=big["Event"]["uuid"]), headers=people["core"].headers)
    assert r.status_code == 200 and "content-length" not in r.headers
    got = r.json()["Event"]
    assert [a["uuid"] for a in got["Attribute"]] == [a["uuid"] for a in attrs]
    check_event_shape(got)
