"""REST: recipients fetch their own notifications, partners fetch what to pass on (`via=me`);
every fetch is an audited release; feedback goes to the source anonymised by default."""

from __future__ import annotations

from sqlalchemy import select

from hub.audit import releases as release_index
from hub.db import session_scope
from hub.models import AuditEntry, Release
from hub.vocabulary import Role
from tests.builders import attr, event


def _world(client, factory, desk, auth):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    town = factory.partner("Town", type="government", tier="connection")
    client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"domains": ["town.example.nl"]},
        headers=auth,
    )
    ev = event(
        tlp="green",
        attributes=[attr("10.1.1.1"), attr("www.town.example.nl", type="hostname")],
    )
    desk.ingest(source, ev)
    desk.drain()
    keys = {
        "source": factory.key(Role.PARTNER, source),
        "isp": factory.key(Role.PARTNER, isp),
        "town": factory.key(Role.PARTNER, town),
        "other": factory.key(Role.PARTNER, factory.partner("Other")),
    }
    return ev["Event"]["uuid"], keys, town, isp


def test_fetch_own_and_via_me_audited(client, factory, desk, maker, auth):
    event_uuid, keys, town, isp = _world(client, factory, desk, auth)
    r = client.get("/api/v1/notifications", headers={"Authorization": keys["town"]})
    assert r.status_code == 200, r.text
    [mine] = r.json()["items"]
    assert mine["route"] == "direct" and mine["status"] == "sent"
    assert [o["value"] for o in mine["observations"]] == ["www.town.example.nl"]
    assert mine["text"].startswith(f"[{mine['ticket']}]")
    assert (
        client.get("/api/v1/notifications?via=me", headers={"Authorization": keys["town"]}).json()[
            "items"
        ]
        == []
    )
    r = client.get("/api/v1/notifications?via=me&lang=nl", headers={"Authorization": keys["isp"]})
    [passon] = r.json()["items"]
    assert passon["route"] == "via" and [o["value"] for o in passon["observations"]] == ["10.1.1.1"]
    assert "Beste constituent of ISP" in passon["text"]
    assert (
        client.get("/api/v1/notifications", headers={"Authorization": keys["isp"]}).json()["items"]
        == []
    )
    one = client.get(
        f"/api/v1/notifications/{mine['ticket']}", headers={"Authorization": keys["town"]}
    )
    assert one.status_code == 200 and one.json()["ticket"] == mine["ticket"]
    for who in ("other", "isp"):
        r = client.get(
            f"/api/v1/notifications/{mine['ticket']}", headers={"Authorization": keys[who]}
        )
        assert r.status_code == 404
    assert client.get("/api/v1/notifications").status_code == 401
    assert client.get("/api/v1/notifications", headers=auth).status_code == 403
    with session_scope(maker) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "notify.release").order_by(AuditEntry.seq)
        ).all()
        delivered = [e for e in entries if e.body["details"]["tickets"]]
        assert [e.recipient_uuid for e in delivered] == [town.uuid, isp.uuid, town.uuid]
        assert all(e.decision == "allow" and e.channel == "notify-partner" for e in delivered)
        release_index.catch_up(session)
        releases = session.scalars(
            select(Release).where(Release.channel == "notify-partner", Release.allowed.is_(True))
        ).all()
        assert {r.event_uuid for r in releases} == {event_uuid} and len(releases) == 3


def test_feedback_forwarded_anonymised_by_default(client, factory, desk, auth):
    event_uuid, keys, town, _ = _world(client, factory, desk, auth)
    town_h = {"Authorization": keys["town"]}
    ticket = client.get("/api/v1/notifications", headers=town_h).json()["items"][0]["ticket"]
    r = client.post(
        f"/api/v1/notifications/{ticket}/feedback", json={"kind": "ack"}, headers=town_h
    )
    assert r.status_code == 201 and r.json()["status"] == "acknowledged"
    assert r.json()["forward"] == "anonymised"
    r = client.post(
        f"/api/v1/notifications/{ticket}/feedback",
        json={"kind": "resolved", "text": "patched", "allow_attribution": True},
        headers=town_h,
    )
    assert r.json()["status"] == "resolved"
    assert (
        client.post(
            f"/api/v1/notifications/{ticket}/feedback", json={"kind": "bogus"}, headers=town_h
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"/api/v1/notifications/{ticket}/feedback",
            json={"kind": "ack"},
            headers={"Authorization": keys["other"]},
        ).status_code
        == 404
    )
    got = client.get("/api/v1/feedback", headers={"Authorization": keys["source"]}).json()["items"]
    assert [(f["kind"], f["from"]) for f in got] == [
        ("ack", "via hub"),
        ("resolved", {"uuid": town.uuid, "name": "Town"}),
    ]
    assert all(f["event_uuid"] == event_uuid for f in got)
    assert (
        client.get("/api/v1/feedback", headers={"Authorization": keys["isp"]}).json()["items"] == []
    )
