"""Every answer that releases shared content carries ``X-Hub-TLP``: the handling obligation of
the strictest label it released (README "Every response that carries shared information";
DESIGN.md §3: the TLP label travels with everything that goes out).

The test walks the app's routes for partners (REST, ``/misp``, TAXII, notifications): each
endpoint is either exercised here as a partner's client would call it, or listed as releasing
no shared content, with why. A new endpoint that is neither fails, so it cannot ship without
the header. The expected label is read from the body itself (TLP tags, ``tlp`` fields, STIX
marking references), independently of ``tlp/``; an answer that released nothing carries the
obligation of nothing, ``TLP:CLEAR``. Bodies without labels (a TAXII manifest or version list,
a notification's lineage) must carry the label of the content they list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.notifications.conftest import Desk
from tests.hub.test_routes import api_routes

RANK = {"clear": 0, "white": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
NAMES = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
# STIX 2.1 TLP 1.0 and TLP 2.0 marking definitions (STIX 2.1 §7.2.1.4, OASIS TLP 2.0 extension).
MARKINGS = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": 0,
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": 1,
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": 2,
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": 4,
    "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487": 0,
    "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb": 1,
    "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421": 2,
    "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003": 3,
    "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1": 4,
}

# Where each /misp endpoint lives: hub/misp_compat/endpoints/, one module per group of calls.
MISP_MODULES = {
    "capability": {"get_version", "post_test", "view_me", "describe"},
    "sync": {
        "events_index",
        "view_event",
        "preview_event",
        "add_event",
        "edit_event",
        "filter_for_push",
        "search_events",
        "search_attributes",
        "add_sighting",
        "search_sightings",
        "list_sightings",
        "filter_sightings",
        "bulk_save_sightings",
    },
    "attributes": {
        "add_attribute",
        "edit_attribute",
        "delete_attribute",
        "view_attribute",
        "attribute_index",
    },
    "objects": {
        "add_object",
        "edit_object",
        "delete_object",
        "view_object",
        "search_objects",
        "add_reference",
        "delete_reference",
    },
    "reports": {"add_report", "edit_report", "delete_report", "view_report", "report_index"},
    "tags": {"attach_tag", "remove_tag", "tag_index", "add_tag"},
    "publication": {"publish_event", "unpublish_event", "delete_event"},
    "declined": {
        "proposals",
        "push_proposals",
        "galaxy_clusters",
        "analyst_data",
        "event_reports_probe",
    },
}


def misp(name: str) -> str:
    """The qualified name of a /misp endpoint, as the route walk below names it."""
    module = next(m for m, names in MISP_MODULES.items() if name in names)
    return f"hub.misp_compat.endpoints.{module}.{name}"


# Endpoints that release no shared content (nothing another organisation shared, nothing of
# the hub's holdings beyond the caller's own input echoed or acknowledged).
NO_CONTENT = {
    "hub.ops.endpoints.health": "liveness",
    "hub.ops.endpoints.metrics": "operators' counters",
    "hub.partners.endpoints.me": "the caller's own organisation",
    "hub.intel.endpoints.submit_events": "the uuids the caller stored",
    "hub.intel.endpoints.my_releases": "which versions the caller received, no content",
    misp("get_version"): "server version",
    misp("post_test"): "echo of the caller's request",
    misp("view_me"): "the caller's own user",
    misp("describe"): "MISP's type table",
    misp("filter_sightings"): "which of the caller's sighting uuids to push",
    misp("bulk_save_sightings"): "a count",
    misp("delete_attribute"): "a saved message",
    misp("delete_object"): "a saved message",
    misp("add_reference"): "the caller's reference echoed, ids only",
    misp("delete_reference"): "a saved message",
    misp("delete_report"): "a saved message",
    misp("attach_tag"): "a saved message",
    misp("remove_tag"): "a saved message",
    misp("tag_index"): "always empty",
    misp("add_tag"): "the tag as given",
    misp("publish_event"): "a saved message",
    misp("unpublish_event"): "a saved message",
    misp("delete_event"): "a saved message",
    misp("proposals"): "proposals never leave: always empty",
    misp("push_proposals"): "proposals are not taken",
    misp("galaxy_clusters"): "not served: empty",
    misp("analyst_data"): "analyst data never leaves: empty",
    misp("event_reports_probe"): "a capability probe",
    "hub.misp_compat.endpoints.not_served": "MISP's 404",
    "hub.taxii.endpoints.discovery": "TAXII discovery",
    "hub.taxii.endpoints.api_root": "TAXII API root",
    "hub.taxii.endpoints.get_status": "the status of the caller's own upload",
    "hub.taxii.endpoints.get_collections": "collection descriptions",
    "hub.taxii.endpoints.get_collection": "a collection description",
    "hub.taxii.endpoints.add_objects": "a status resource",
    "hub.notifications.endpoints.post_feedback": "the caller's own feedback",
    "hub.notifications.endpoints.list_feedback": "feedback on the caller's own items",
    "hub.audit.endpoints.verifier": "a public key",
    "hub.audit.endpoints.checkpoint": "a signed tree head",
    "hub.audit.endpoints.entry": "the caller's own audit entries",
    "hub.audit.endpoints.inclusion_proof": "hashes",
    "hub.audit.endpoints.consistency_proof": "hashes",
    "hub.knowledge.endpoints.get_taxonomy": "the vocabulary of themes and kinds",
    "hub.knowledge.endpoints.create_product": "the caller's own product (tests/hub/knowledge)",
    "hub.knowledge.endpoints.add_version": "the caller's own product (tests/hub/knowledge)",
    "hub.knowledge.endpoints.review_product": "the caller's own product (tests/hub/knowledge)",
    "hub.knowledge.endpoints.publish_product": "the caller's own product (tests/hub/knowledge)",
    "hub.knowledge.endpoints.public_page": "HTML of CLEAR products (tests/hub/knowledge)",
    "hub.knowledge.endpoints.public_feed": "Atom of CLEAR products (tests/hub/knowledge)",
    "hub.incidents.endpoints.my_support": "the caller's own incident support",
    "hub.incidents.endpoints.put_my_support": "the caller's own incident support, as saved",
}


# Endpoints that release content and are checked elsewhere, or not yet: each says where, or
# names the gap (README "Known gaps in what leaves the hub"), so none is forgotten.
ELSEWHERE = {
    "hub.incidents.endpoints.public_incident_help": "tests/hub/incidents/test_help.py (CLEAR)",
    "hub.incidents.endpoints.incident_help": "tests/hub/incidents/test_help.py (GREEN)",
    "hub.incidents.endpoints.lessons_to_product": (
        "the caller's own product draft (tests/hub/console/test_functions.py)"
    ),
}


def label_ranks(node: Any, key: str | None = None) -> list[int]:
    """Every TLP label a body shows: MISP tags, ``tlp`` fields, tag lists, STIX markings."""
    out: list[int] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out += label_ranks(v, k)
        name = node.get("name")
        if key == "Tag" and isinstance(name, str):
            out += _tag_rank(name)
    elif isinstance(node, list):
        for item in node:
            if key == "Tag" and isinstance(item, dict):
                out += _tag_rank(str(item.get("name", "")))
            elif key in ("tags", "labels") and isinstance(item, str):
                out += _tag_rank(item)
            elif key == "object_marking_refs" and isinstance(item, str) and item in MARKINGS:
                out.append(MARKINGS[item])
            else:
                out += label_ranks(item, key)
    elif key == "tlp" and isinstance(node, str) and node.lower() in RANK:
        out.append(RANK[node.lower()])
    elif key == "label" and isinstance(node, str) and node.lower() in RANK:
        out.append(RANK[node.lower()])
    return out


def _tag_rank(name: str) -> list[int]:
    low = name.lower()
    if low.startswith("tlp:") and low[4:] in RANK:
        return [RANK[low[4:]]]
    return []


def strictest(body: Any) -> str:
    ranks = label_ranks(body)
    return f"TLP:{NAMES[max(ranks)]}" if ranks else "TLP:CLEAR"


@dataclass
class Call:
    endpoint: str
    method: str
    path: str
    key: str
    json: Any = None
    expect: str | None = None  # None: read from the body
    empty: bool = False  # the answer released nothing


GREEN = "TLP:GREEN"
MISP = {"Accept": "application/json", "Content-Type": "application/json"}


@pytest.fixture
def world(client, factory, maker, settings, auth) -> dict[str, Any]:
    """A source's GREEN event with AMBER parts, an object and a report; a partner that is
    notified (directly and to pass on), sights an attribute and writes its own event."""
    desk = Desk(maker, settings)
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    partner = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    client.put(
        f"/api/v1/admin/notifications/targets/{partner.uuid}",
        json={"domains": ["www.isp.example.nl"]},
        headers=auth,
    )
    amber = attr("192.0.2.5", "amber")
    ev = event(
        tlp="green",
        attributes=[attr("10.1.1.1"), attr("www.isp.example.nl", type="hostname"), amber],
        Object=[
            {
                "uuid": "0b9f3a6e-5e1d-4c5e-9f1a-1c2d3e4f5a6b",
                "name": "domain-ip",
                "meta-category": "network",
                "distribution": "5",
                "Attribute": [
                    attr("evil.example", type="domain", object_relation="domain"),
                    attr("203.0.113.9", "amber", type="ip-dst", object_relation="ip"),
                ],
            }
        ],
        EventReport=[
            {
                "uuid": "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
                "name": "report",
                "content": "what we saw",
                "distribution": "5",
            }
        ],
    )
    desk.ingest(source, ev)
    desk.drain()
    key = factory.key(Role.PARTNER, partner)
    h = {**MISP, "Authorization": key}
    r = client.post("/misp/sightings/add", json={"value": "10.1.1.1"}, headers=h)
    assert r.status_code == 200, r.text
    own = {
        "Event": {
            "info": "own",
            "distribution": "1",
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [{"type": "ip-dst", "value": "198.51.100.77"}],
        }
    }
    r = client.post("/misp/events/add", json=own, headers=h)
    assert r.status_code == 200, r.text
    own_event = r.json()["Event"]
    notes = client.get("/api/v1/notifications", headers={"Authorization": key}).json()["items"]
    assert notes, "the partner was not notified"
    collections = client.get(
        "/taxii2/cwn/collections/",
        headers={"Authorization": key, "Accept": "application/taxii+json;version=2.1"},
    ).json()["collections"]
    product = _knowledge_product(client, factory, source, ev["Event"]["Attribute"][0]["uuid"])
    return {
        "key": key,
        "product": product,
        "event": ev["Event"],
        "amber": amber["uuid"],
        "own": own_event,
        "ticket": notes[0]["ticket"],
        "collections": [c["id"] for c in collections],
        "source": source.uuid,
    }


def _knowledge_product(client, factory, source, item: str) -> str:
    """A GREEN knowledge product of the source, built on one of its items, published."""
    author, reviewer = ({"Authorization": factory.key(Role.PARTNER, source)} for _ in range(2))
    body = {
        "kind": "analysis",
        "title": "what we learnt",
        "body": "text",
        "tlp": "green",
        "sources": [{"item": item}],
    }
    r = client.post("/api/v1/knowledge", json=body, headers=author)
    assert r.status_code == 201, r.text
    uuid = r.json()["uuid"]
    assert client.post(f"/api/v1/knowledge/{uuid}/review", json={}, headers=reviewer).is_success
    assert client.post(f"/api/v1/knowledge/{uuid}/publish", headers=author).is_success
    return str(uuid)


def calls(w: dict[str, Any]) -> list[Call]:
    key = w["key"]
    ev = w["event"]
    ev_uuid = ev["uuid"]
    own = w["own"]["uuid"]
    amber = w["amber"]
    obj = ev["Object"][0]["uuid"]
    report = ev["EventReport"][0]["uuid"]
    out = [
        Call("hub.intel.endpoints.list_events", "GET", "/api/v1/events", key),
        Call("hub.intel.endpoints.get_event", "GET", f"/api/v1/events/{ev_uuid}", key),
        Call("hub.intel.endpoints.search_attributes", "GET", "/api/v1/attributes", key),
        Call(
            "hub.intel.endpoints.search_attributes",
            "GET",
            "/api/v1/attributes?value=nothing.example",
            key,
            empty=True,
        ),
        Call(misp("events_index"), "GET", "/misp/events/index", key),
        Call(misp("view_event"), "GET", f"/misp/events/view/{ev_uuid}", key),
        # HEAD tells that the event exists, as the index lists it (its event label, GREEN),
        # or answers as for a missing event.
        Call(misp("view_event"), "HEAD", f"/misp/events/view/{ev_uuid}", key, expect=GREEN),
        Call(
            misp("view_event"),
            "HEAD",
            "/misp/events/view/5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
            key,
            expect="TLP:CLEAR",
            empty=True,
        ),
        # The caller's own sighting goes under the label of the attribute it is on.
        Call(
            misp("add_sighting"), "POST", "/misp/sightings/add", key, {"value": "10.1.1.1"}, GREEN
        ),
        # Which of the caller's own offered events the hub wants: nothing shared, CLEAR.
        Call(
            misp("filter_for_push"),
            "POST",
            "/misp/events/filterEventIdsForPush",
            key,
            [{"Event": {"uuid": own, "timestamp": "1"}}, {"Event": {"uuid": ev_uuid}}],
            expect="TLP:CLEAR",
        ),
        Call(misp("preview_event"), "GET", f"/misp/events/{ev_uuid}", key),
        Call(misp("search_events"), "POST", "/misp/events/restSearch", key, {}),
        Call(
            misp("search_events"),
            "POST",
            "/misp/events/restSearch",
            key,
            {"value": "nothing.example"},
            empty=True,
        ),
        Call(misp("search_attributes"), "POST", "/misp/attributes/restSearch", key, {}),
        Call(
            misp("search_attributes"),
            "POST",
            "/misp/attributes/restSearch",
            key,
            {"value": "10.1.1.1"},
        ),
        Call(
            misp("search_attributes"),
            "POST",
            "/misp/attributes/restSearch",
            key,
            {"value": "nothing.example"},
            empty=True,
        ),
        Call(misp("view_attribute"), "GET", f"/misp/attributes/view/{amber}", key),
        Call(misp("attribute_index"), "GET", "/misp/attributes/index", key),
        Call(misp("view_object"), "GET", f"/misp/objects/view/{obj}", key),
        Call(misp("search_objects"), "POST", "/misp/objects/restSearch", key, {}),
        # Reports carry no tag: they go under their event's label (GREEN).
        Call(misp("view_report"), "GET", f"/misp/eventReports/view/{report}", key, expect=GREEN),
        Call(
            misp("report_index"),
            "GET",
            f"/misp/eventReports/index/event_id:{ev_uuid}",
            key,
            expect=GREEN,
        ),
        # Sightings carry no tag: they go under the label of what they are on (the GREEN
        # attribute 10.1.1.1).
        Call(misp("search_sightings"), "POST", "/misp/sightings/restSearch", key, {}, GREEN),
        Call(
            misp("list_sightings"),
            "POST",
            "/misp/sightings/listSightings",
            key,
            {"context": "event", "id": ev_uuid},
            GREEN,
        ),
        # Writes to the partner's own event answer with the element as stored (below RED,
        # which never travels in MISP sync: tests/hub/misp_compat/test_write_answers.py).
        Call(
            misp("add_attribute"),
            "POST",
            f"/misp/attributes/add/{own}",
            key,
            {"type": "domain", "value": "s.example", "Tag": [{"name": "tlp:amber+strict"}]},
        ),
        Call(
            misp("add_object"),
            "POST",
            f"/misp/objects/add/{own}",
            key,
            {
                "name": "domain-ip",
                "Attribute": [
                    {"type": "domain", "value": "o.example", "object_relation": "domain"},
                    {
                        "type": "ip-dst",
                        "value": "192.0.2.99",
                        "object_relation": "ip",
                        "Tag": [{"name": "tlp:amber"}],
                    },
                ],
            },
        ),
        Call(
            misp("add_report"),
            "POST",
            f"/misp/eventReports/add/{own}",
            key,
            {"name": "mine", "content": "notes"},
            GREEN,  # its event's label
        ),
        Call(
            misp("add_event"),
            "POST",
            "/misp/events/add",
            key,
            {
                "Event": {
                    "info": "amber",
                    "distribution": "1",
                    "Tag": [{"name": "tlp:amber"}],
                    "Attribute": [{"type": "ip-dst", "value": "198.51.100.78"}],
                }
            },
        ),
        # An incident case goes under its own label (the items it links are named by uuid).
        Call(
            "hub.incidents.endpoints.open_case",
            "POST",
            "/api/v1/incidents",
            key,
            {"title": "outage", "sector": "energy", "tlp": "amber", "description": "what"},
        ),
        Call("hub.knowledge.endpoints.list_products", "GET", "/api/v1/knowledge", key),
        Call(
            "hub.knowledge.endpoints.get_product",
            "GET",
            f"/api/v1/knowledge/{w['product']}",
            key,
        ),
        Call("hub.notifications.endpoints.list_notifications", "GET", "/api/v1/notifications", key),
        Call(
            "hub.notifications.endpoints.list_notifications",
            "GET",
            "/api/v1/notifications?via=me",
            key,
        ),
        Call(
            "hub.notifications.endpoints.get_notification",
            "GET",
            f"/api/v1/notifications/{w['ticket']}",
            key,
        ),
    ]
    return out


def later_calls(client, w: dict[str, Any], answers: dict[str, Any]) -> list[Call]:
    """Calls that need an earlier answer: edits of written elements, TAXII pages and the
    label-less bodies (manifest, versions, lineage), compared with their content's label."""
    key = w["key"]
    amber = w["amber"]
    attr_answer = answers[misp("add_attribute")]["Attribute"]
    obj_answer = answers[misp("add_object")]["Object"]
    report_answer = answers[misp("add_report")]["EventReport"]
    event_answer = answers[misp("add_event")]["Event"]
    case = f"/api/v1/incidents/{answers['hub.incidents.endpoints.open_case']['uuid']}"
    out = [
        Call("hub.incidents.endpoints.get_case", "GET", case, key),
        Call("hub.incidents.endpoints.list_cases", "GET", "/api/v1/incidents", key),
        Call(
            "hub.incidents.endpoints.link_item",
            "POST",
            f"{case}/items",
            key,
            {"event_uuid": w["event"]["uuid"]},
        ),
        Call(
            "hub.incidents.endpoints.refer",
            "POST",
            f"{case}/referrals",
            key,
            {"referred": "Plant X", "to_partner": w["source"]},
        ),
        Call(
            "hub.incidents.endpoints.close_case",
            "POST",
            f"{case}/close",
            key,
            {"lessons_learned": "l"},
        ),
        # After the sighting searches (which would show it): a sighting on the AMBER attribute.
        Call(
            misp("add_sighting"),
            "POST",
            f"/misp/sightings/add/{amber}",
            key,
            {"type": "0"},
            "TLP:AMBER",
        ),
        Call(
            misp("edit_attribute"),
            "POST",
            f"/misp/attributes/edit/{attr_answer['uuid']}",
            key,
            {"comment": "edited"},
        ),
        Call(
            misp("edit_object"),
            "POST",
            f"/misp/objects/edit/{obj_answer['uuid']}",
            key,
            {**obj_answer, "comment": "edited"},
        ),
        Call(
            misp("edit_report"),
            "POST",
            f"/misp/eventReports/edit/{report_answer['uuid']}",
            key,
            {"content": "more notes"},
            GREEN,  # its event's label
        ),
        Call(
            misp("edit_event"),
            "POST",
            f"/misp/events/edit/{event_answer['uuid']}",
            key,
            {"Event": {**event_answer, "info": "amber, revised", "timestamp": None}},
        ),
        Call(
            "hub.notifications.endpoints.my_notification_lineage",
            "GET",
            f"/api/v1/notifications/{w['ticket']}/lineage",
            key,
            expect=answers["hub.notifications.endpoints.get_notification"]["__tlp__"],
        ),
    ]
    for collection in w["collections"]:
        base = f"/taxii2/cwn/collections/{collection}"
        page = client.get(f"{base}/objects/", headers=_taxii(key))
        assert page.status_code == 200, page.text
        objects = page.json().get("objects") or []
        expected = strictest(page.json())
        out.append(Call("hub.taxii.endpoints.get_objects", "GET", f"{base}/objects/", key))
        out.append(
            Call(
                "hub.taxii.endpoints.get_manifest",
                "GET",
                f"{base}/manifest/",
                key,
                expect=expected,
                empty=not objects,
            )
        )
        marked = [o for o in objects if o.get("object_marking_refs")]
        if marked:
            one = marked[0]
            out.append(
                Call("hub.taxii.endpoints.get_object", "GET", f"{base}/objects/{one['id']}/", key)
            )
            out.append(
                Call(
                    "hub.taxii.endpoints.get_object_versions",
                    "GET",
                    f"{base}/objects/{one['id']}/versions/",
                    key,
                    expect=strictest(one),
                )
            )
    return out


