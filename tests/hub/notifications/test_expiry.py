"""Notifications nobody acknowledged within ``HUB_NOTIFY_EXPIRE_DAYS`` go to ``expired`` by
the worker, recorded in the audit log and the lineage; the recipient can still read them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

import tlp
from hub.db import session_scope
from hub.models import AuditEntry, LineageActivity, Notification
from hub.models.base import utcnow
from hub.notifications import feedback
from hub.runtime import Runtime
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr, event


def _four_notifications(client, factory, desk, auth):
    """Four towns, one notification each; returns their keys by town name."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    keys = {}
    attrs = []
    for i, name in enumerate(("fetched", "pending", "acked", "resolved")):
        town = factory.partner(name, type="government")
        client.put(
            f"/api/v1/admin/notifications/targets/{town.uuid}",
            json={"ip_prefixes": [f"12.{i}.0.0/16"]},
            headers=auth,
        )
        keys[name] = {"Authorization": factory.key(Role.PARTNER, town)}
        attrs.append(attr(f"12.{i}.0.1"))
    desk.ingest(source, event(tlp="green", attributes=attrs))
    desk.drain()
    for name in ("fetched", "acked", "resolved"):
        [item] = client.get("/api/v1/notifications", headers=keys[name]).json()["items"]
        kind = {"acked": "ack", "resolved": "resolved"}.get(name)
        if kind:
            r = client.post(
                f"/api/v1/notifications/{item['ticket']}/feedback",
                json={"kind": kind},
                headers=keys[name],
            )
            assert r.status_code == 201
    return keys


def _statuses(maker):
    with session_scope(maker) as s:
        return {n.recipient_name: n.status for n in s.scalars(select(Notification))}


def test_unacknowledged_expire_after_the_configured_days(client, factory, desk, maker, auth):
    keys = _four_notifications(client, factory, desk, auth)
    assert _statuses(maker) == {
        "fetched": "sent",
        "pending": "pending",
        "acked": "acknowledged",
        "resolved": "resolved",
    }
    now = utcnow()
    with session_scope(maker) as s:
        assert feedback.expire_due(s, days=30, now=now + timedelta(days=29)) == 0
    with session_scope(maker) as s:
        assert feedback.expire_due(s, days=30, now=now + timedelta(days=31)) == 2
    assert _statuses(maker) == {
        "fetched": "expired",
        "pending": "expired",
        "acked": "acknowledged",
        "resolved": "resolved",
    }
    with session_scope(maker) as s:
        assert feedback.expire_due(s, days=30, now=now + timedelta(days=31)) == 0
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "notify.expire")).all()
        acts = s.scalars(select(LineageActivity).where(LineageActivity.kind == "expire")).all()
        tickets = {
            n.ticket: n
            for n in s.scalars(select(Notification).where(Notification.status == "expired"))
        }
    assert {e.object_ref for e in entries} == {f"notification:{t}" for t in tickets}
    assert {e.body["details"]["was"] for e in entries} == {"sent", "pending"}
    assert all(e.recipient_uuid for e in entries)
    assert {a.params["ticket"] for a in acts} == set(tickets)

    # still readable by the recipient, and reading it does not revive it
    for name in ("fetched", "pending"):
        [item] = client.get("/api/v1/notifications", headers=keys[name]).json()["items"]
        assert item["status"] == "expired" and item["observations"]
        one = client.get(f"/api/v1/notifications/{item['ticket']}", headers=keys[name])
        assert one.status_code == 200 and one.json()["status"] == "expired"
    assert _statuses(maker)["pending"] == "expired"


def test_the_worker_expires_with_the_setting(client, factory, desk, maker, auth, settings):
    _four_notifications(client, factory, desk, auth)
    with session_scope(maker) as s:
        s.execute(
            update(Notification)
            .where(Notification.recipient_name == "pending")
            .values(created_at=utcnow() - timedelta(days=3))
        )
    context = Runtime(
        settings=settings.model_copy(update={"notify_expire_days": 2}), policy=tlp.DEFAULT_POLICY
    )
    assert run_due(maker, context)["notification-delivery"] == 1
    assert _statuses(maker)["pending"] == "expired"
    assert _statuses(maker)["fetched"] == "sent"
