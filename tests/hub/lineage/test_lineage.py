"""Lineage: backward from every notification to the exact item and rule versions; forward from
every item to every release, notification and feedback; PROV-JSON that `prov` reads back."""

from __future__ import annotations

import json

from prov.model import ProvDocument
from sqlalchemy import select

from hub.db import session_scope
from hub.models import Notification
from hub.notifications import matching
from hub.vocabulary import Role
from tests.builders import attr, event


def _world(client, factory, desk):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    zcert = factory.partner("Z-CERT", constituency={"ip_prefixes": ["10.1.0.0/16"]})
    a1, a2 = attr("10.2.0.1", timestamp="1700000001"), attr("10.1.0.1", timestamp="1700000001")
    ev = event(attributes=[a1, a2], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    # version 2 adds an observation for the ISP
    a3 = attr("10.3.0.1", timestamp="1700000050")
    desk.ingest(source, event(uuid=ev["Event"]["uuid"], timestamp=1_700_000_050, attributes=[a3]))
    desk.drain()
    return source, isp, zcert, ev["Event"]["uuid"], {"a1": a1, "a2": a2, "a3": a3}


def test_backward_forward_and_prov_json(client, factory, desk, maker, auth):
    source, isp, zcert, uuid, attrs = _world(client, factory, desk)
    isp_key = factory.key(Role.PARTNER, isp)
    client.get("/api/v1/notifications?via=me", headers={"Authorization": isp_key})
    client.get(f"/api/v1/events/{uuid}", headers={"Authorization": isp_key})  # a REST release
    with session_scope(maker) as session:
        notes = {n.ticket: n.via_partner_id for n in session.scalars(select(Notification))}
    assert len(notes) == 3  # ISP v1, Z-CERT v1, ISP v2 (another case version: own batch)
    expect = {
        (isp.id, 1): {attrs["a1"]["uuid"]},
        (zcert.id, 1): {attrs["a2"]["uuid"]},
        (isp.id, 2): {attrs["a3"]["uuid"]},
    }
    seen = set()
    for ticket, partner_id in notes.items():
        r = client.get(f"/api/v1/admin/lineage/notifications/{ticket}", headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        versions = {i["event_version"] for i in body["items"]}
        assert len(versions) == 1
        version = versions.pop()
        assert {i["attribute_uuid"] for i in body["items"]} == expect[(partner_id, version)]
        assert all(i["evidence"]["rule_version"] == matching.RULE_VERSION for i in body["items"])
        assert all(i["source"] == source.uuid for i in body["items"])
        arts = {(a["kind"], a["external_id"], a["version"]) for a in body["graph"]["artifacts"]}
        assert ("event", uuid, version) in arts and ("notification", ticket, 1) in arts
        plans = {a["plan"] for a in body["graph"]["activities"]}
        assert "template:cwn-dsn@1" in plans and "ingest:rest" in plans
        event_art = next(
            a
            for a in body["graph"]["artifacts"]
            if a["kind"] == "event" and a["version"] == version
        )
        assert event_art["source"] == source.uuid
        seen.add((partner_id, version))
        prov = client.get(
            f"/api/v1/admin/lineage/notifications/{ticket}?format=prov-json", headers=auth
        )
        doc = ProvDocument.deserialize(content=json.dumps(prov.json()), format="json")
        assert doc.get_records() and "wasDerivedFrom" in prov.json()
    assert seen == set(expect)

    r = client.get(f"/api/v1/admin/lineage/items/{uuid}", headers=auth)
    assert r.status_code == 200
    fwd = r.json()
    assert sorted(fwd["notifications"]) == sorted(notes)
    channels = {(x["recipient"], x["channel"]) for x in fwd["releases"] if x["allowed"]}
    assert (isp.uuid, "notify-partner") in channels and (isp.uuid, "rest") in channels
    kinds = {a["kind"] for a in fwd["graph"]["activities"]}
    assert {"ingest", "render", "deliver"} <= kinds
    prov = client.get(f"/api/v1/admin/lineage/items/{uuid}?format=prov-json", headers=auth).json()
    ProvDocument.deserialize(content=json.dumps(prov), format="json")
    assert (
        client.get(
            f"/api/v1/admin/lineage/items/{uuid}", headers={"Authorization": isp_key}
        ).status_code
        == 403
    )
    assert (
        client.get(
            "/api/v1/admin/lineage/items/00000000-0000-0000-0000-000000000000", headers=auth
        ).status_code
        == 404
    )


def test_feedback_in_forward_lineage_and_recipient_view(client, factory, desk, maker, auth):
    source, isp, zcert, uuid, _ = _world(client, factory, desk)
    zkey = factory.key(Role.PARTNER, zcert)
    [item] = client.get("/api/v1/notifications?via=me", headers={"Authorization": zkey}).json()[
        "items"
    ]
    client.post(
        f"/api/v1/notifications/{item['ticket']}/feedback",
        json={"kind": "not-ours"},
        headers={"Authorization": zkey},
    )
    fwd = client.get(f"/api/v1/admin/lineage/items/{uuid}", headers=auth).json()
    assert [f["kind"] for f in fwd["feedback"]] == ["not-ours"]
    assert "feedback" in {a["kind"] for a in fwd["graph"]["artifacts"]}
    mine = client.get(
        f"/api/v1/notifications/{item['ticket']}/lineage", headers={"Authorization": zkey}
    )
    assert mine.status_code == 200
    text = mine.text
    assert source.uuid not in text and "via hub" in text
    other = factory.key(Role.PARTNER, factory.partner("Other"))
    assert (
        client.get(
            f"/api/v1/notifications/{item['ticket']}/lineage", headers={"Authorization": other}
        ).status_code
        == 404
    )