def _taxii(key: str) -> dict[str, str]:
    return {"Authorization": key, "Accept": "application/taxii+json;version=2.1"}


def _send(client, call: Call) -> Any:
    if call.path.startswith("/taxii2"):
        headers = _taxii(call.key)
    elif call.path.startswith("/misp"):
        headers = {**MISP, "Authorization": call.key}
    else:
        headers = {"Authorization": call.key}
    if call.method == "GET":
        return client.get(call.path, headers=headers)
    if call.method == "HEAD":
        return client.head(call.path, headers=headers)
    return client.request(call.method, call.path, headers=headers, json=call.json)


def _check(client, call: Call, answers: dict[str, Any], problems: list[str]) -> None:
    r = _send(client, call)
    if call.method == "HEAD":  # no body: 200 with the view's label, or 404 as missing
        want = 404 if call.empty else 200
        got = r.headers.get("X-Hub-TLP")
        if r.status_code != want or got != call.expect:
            problems.append(f"HEAD {call.path}: {r.status_code} X-Hub-TLP {got!r}")
        return
    if not r.is_success:
        problems.append(f"{call.method} {call.path}: {r.status_code} {r.text[:200]}")
        return
    body = r.json()
    expected = call.expect or strictest(body)
    if call.empty:
        expected = "TLP:CLEAR" if call.expect is None else call.expect
    got = r.headers.get("X-Hub-TLP")
    if got != expected:
        problems.append(f"{call.method} {call.path}: X-Hub-TLP {got!r}, released {expected}")
    if isinstance(body, dict):
        body["__tlp__"] = got
    answers.setdefault(call.endpoint, body)


