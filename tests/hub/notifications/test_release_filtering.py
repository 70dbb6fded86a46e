"""Regression: what a fetch releases is what was decided now — the text, label and JSON
body are rebuilt from the kept observations, withdrawn values are not delivered, and a
refused fetch is audited (the 404 does not roll the refusal back)."""

from __future__ import annotations

import copy

from sqlalchemy import select

from hub.db import session_scope
from hub.models import AuditEntry, Notification
from hub.vocabulary import Role
from tests.builders import attr, event


def _mixed(factory, desk):
    """An ISP passing on one GREEN and one AMBER observation of a GREEN event."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    key = factory.key(Role.PARTNER, isp)
    ev = event(tlp="green", attributes=[attr("10.1.1.1"), attr("10.2.2.2", "amber")])
    desk.ingest(source, ev)
    desk.drain()
    return source, isp, key, ev


def _audit_after(maker, seq):
    with session_scope(maker) as s:
        return s.scalars(
            select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq)
        ).all()


def _last_seq(maker):
    with session_scope(maker) as s:
        return s.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1)) or 0


def test_text_and_label_rerendered_from_kept_observations(client, factory, desk, maker, auth):
    _, isp, key, _ = _mixed(factory, desk)
    [before] = client.get("/api/v1/notifications?via=me", headers={"Authorization": key}).json()[
        "items"
    ]
    assert {o["value"] for o in before["observations"]} == {"10.1.1.1", "10.2.2.2"}
    assert before["tlp"] == "amber" and "10.2.2.2" in before["text"]
    r = client.patch(
        f"/api/v1/admin/partners/{isp.uuid}", json={"tier": "connection"}, headers=auth
    )
    assert r.status_code == 200, r.text
    seq = _last_seq(maker)
    for lang in ("en", "nl"):
        [item] = client.get(
            f"/api/v1/notifications?via=me&lang={lang}", headers={"Authorization": key}
        ).json()["items"]
        assert [o["value"] for o in item["observations"]] == ["10.1.1.1"]
        assert "10.2.2.2" not in item["text"]
        assert "10.1.1.1" in item["text"]
        assert item["tlp"] == "green" and "TLP:GREEN" in item["text"]
        assert "AMBER" not in item["text"]
        assert item["template"] == "cwn-dsn@1"
    one = client.get(f"/api/v1/notifications/{item['ticket']}", headers={"Authorization": key})
    assert one.status_code == 200
    assert "10.2.2.2" not in one.text
    [entry, *_] = [e for e in _audit_after(maker, seq) if e.action == "notify.release"]
    details = entry.body["details"]
    assert details["templates"] == {item["ticket"]: "cwn-dsn@1"}
    assert details["labels"] == {item["ticket"]: "green"}


def test_refused_fetch_is_audited(client, factory, desk, maker, auth):
    _, isp, key, _ = _mixed(factory, desk)
    with session_scope(maker) as s:
        ticket = s.scalar(select(Notification.ticket))
    r = client.patch(
        f"/api/v1/admin/partners/{isp.uuid}",
        json={"tier": "connection", "tlp_accepted_at": None},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    seq = _last_seq(maker)
    r = client.get(f"/api/v1/notifications/{ticket}", headers={"Authorization": key})
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    denies = [e for e in _audit_after(maker, seq) if e.action == "notify.release"]
    assert len(denies) == 1
    assert denies[0].decision == "deny" and denies[0].recipient_uuid == isp.uuid
    assert denies[0].body["details"]["withheld"] == [ticket]
    assert denies[0].body["details"]["tickets"] == []


def test_withdrawn_before_first_fetch_is_not_delivered(client, factory, desk, maker):
    source = factory.partner("Source")
    factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    isp = factory.partner("ISP2", constituency={"ip_prefixes": ["10.2.0.0/16"]})
    key = factory.key(Role.PARTNER, isp)
    keep = attr("10.2.0.1", timestamp="1700000001")
    gone = attr("10.2.0.2", timestamp="1700000001")
    ev = event(attributes=[keep, gone], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    desk.ingest(
        source,
        event(
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_100,
            attributes=[{**gone, "deleted": True, "timestamp": "1700000100"}],
        ),
    )
    desk.drain()
    # first fetch after the source withdrew one value
    [item] = client.get("/api/v1/notifications?via=me", headers={"Authorization": key}).json()[
        "items"
    ]
    assert [o["value"] for o in item["observations"]] == ["10.2.0.1"]
    assert "10.2.0.2" not in item["text"]
    assert item["corrections"][0]["kind"] == "retraction"
    assert item["corrections"][0]["attributes"] == [gone["uuid"]]
    assert item["correction"]


def test_everything_withdrawn_keeps_the_correction(client, factory, desk, maker):
    source = factory.partner("Source")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    key = factory.key(Role.PARTNER, isp)
    a = attr("10.2.0.1", timestamp="1700000001")
    ev = event(attributes=[a], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    [first] = client.get("/api/v1/notifications?via=me", headers={"Authorization": key}).json()[
        "items"
    ]
    assert first["observations"]  # delivered once: the retraction must reach it
    desk.ingest(
        source,
        event(
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_200,
            attributes=[{**a, "deleted": True, "timestamp": "1700000200"}],
        ),
    )
    desk.drain()
    [item] = client.get("/api/v1/notifications?via=me", headers={"Authorization": key}).json()[
        "items"
    ]
    assert item["ticket"] == first["ticket"]
    assert item["status"] == "retracted"
    assert item["observations"] == [] and "10.2.0.1" not in item["text"]
    assert item["corrections"][0]["kind"] == "retraction"


def test_withdrawn_before_first_delivery_is_never_delivered(client, factory, desk, maker):
    """A retraction of something the addressee never received would only tell it existed."""
    source = factory.partner("Source")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    key = {"Authorization": factory.key(Role.PARTNER, isp)}
    a = attr("10.2.0.1", timestamp="1700000001")
    ev = event(attributes=[a], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    with session_scope(maker) as s:
        ticket = s.scalar(select(Notification.ticket))
    assert ticket
    desk.ingest(
        source,
        event(
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_200,
            attributes=[{**a, "deleted": True, "timestamp": "1700000200"}],
        ),
    )
    desk.drain()
    assert client.get("/api/v1/notifications?via=me", headers=key).json()["items"] == []
    assert client.get(f"/api/v1/notifications/{ticket}", headers=key).status_code == 404


def test_a_sector_notification_needs_something_the_recipient_may_see(client, factory, desk):
    """Regression: a sector match named an event the recipient may receive nothing of."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    # A connection-tier partner receives up to GREEN; a direct target for the sector.
    town = factory.partner("Town", tier="connection")
    key = factory.key(Role.PARTNER, town)
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"sectors": ["health"]},
        headers={"Authorization": factory.key(Role.OPERATOR)},
    )
    assert r.status_code == 200, r.text
    hidden = event(
        "only amber inside",
        tlp=None,
        Tag=[{"name": "tlp:green"}, {"name": 'cwn:sector="health"'}],
        attributes=[attr("192.0.2.50", "amber")],
    )
    shown = event(
        "green inside",
        tlp=None,
        Tag=[{"name": "tlp:green"}, {"name": 'cwn:sector="health"'}],
        attributes=[attr("192.0.2.51")],
    )
    desk.ingest(source, hidden, shown)
    desk.drain()
    items = client.get("/api/v1/notifications", headers={"Authorization": key}).json()["items"]
    cases = {n["case"] for n in items}
    assert hidden["Event"]["uuid"] not in cases and "only amber inside" not in str(items)
    assert shown["Event"]["uuid"] in cases


def test_a_refetch_is_decided_against_the_current_version(client, factory, desk):
    """Regression: a GREEN notification kept answering with its value after the event was
    re-ingested as RED."""
    source, isp, key, ev = _mixed(factory, desk)
    [before] = client.get("/api/v1/notifications?via=me", headers={"Authorization": key}).json()[
        "items"
    ]
    assert "10.1.1.1" in {o["value"] for o in before["observations"]}
    redder = copy.deepcopy(ev)
    redder["Event"]["timestamp"] = str(int(ev["Event"]["timestamp"]) + 100)
    redder["Event"]["Tag"] = [{"name": "tlp:red"}]
    for a in redder["Event"]["Attribute"]:
        a["timestamp"] = redder["Event"]["timestamp"]
    desk.ingest(source, redder)
    again = client.get(f"/api/v1/notifications/{before['ticket']}", headers={"Authorization": key})
    assert again.status_code == 404 or "10.1.1.1" not in again.text
    listed = client.get("/api/v1/notifications?via=me", headers={"Authorization": key})
    assert "10.1.1.1" not in listed.text
