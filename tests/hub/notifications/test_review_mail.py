"""Review: a mail retried after the addressee changed its notification contacts goes to the
contacts of now, never to a contact that was removed (someone who left the organisation)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from hub.db import session_scope
from hub.models.base import utcnow
from hub.models.notification import NotificationMail
from hub.notifications import mail
from tests.hub.notifications import test_mail
from tests.hub.notifications.test_mail import audit_of, contact, one_direct, start_sink

# the SMTP fixtures of the e-mail tests
smtp_port, mailing = test_mail.smtp_port, test_mail.mailing


def test_a_retry_goes_to_the_contacts_of_now(
    client, factory, desk, maker, auth, smtp_port, mailing
):
    town = one_direct(client, factory, desk, auth)
    send = {"settings": mailing.settings, "policy": mailing.policy}
    t0 = utcnow()
    assert mail.send_next(maker, now=t0, **send) == 1  # the SMTP server is down
    r = client.patch(
        f"/api/v1/admin/partners/{town.uuid}",
        json={"contacts": [contact("new-cert@town.example")]},
        headers=auth,
    )
    assert r.status_code == 200, r.text

    sink, controller = start_sink(smtp_port)
    try:
        assert mail.send_next(maker, now=t0 + timedelta(seconds=61), **send) == 1
    finally:
        controller.stop()
    [(to, msg)] = sink.received
    assert to == ["new-cert@town.example"]
    assert "cert@town.example" not in str(msg["To"]).replace("new-cert@town.example", "")
    [entry] = [
        e for e in audit_of(maker, "notify.release") if e.body["details"].get("medium") == "email"
    ]
    assert entry.body["details"]["to"] == ["new-cert@town.example"]


def test_a_retry_with_no_contact_left_is_not_sent(
    client, factory, desk, maker, auth, smtp_port, mailing
):
    town = one_direct(client, factory, desk, auth)
    send = {"settings": mailing.settings, "policy": mailing.policy}
    t0 = utcnow()
    assert mail.send_next(maker, now=t0, **send) == 1  # the SMTP server is down
    r = client.patch(f"/api/v1/admin/partners/{town.uuid}", json={"contacts": []}, headers=auth)
    assert r.status_code == 200, r.text

    sink, controller = start_sink(smtp_port)
    try:
        assert mail.send_next(maker, now=t0 + timedelta(seconds=61), **send) == 1
    finally:
        controller.stop()
    assert sink.received == []
    with session_scope(maker) as s:
        row = s.scalars(select(NotificationMail)).one()
        assert row.state == "queued" and row.attempts == 2
        assert "no notification contact" in (row.last_error or "")
    assert len(audit_of(maker, "notify.mail-failed")) == 2
