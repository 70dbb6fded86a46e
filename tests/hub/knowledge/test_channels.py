"""A published product on every channel: a GREEN product reaches a partner allowed GREEN over
REST, /misp (real PyMISP, as an event report) and TAXII (real taxii2-client, a ``report`` and a
``note`` with the GREEN marking), and reaches a CLEAR-only partner on none of them. The public
page and feed carry CLEAR products only. An anonymous source is never named nor referenced by
uuid in anything a recipient receives (every channel harvested)."""

from __future__ import annotations

import json
from typing import Any

from pymisp import PyMISP
from taxii2client.v21 import as_pages

from hub.vocabulary import Role
from tests.hub.knowledge.conftest import headers, product_body, publish, source_event, submit
from tests.hub.taxii.conftest import collection

GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"


def harvest(client, url: str, key: str, product: dict[str, Any]) -> dict[str, str]:
    """Everything a partner receives about the product, per channel, as text."""
    out: dict[str, str] = {}
    r = client.get("/api/v1/knowledge", headers=headers(key))
    assert r.status_code == 200, r.text
    listed = [i for i in r.json()["items"] if i["uuid"] == product["uuid"]]
    got = client.get(f"/api/v1/knowledge/{product['uuid']}", headers=headers(key))
    assert got.status_code in (200, 404), got.text
    out["rest"] = json.dumps(listed) + (got.text if got.status_code == 200 else "")
    ev = client.get(f"/api/v1/events/{product['event_uuid']}", headers=headers(key))
    out["rest-event"] = ev.text if ev.status_code == 200 else ""
    misp = PyMISP(url + "/misp/", key, ssl=False, timeout=30)
    index = misp.search_index(minimal=True)
    found = [e for e in index if e["uuid"] == product["event_uuid"]]
    out["misp"] = json.dumps(misp.get_event(product["event_uuid"])) if found else ""
    coll = collection(url, key, "all")
    objects = [
        o for env in as_pages(coll.get_objects, per_request=100) for o in env.get("objects", [])
    ]
    out["taxii"] = json.dumps(
        [o for o in objects if o["type"] != "marking-definition" and _about(o, product)]
    )
    return out


def _about(obj: dict[str, Any], product: dict[str, Any]) -> bool:
    text = json.dumps(obj)
    return product["event_uuid"] in text or product["title"] in text or "Findings" in text


def test_green_product_reaches_green_partner_on_every_channel_and_no_clear_only_one(
    client, people, server_url
) -> None:
    item = submit(client, people["source_key"], source_event())
    product = publish(client, people, product_body([{"item": item}]))
    green = harvest(client, server_url, people["green_key"], product)
    for channel in ("rest", "rest-event", "misp", "taxii"):
        assert "Attackers reuse VPN credentials" in green[channel], channel
    # /misp: the event report, with the product's tags
    misp = json.loads(green["misp"])["Event"]
    tags = {t["name"] for t in misp["Tag"]}
    assert {"tlp:green", "cwn:knowledge-product", 'cwn-knowledge:theme="ot"'} <= tags
    assert [r["name"] for r in misp["EventReport"]] == [product["title"]]
    # TAXII: a report (the event) and a note (the event report), both marked GREEN
    objects = json.loads(green["taxii"])
    types = {o["type"] for o in objects}
    assert {"report", "note"} <= types, types
    for obj in objects:
        if obj["type"] in ("report", "note"):
            assert GREEN in obj["object_marking_refs"], obj
    clear = harvest(client, server_url, people["clear_key"], product)
    for channel, text in clear.items():
        assert "VPN credentials" not in text and product["uuid"] not in text, channel
        assert product["event_uuid"] not in text, channel


def test_anonymous_source_is_never_named_or_referenced(client, people, server_url, factory) -> None:
    quiet = factory.partner("Quiet CERT", type="sectoral-csirt", sectors=["health"])
    shy = factory.partner("Shy ISAC", type="isac", sectors=["energy"])
    secret = submit(client, factory.key(Role.PARTNER, quiet), source_event(chr=True))
    unnamed = submit(client, factory.key(Role.PARTNER, shy), source_event())
    named = submit(client, people["source_key"], source_event())
    product = publish(
        client,
        people,
        product_body([{"item": secret}, {"item": unnamed, "named": False}, {"item": named}]),
    )
    got = harvest(client, server_url, people["green_key"], product)
    for channel, text in got.items():
        assert "VPN credentials" in text, channel  # the product did arrive on this channel
        for hidden in (secret, unnamed, quiet.uuid, shy.uuid, "Quiet CERT", "Shy ISAC"):
            assert hidden not in text, (channel, hidden)
    # the named source is credited with its organisation and item, on every channel
    for channel in ("rest", "misp", "taxii"):
        assert named in got[channel] and "Source CSIRT" in got[channel], channel
    body = client.get(
        f"/api/v1/knowledge/{product['uuid']}", headers=headers(people["green_key"])
    ).json()
    anonymous = [s for s in body["sources"] if s.get("item") is None]
    assert [set(s) for s in anonymous] == [{"credit"}, {"credit"}]
    assert {s["credit"] for s in anonymous} == {"an anonymous source"}  # too few to hide in
    assert any(
        s.get("item") == named and s.get("organisation") == "Source CSIRT" for s in body["sources"]
    )
    # the owner reads its own record of who the sources are
    own = client.get(f"/api/v1/knowledge/{product['uuid']}", headers=headers(people["author"]))
    assert {s["item"] for s in own.json()["sources"]} == {secret, unnamed, named}


