"""Aggregation: one notification per recipient, kind and case, each with its own opaque ticket;
repeats within the window suppressed; per-recipient rate limit honoured."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlalchemy import func, select

from hub.db import session_scope
from hub.models import Directive, Notification, NotificationItem, Observation
from hub.notifications import service
from tests.builders import attr, event


def test_thousand_observations_ten_recipients(client, factory, desk, maker, auth):
    source = factory.partner("Source")
    targets = []
    for i in range(10):
        p = factory.partner(f"Target {i}", tier="core")
        r = client.put(
            f"/api/v1/admin/notifications/targets/{p.uuid}",
            json={"ip_prefixes": [f"10.{i}.0.0/16"]},
            headers=auth,
        )
        assert r.status_code == 200
        targets.append(p)
    attrs = [attr(f"10.{i}.{j // 250}.{j % 250}") for i in range(10) for j in range(100)]
    desk.ingest(source, event(attributes=attrs, tlp="amber"))
    assert desk.drain() == 1 + 10  # one matching unit, ten notifications
    year = datetime.now(UTC).strftime("%Y")
    with session_scope(maker) as session:
        notes = session.scalars(select(Notification).order_by(Notification.id)).all()
        assert len({n.ticket for n in notes}) == 10
        for n in notes:
            assert re.fullmatch(
                rf"CWN-{year}-[0-9A-HJKMNP-TV-Z]{{4}}-[0-9A-HJKMNP-TV-Z]{{4}}", n.ticket
            )
            values = session.scalars(
                select(Observation.value)
                .join(NotificationItem, NotificationItem.observation_id == Observation.id)
                .where(NotificationItem.notification_id == n.id)
            ).all()
            i = [p.id for p in targets].index(n.recipient_partner_id)
            assert len(values) == 100 and all(v.startswith(f"10.{i}.") for v in values)
            assert n.template == "cwn-dsn@1" and n.tlp == "amber"
            assert n.body["text"]["nl"].startswith(f"[{n.ticket}] TLP:AMBER")
            assert "Waarnemingen" in n.body["text"]["nl"] and "Observations" in n.body["text"]["en"]
            assert len(n.body_sha256) == 64


def test_repeats_suppressed_and_rate_limit(client, factory, desk, maker, auth):
    source = factory.partner("Source")
    t = factory.partner("Target", tier="core")
    client.put(
        f"/api/v1/admin/notifications/targets/{t.uuid}",
        json={"ip_prefixes": ["10.0.0.0/8"]},
        headers=auth,
    )
    desk.ingest(source, event(attributes=[attr("10.0.0.1"), attr("10.0.0.1", type="ip-src")]))
    desk.drain()
    # the same value again in another case, within the window: suppressed
    desk.ingest(source, event(attributes=[attr("10.0.0.1"), attr("10.0.0.2")]))
    desk.drain()
    with session_scope(maker) as session:
        notes = session.scalars(select(Notification).order_by(Notification.id)).all()
        assert len(notes) == 2
        states = dict(
            session.execute(select(Directive.state, func.count()).group_by(Directive.state)).all()
        )
        assert states == {"notified": 2, "suppressed": 2}
        assert [o["value"] for o in notes[1].body["json"]["observations"]] == ["10.0.0.2"]
    # rate limit of 2 per hour reached: a third case waits
    rules = service.Rules(interval_seconds=0, rate_limit=2)
    desk.ingest(source, event(attributes=[attr("10.0.0.3")]))
    assert desk.drain(rules) == 1  # matched, not aggregated
    with session_scope(maker) as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 2
        assert session.scalar(select(func.count()).where(Directive.state == "pending")) == 1
    assert desk.drain(service.Rules(interval_seconds=0, rate_limit=3)) == 1


def test_interval_holds_a_group_until_due(factory, desk, maker, client, auth):
    source = factory.partner("Source")
    t = factory.partner("Target", tier="core")
    client.put(
        f"/api/v1/admin/notifications/targets/{t.uuid}",
        json={"ip_prefixes": ["10.0.0.0/8"]},
        headers=auth,
    )
    desk.ingest(source, event(attributes=[attr("10.0.0.1")]))
    assert desk.drain(service.Rules(interval_seconds=3600)) == 1  # matched; not due yet
    assert desk.drain() == 1