def test_every_answer_that_releases_content_carries_its_strictest_label(app, client, world):
    answers: dict[str, Any] = {}
    problems: list[str] = []
    first = calls(world)
    for call in first:
        _check(client, call, answers, problems)
    assert not problems, "\n".join(problems)
    second = later_calls(client, world, answers)
    for call in second:
        _check(client, call, answers, problems)
    assert not problems, "\n".join(problems)

    # The harvest saw what it is meant to see: several labels, and empty answers.
    seen = {answers[c.endpoint]["__tlp__"] for c in first if isinstance(answers[c.endpoint], dict)}
    assert {"TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT"} <= seen, seen

    # Every partner-facing endpoint is exercised above or releases no shared content.
    exercised = {c.endpoint for c in [*first, *second]}
    unknown = set()
    for _method, path, route in api_routes(app):
        if path.startswith("/api/v1/admin"):
            continue
        name = f"{route.endpoint.__module__}.{route.endpoint.__name__}"
        if name not in exercised and name not in NO_CONTENT and name not in ELSEWHERE:
            unknown.add(f"{name} ({path})")
    assert not unknown, f"say whether these release content, and test X-Hub-TLP: {unknown}"


def test_the_body_reader_finds_every_kind_of_label() -> None:
    """The test's own reader of labels (so a body it cannot read does not pass as CLEAR)."""
    cases: list[tuple[Any, str]] = [
        ({"Event": {"Tag": [{"name": "tlp:green"}], "Attribute": []}}, "TLP:GREEN"),
        ([{"Attribute": {"Tag": [{"name": "tlp:amber+strict"}]}}], "TLP:AMBER+STRICT"),
        ({"items": [{"tlp": "red"}]}, "TLP:RED"),
        ({"tlp": {"label": "amber"}}, "TLP:AMBER"),
        ({"items": [{"tags": ["tlp:green", "tlp:ex:chr"]}]}, "TLP:GREEN"),
        (
            {"objects": [{"object_marking_refs": [next(iter(MARKINGS))]}]},
            "TLP:CLEAR",
        ),
        ({"response": []}, "TLP:CLEAR"),
    ]
    for body, label in cases:
        assert strictest(body) == label, body