def test_an_item_narrowed_after_the_draft_is_credited_anonymously(client, people) -> None:
    ev = source_event()
    item = submit(client, people["source_key"], ev)
    r = client.post(
        "/api/v1/knowledge",
        json=product_body([{"item": item}]),
        headers=headers(people["author"]),
    )
    uuid = r.json()["uuid"]
    assert r.json()["sources"][0]["credit"].startswith("Source CSIRT")
    # the source now sends the item to a sharing group of itself and the author only
    narrowed = json.loads(json.dumps(ev))
    inner = narrowed["Event"]
    inner["distribution"] = "4"
    inner["timestamp"] = str(int(inner["timestamp"]) + 10)
    inner["SharingGroup"] = {
        "uuid": "5d2c1a4e-8f3b-4b6a-9c7d-2e1f0a9b8c7d",
        "name": "two",
        "SharingGroupOrg": [
            {"Organisation": {"uuid": people["source"].uuid, "name": "s"}},
            {"Organisation": {"uuid": people["author_org"].uuid, "name": "a"}},
        ],
    }
    r = client.post("/api/v1/events", json=narrowed, headers=headers(people["source_key"]))
    assert r.status_code == 201, r.text
    client.post(f"/api/v1/knowledge/{uuid}/review", json={}, headers=headers(people["reviewer"]))
    r = client.post(f"/api/v1/knowledge/{uuid}/publish", headers=headers(people["author"]))
    assert r.status_code == 200, r.text
    got = client.get(f"/api/v1/knowledge/{uuid}", headers=headers(people["green_key"]))
    assert got.status_code == 200 and item not in got.text and "Source CSIRT" not in got.text
    ev_uuid = r.json()["event_uuid"]
    got = client.get(f"/api/v1/events/{ev_uuid}", headers=headers(people["green_key"]))
    assert got.status_code == 200 and item not in got.text and "Source CSIRT" not in got.text


def test_anonymous_credit_names_a_sector_only_in_a_crowd(client, people, factory) -> None:
    crowd = [factory.partner(f"Hospital CERT {i}", sectors=["health"]) for i in range(5)]
    secret = submit(client, factory.key(Role.PARTNER, crowd[0]), source_event(chr=True))
    product = publish(client, people, product_body([{"item": secret}]))
    body = client.get(
        f"/api/v1/knowledge/{product['uuid']}", headers=headers(people["green_key"])
    ).json()
    assert [s["credit"] for s in body["sources"]] == ["a partner in the health sector"]
    assert "Hospital CERT" not in json.dumps(body)


def test_public_page_and_feed_carry_clear_products_only(client, people) -> None:
    clear_item = submit(client, people["source_key"], source_event("clear", distribution=3))
    green_item = submit(client, people["source_key"], source_event())
    public = publish(
        client, people, product_body([{"item": clear_item}], tlp="clear", title="Patch your VPN")
    )
    hidden = publish(client, people, product_body([{"item": green_item}], title="Green eyes only"))
    page = client.get("/public/knowledge", headers={"Accept": "text/html"})
    feed = client.get("/public/knowledge.atom")
    assert page.status_code == 200 and feed.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert feed.headers["content-type"].startswith("application/atom+xml")
    for text in (page.text, feed.text):
        assert "Patch your VPN" in text and public["uuid"] in text
        assert "Green eyes only" not in text and hidden["uuid"] not in text
        assert hidden["event_uuid"] not in text
    # the CLEAR source is named, with its item (it is CLEAR for everyone)
    assert clear_item in page.text
    # a CLEAR product from a source that is CLEAR but not addressed to everyone: anonymous
    community = submit(client, people["source_key"], source_event("clear", distribution=1))
    third = publish(client, people, product_body([{"item": community}], tlp="clear", title="Third"))
    page = client.get("/public/knowledge")
    assert third["uuid"] in page.text and community not in page.text


def test_public_page_and_feed_are_rate_limited_per_address(settings: Any, engine: Any) -> None:
    """Every public answer writes an audit entry: without a limit anyone could grow the log."""
    from fastapi.testclient import TestClient

    from hub.main import create_app

    limited = settings.model_copy(update={"public_help_limit": 2})
    with TestClient(create_app(limited, engine=engine)) as c:
        assert c.get("/public/knowledge").status_code == 200
        assert c.get("/public/knowledge.atom").status_code == 200
        r = c.get("/public/knowledge.atom")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        assert c.get("/public/knowledge").status_code == 429
        # the incident help route counts on its own
        assert (
            c.get(
                "/public/incident-help",
                params={"sector": "health", "region": "nl", "type": "company", "size": "large"},
            ).status_code
            == 200
        )
