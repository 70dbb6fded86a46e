"""Lineage of products: both ways (which products used an item, what a product derives
from), as PROV edges and as the operators' query; withdrawing a source item flags the
products built on it for review, with an audit entry."""

from __future__ import annotations

from sqlalchemy import select

from hub.models import AuditEntry
from tests.builders import attr, event
from tests.hub.knowledge.conftest import headers, product_body, publish, submit


def _source(client, people) -> tuple[str, str, str]:
    a, b = attr("203.0.113.7"), attr("203.0.113.8")
    ev = event("Two findings", attributes=[a, b])
    return submit(client, people["source_key"], ev), a["uuid"], b["uuid"]


def test_lineage_both_ways(client, people, auth) -> None:
    event_uuid, a, _b = _source(client, people)
    product = publish(client, people, product_body([{"item": a}]))
    used = client.get(f"/api/v1/admin/knowledge/used-by/{a}", headers=auth).json()
    assert [(p["uuid"], p["version"]) for p in used["products"]] == [(product["uuid"], 1)]
    nothing = client.get(f"/api/v1/admin/knowledge/used-by/{_b}", headers=auth).json()
    assert nothing["products"] == []
    # PROV: forward from the source event to the product version and the product's event
    g = client.get(f"/api/v1/admin/lineage/items/{event_uuid}", headers=auth)
    assert g.status_code == 200, g.text
    arts = {(x["kind"], x["external_id"]) for x in g.json()["graph"]["artifacts"]}
    assert ("knowledge", product["uuid"]) in arts
    assert ("event", product["event_uuid"]) in arts
    # PROV: backward from the product to the source event's version
    back = client.get(f"/api/v1/admin/knowledge/{product['uuid']}/lineage", headers=auth).json()
    arts = {(x["kind"], x["external_id"]) for x in back["graph"]["artifacts"]}
    assert ("event", event_uuid) in arts and ("knowledge", product["uuid"]) in arts
    assert ("event", product["event_uuid"]) not in arts  # downstream, not a source
    # a partner cannot ask the operators' question
    r = client.get(f"/api/v1/admin/knowledge/used-by/{a}", headers=headers(people["green_key"]))
    assert r.status_code == 403


def test_withdrawn_source_flags_the_product_for_review(client, people, auth, maker) -> None:
    event_uuid, a, b = _source(client, people)
    built = publish(client, people, product_body([{"item": a}]))
    other = publish(client, people, product_body([{"item": b}], title="Other"))
    r = client.post(
        f"/api/v1/admin/events/{event_uuid}/attributes/{a}/verdict",
        json={"verdict": "false_positive", "reason": "sinkhole"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["knowledge_flagged"] == [built["uuid"]]
    mine = client.get(f"/api/v1/knowledge/{built['uuid']}", headers=headers(people["author"]))
    assert mine.json()["state"] == "needs-review"
    untouched = client.get(f"/api/v1/knowledge/{other['uuid']}", headers=headers(people["author"]))
    assert untouched.json()["state"] == "published"
    with maker() as s:
        entry = s.scalar(
            select(AuditEntry)
            .where(AuditEntry.object_ref == f"knowledge:{built['uuid']}")
            .where(AuditEntry.action == "knowledge.needs-review")
        )
    assert entry is not None
    # review again, then publish again: a new event version
    r = client.post(
        f"/api/v1/knowledge/{built['uuid']}/review", json={}, headers=headers(people["reviewer"])
    )
    assert r.status_code == 200 and r.json()["state"] == "reviewed"
    r = client.post(f"/api/v1/knowledge/{built['uuid']}/publish", headers=headers(people["author"]))
    assert r.status_code == 200 and r.json()["workflow"]["event_version"] == 2
    # the withdrawn item is no longer named or referenced in what recipients get
    seen = client.get(f"/api/v1/knowledge/{built['uuid']}", headers=headers(people["green_key"]))
    assert seen.status_code == 200 and a not in seen.text
    assert [s["credit"] for s in seen.json()["sources"]] == ["an anonymous source"]
    ev = client.get(f"/api/v1/events/{built['event_uuid']}", headers=headers(people["green_key"]))
    assert ev.status_code == 200 and a not in ev.text
    # deleting the whole source event flags the other product too
    r = client.delete(
        f"/api/v1/admin/events/{event_uuid}", params={"reason": "retracted"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["knowledge_flagged"]) == {built["uuid"], other["uuid"]}
