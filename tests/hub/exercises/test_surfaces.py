"""Surfaces that know no exercise refuse exercise-only keys (black-box attack on the merged
hub): knowledge products, incident cases and the organisation's incident support. Through
them an exercise key read the organisation's real drafts and cases, published exercise text
as real traffic and changed the public incident contact."""

from __future__ import annotations

from typing import Any

import pytest

from hub.vocabulary import Role

ROUTES = [
    ("GET", "/api/v1/knowledge?mine=true", None),
    ("POST", "/api/v1/knowledge", {"kind": "analysis", "title": "t", "body": "b", "tlp": "clear"}),
    ("GET", "/api/v1/knowledge/00000000-0000-4000-8000-000000000000", None),
    ("GET", "/api/v1/knowledge/taxonomy", None),
    ("GET", "/api/v1/incidents", None),
    ("POST", "/api/v1/incidents", {"title": "t", "sector": "health", "tlp": "green"}),
    ("GET", "/api/v1/incidents/00000000-0000-4000-8000-000000000000", None),
    ("GET", "/api/v1/me/incident-support", None),
    ("PUT", "/api/v1/me/incident-support", {"services": ["triage"]}),
    (
        "POST",
        "/api/v1/incidents/help",
        {"sector": "health", "region": "nl", "type": "company", "size": "large"},
    ),
]


@pytest.fixture
def keys(client: Any, factory: Any, auth: dict[str, str]) -> dict[str, str]:
    p1 = factory.partner("P1 CSIRT", type="sectoral-csirt")
    real = factory.key(Role.PARTNER, p1)
    r = client.post(
        "/api/v1/admin/exercises", json={"name": "Drill", "participants": [p1.uuid]}, headers=auth
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/admin/exercises/{r.json()['uuid']}/keys", json={"partner": p1.uuid}, headers=auth
    )
    assert r.status_code == 201, r.text
    return {"real": real, "exercise": r.json()["key"]}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_an_exercise_key_is_refused_where_no_exercise_is_known(
    client: Any, keys: dict[str, str], method: str, path: str, body: Any
) -> None:
    r = client.request(method, path, json=body, headers={"Authorization": keys["exercise"]})
    assert r.status_code == 403, (path, r.status_code, r.text)
    assert "exercise key" in r.json()["detail"]
    # the organisation's own key is not refused there (whatever the route answers then)
    real = client.request(method, path, json=body, headers={"Authorization": keys["real"]})
    assert real.status_code != 403 or "exercise key" not in real.text, (path, real.text)


TAXII = "application/taxii+json;version=2.1"
GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def _indicator(domain: str) -> dict[str, Any]:
    import uuid

    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-20T10:00:00.000Z",
        "modified": "2026-11-20T10:00:00.000Z",
        "name": "bad domain",
        "pattern": f"[domain-name:value = '{domain}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
        "object_marking_refs": [GREEN],
    }


def test_a_taxii_status_stays_in_the_scope_of_the_key_that_made_it(
    client: Any, keys: dict[str, str]
) -> None:
    """The status resource of an exercise key's submission names the exercise's objects: the
    same organisation's real key gets the answer about a status nobody made (and the other
    way round); each key reads its own."""
    import uuid

    made = {}
    for scope, key in keys.items():
        body = {"objects": [_indicator(f"{scope}.example")]}
        r = client.post(
            "/taxii2/cwn/collections/all/objects/",
            json=body,
            headers={"Authorization": key, "Accept": TAXII, "Content-Type": TAXII},
        )
        assert r.status_code == 202, r.text
        made[scope] = (r.json()["id"], body["objects"][0]["id"])
    nobody = client.get(
        f"/taxii2/cwn/status/{uuid.uuid4()}/",
        headers={"Authorization": keys["real"], "Accept": TAXII},
    )
    assert nobody.status_code == 404
    for scope, key in keys.items():
        own, own_object = made[scope]
        r = client.get(
            f"/taxii2/cwn/status/{own}/", headers={"Authorization": key, "Accept": TAXII}
        )
        assert r.status_code == 200 and own_object in r.text, r.text
        other, other_object = made["exercise" if scope == "real" else "real"]
        r = client.get(
            f"/taxii2/cwn/status/{other}/", headers={"Authorization": key, "Accept": TAXII}
        )
        assert r.status_code == 404, (scope, r.text)
        assert other_object not in r.text
        assert r.json()["title"] == nobody.json()["title"]


