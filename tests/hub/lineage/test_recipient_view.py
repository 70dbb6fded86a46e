"""Regression: a recipient's lineage view carries no observation values (those go out only
through the decided, audited fetch) and only its own ticket's part of the graph."""

from __future__ import annotations

from sqlalchemy import select

from hub.db import session_scope
from hub.models import Notification
from hub.vocabulary import Role
from tests.builders import attr, event


def test_recipient_lineage_has_no_values(client, factory, desk, maker, auth):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    key = factory.key(Role.PARTNER, isp)
    ev = event(tlp="green", attributes=[attr("10.1.1.1"), attr("10.2.2.2", "amber")])
    desk.ingest(source, ev)
    desk.drain()
    with session_scope(maker) as s:
        ticket = s.scalar(select(Notification.ticket))
    # the ISP may now receive the GREEN observation only (connection tier)
    client.patch(f"/api/v1/admin/partners/{isp.uuid}", json={"tier": "connection"}, headers=auth)
    for fmt in ("json", "prov-json"):
        r = client.get(
            f"/api/v1/notifications/{ticket}/lineage?format={fmt}",
            headers={"Authorization": key},
        )
        assert r.status_code == 200
        assert "10.2.2.2" not in r.text and "10.1.1.1" not in r.text
    items = client.get(
        f"/api/v1/notifications/{ticket}/lineage", headers={"Authorization": key}
    ).json()["items"]
    assert len(items) == 1  # only what it receives now: not how many there were
    for item in items:
        assert not {"value", "field", "type", "attribute_uuid", "hops"} & set(item)
        assert item["source"] == "via hub"
    # a notification refused whole has no lineage for it either (as a missing one)
    client.patch(
        f"/api/v1/admin/partners/{isp.uuid}",
        json={"tier": "connection", "tlp_accepted_at": None},
        headers=auth,
    )
    for path in (f"/api/v1/notifications/{ticket}", f"/api/v1/notifications/{ticket}/lineage"):
        assert client.get(path, headers={"Authorization": key}).status_code == 404
    # the operator view still has them
    r = client.get(f"/api/v1/admin/lineage/notifications/{ticket}", headers=auth)
    assert {i["value"] for i in r.json()["items"]} == {"10.1.1.1", "10.2.2.2"}


def test_recipient_lineage_is_restricted_to_its_ticket(client, factory, desk, maker, auth):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    others = [
        factory.partner("ISP2", constituency={"ip_prefixes": ["10.2.0.0/16"]}),
        factory.partner("ISP3", constituency={"ip_prefixes": ["10.3.0.0/16"]}),
    ]
    key = factory.key(Role.PARTNER, isp)
    other_key = factory.key(Role.PARTNER, others[0])
    ev = event(tlp="green", attributes=[attr("10.1.1.1"), attr("10.2.2.2"), attr("10.3.3.3")])
    desk.ingest(source, ev)
    desk.drain()
    [other_note] = client.get(
        "/api/v1/notifications?via=me", headers={"Authorization": other_key}
    ).json()["items"]
    [note] = client.get("/api/v1/notifications?via=me", headers={"Authorization": key}).json()[
        "items"
    ]
    ticket = note["ticket"]
    with session_scope(maker) as s:
        tickets = set(s.scalars(select(Notification.ticket)))
    assert len(tickets) == 3
    r = client.get(f"/api/v1/notifications/{ticket}/lineage", headers={"Authorization": key})
    assert r.status_code == 200
    graph = r.json()["graph"]
    kinds = [a["kind"] for a in graph["activities"]]
    assert kinds.count("decide") == 1 and "render" in kinds and "deliver" in kinds
    assert "ingest" not in kinds and "match" not in kinds
    assert "ingest:" not in r.text and '"rest"' not in r.text
    for other in tickets - {ticket}:
        assert other not in r.text
    assert all(o.uuid not in r.text for o in others)
    assert other_note["ticket"] not in r.text
    # only its own deliveries, and nothing that used another ticket's artifacts
    delivers = [a for a in graph["activities"] if a["kind"] == "deliver"]
    assert {a["on_behalf_of"] for a in delivers} == {isp.uuid}  # its fetches only
    art_ids = {a["id"] for a in graph["artifacts"]}
    assert {u["artifact"] for u in graph["uses"]} <= art_ids
    assert {a["kind"] for a in graph["artifacts"]} == {"notification", "event"}
    assert all(a["content_sha256"] is None for a in graph["artifacts"] if a["kind"] == "event")
