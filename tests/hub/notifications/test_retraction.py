"""Retraction: deleting an attribute upstream corrects exactly the affected recipients."""

from __future__ import annotations

from sqlalchemy import select

from hub.db import session_scope
from hub.models import AuditEntry, Directive, Notification, NotificationCorrection
from hub.vocabulary import Role
from tests.builders import attr, event


def test_deleting_an_attribute_corrects_only_its_recipients(client, factory, desk, maker):
    source = factory.partner("Source")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    zcert = factory.partner("Z-CERT", constituency={"ip_prefixes": ["10.1.0.0/16"]})
    other = factory.partner("Other", constituency={"ip_prefixes": ["11.0.0.0/8"]})
    keep_isp, gone, keep_z, pending = (
        attr("10.2.0.1", timestamp="1700000001"),
        attr("10.2.0.2", timestamp="1700000001"),
        attr("10.1.0.1", timestamp="1700000001"),
        attr("11.0.0.1", timestamp="1700000001"),
    )
    ev = event(attributes=[keep_isp, gone, keep_z], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    isp_key = factory.key(Role.PARTNER, isp)
    before = client.get("/api/v1/notifications?via=me", headers={"Authorization": isp_key}).json()
    assert {o["value"] for o in before["items"][0]["observations"]} == {"10.2.0.1", "10.2.0.2"}
    # the source deletes one attribute (and adds one that is then matched as usual)
    edit = event(
        uuid=ev["Event"]["uuid"],
        timestamp=1_700_000_100,
        attributes=[{**gone, "deleted": True, "timestamp": "1700000100"}, pending],
    )
    desk.ingest(source, edit)
    desk.drain()
    with session_scope(maker) as session:
        notes = {n.via_partner_id: n for n in session.scalars(select(Notification))}
        corrections = session.scalars(select(NotificationCorrection)).all()
        assert [(c.notification_id, c.kind, c.attribute_uuids) for c in corrections] == [
            (notes[isp.id].id, "retraction", [gone["uuid"]])
        ]
        assert notes[isp.id].correction and gone["uuid"] in notes[isp.id].correction
        assert notes[isp.id].status == "sent"  # one observation is left
        assert notes[zcert.id].correction is None
        assert notes[other.id].correction is None  # the new attribute: a fresh notification
        retracts = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "notify.retract")
        ).all()
        assert [e.recipient_uuid for e in retracts] == [isp.uuid]
        assert (
            session.scalar(select(Directive.state).where(Directive.value == "10.2.0.2"))
            == "notified"
        )
    after = client.get("/api/v1/notifications?via=me", headers={"Authorization": isp_key}).json()
    item = after["items"][0]
    assert item["corrections"][0]["attributes"] == [gone["uuid"]]
    assert item["corrections"][0]["kind"] == "retraction"


def test_withdrawing_everything_retracts_the_notification(factory, desk, maker):
    source = factory.partner("Source")
    factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    a = attr("10.2.0.1", timestamp="1700000001")
    ev = event(attributes=[a], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    desk.ingest(
        source,
        event(
            uuid=ev["Event"]["uuid"],
            timestamp=1_700_000_200,
            attributes=[{**a, "deleted": True, "timestamp": "1700000200"}],
        ),
    )
    desk.drain()
    with session_scope(maker) as session:
        note = session.scalar(select(Notification))
        assert note.status == "retracted"