def test_a_cursor_continues_only_in_the_scope_it_was_handed_out_in(
    client: Any, factory: Any, keys: dict[str, str], auth: dict[str, str]
) -> None:
    """A real key's cursor replayed with the same organisation's exercise key (and the
    reverse) is refused as another query's (found by a black-box attack: it was accepted)."""
    from tests.builders import attr, event

    source = factory.partner("Cursor source", type="sectoral-csirt")
    src = {"Authorization": factory.key(Role.PARTNER, source)}
    for n in range(2):
        body = event(f"real {n}", tlp="green", distribution=3, attributes=[attr(f"10.7.7.{n}")])
        assert client.post("/api/v1/events", json=body, headers=src).status_code == 201
    real = {"Authorization": keys["real"]}
    first = client.get("/api/v1/events?limit=1", headers=real).json()
    assert first["next_cursor"], first
    cursor = first["next_cursor"]
    assert client.get(f"/api/v1/events?cursor={cursor}", headers=real).status_code == 200
    r = client.get(f"/api/v1/events?cursor={cursor}", headers={"Authorization": keys["exercise"]})
    assert r.status_code == 422 and r.json()["field"] == "cursor", r.text
    taxii = {"Accept": TAXII}
    base = "/taxii2/cwn/collections/all/objects/?limit=1"
    page = client.get(base, headers={**taxii, **real})
    assert page.status_code == 200, page.text
    token = page.json().get("next")
    assert token, page.json()
    assert client.get(f"{base}&next={token}", headers={**taxii, **real}).status_code == 200
    r = client.get(f"{base}&next={token}", headers={**taxii, "Authorization": keys["exercise"]})
    assert r.status_code == 400, r.text


def test_every_object_of_an_exercise_stix_export_is_marked(
    client: Any, keys: dict[str, str]
) -> None:
    """``?format=stix`` and ``/misp`` restSearch ``stix2`` mark every object of an exercise
    event as TAXII does (a black-box attack found only the report marked there)."""
    from tests.builders import attr, event

    h = {"Authorization": keys["exercise"]}
    body = event("drill", tlp="green", distribution=1, attributes=[attr("203.0.113.77")])
    r = client.post("/api/v1/events", json=body, headers=h)
    assert r.status_code == 201, r.text
    uuid = body["Event"]["uuid"]
    rest = client.get(f"/api/v1/events/{uuid}?format=stix", headers=h)
    assert rest.status_code == 200, rest.text
    misp = client.post(
        "/misp/events/restSearch",
        json={"uuid": uuid, "returnFormat": "stix2"},
        headers={**h, "Accept": "application/json", "Content-Type": "application/json"},
    )
    assert misp.status_code == 200, misp.text
    for bundle in (rest.json(), misp.json()):
        objects = [o for o in bundle["objects"] if o["type"] != "marking-definition"]
        assert len(objects) >= 3, bundle  # the report, the identity, the indicator at least
        for obj in objects:
            assert "exercise" in obj.get("labels", []) and obj.get("x_cwn_exercise"), obj
    real = client.get(f"/api/v1/events/{uuid}?format=stix", headers={"Authorization": keys["real"]})
    assert real.status_code == 404


def test_attribute_answers_of_an_exercise_carry_its_mark(client: Any, keys: dict[str, str]) -> None:
    """Attribute-level answers show no event: each exercise attribute carries the exercise
    tag itself (REST, /misp restSearch JSON and CSV), the TLP tag still last."""
    from tests.builders import attr, event

    h = {"Authorization": keys["exercise"]}
    body = event("drill", tlp="green", distribution=1, attributes=[attr("203.0.113.78")])
    assert client.post("/api/v1/events", json=body, headers=h).status_code == 201
    rest = client.get("/api/v1/attributes?value=203.0.113.78", headers=h)
    assert rest.status_code == 200, rest.text
    [item] = rest.json()["items"]
    assert "cwn:exercise=" in str(item), item
    misp_h = {**h, "Accept": "application/json", "Content-Type": "application/json"}
    found = client.post(
        "/misp/attributes/restSearch", json={"value": "203.0.113.78"}, headers=misp_h
    )
    [a] = found.json()["response"]["Attribute"]
    names = [t["name"] for t in a["Tag"]]
    assert names[0].startswith("cwn:exercise=") and names[-1] == "tlp:green", names
    csv = client.post(
        "/misp/attributes/restSearch",
        json={"value": "203.0.113.78", "returnFormat": "csv"},
        headers=misp_h,
    )
    assert csv.status_code == 200 and "cwn:exercise=" in csv.text, csv.text
