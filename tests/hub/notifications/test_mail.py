"""E-mail delivery through a real SMTP server (aiosmtpd on a loopback port): the right
contacts get exactly the right mails, each send is an audited release decided again,
AMBER+STRICT and RED never go by mail towards a constituent, an unreachable server is
retried with backoff and the mail delivered once, and a crash after the server accepted a
mail resends it only with the same Message-ID."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

import tlp
from hub.db import session_scope
from hub.models import AuditEntry, LineageActivity, Notification
from hub.models.base import utcnow
from hub.models.notification import NotificationMail
from hub.notifications import mail
from hub.runtime import Runtime
from hub.worker import run_due
from tests.builders import attr, event
from tests.hub.notifications.test_routing import to_constituent, to_partner


class Sink:
    """An SMTP server that keeps what it accepted (envelope recipients and parsed message)."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int) -> tuple[Sink, Controller]:
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return sink, controller


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def sink(smtp_port: int) -> Iterator[Sink]:
    received, controller = start_sink(smtp_port)
    yield received
    controller.stop()


@pytest.fixture
def mailing(settings: Any, smtp_port: int) -> Runtime:
    smtp = {
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "smtp_from": "CWN hub <dsn@hub.example.nl>",
        "smtp_timeout_seconds": 5,
        "notify_interval_seconds": 0,
    }
    return Runtime(settings=settings.model_copy(update=smtp), policy=tlp.DEFAULT_POLICY)


def contact(email_address: str, role: str = "notification") -> dict[str, str]:
    return {"name": f"desk {email_address}", "email": email_address, "role": role}


def mid(msg: EmailMessage) -> str:
    """The Message-ID as sent (a long header is folded on the wire)."""
    return str(msg["Message-ID"]).strip()


def text_of(msg: EmailMessage) -> str:
    body = msg.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def json_of(msg: EmailMessage) -> dict[str, Any]:
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/json"
    return dict(json.loads(attachment.get_content()))


def audit_of(maker: Any, action: str) -> list[AuditEntry]:
    with session_scope(maker) as s:
        return list(
            s.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            )
        )


def one_direct(client: Any, factory: Any, desk: Any, auth: Any) -> Any:
    """A partner registered as a target with a notification contact, and one notification."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    town = factory.partner("Town", type="government", contacts=[contact("cert@town.example")])
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"ip_prefixes": ["12.0.0.0/8"]},
        headers=auth,
    )
    assert r.status_code == 200
    desk.ingest(source, event(tlp="green", attributes=[attr("12.1.1.1")]))
    desk.drain()
    return town


LABELS = {
    "10.1.1.1": "green",
    "10.2.2.2": "amber+strict",
    "10.3.3.3": "red",
    "12.1.1.1": "red",
    "11.1.1.1": "green",
}


def test_right_contacts_get_exactly_the_right_mails(
    client, factory, desk, maker, auth, sink, mailing
):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner(
        "ISP",
        constituency={"ip_prefixes": ["10.0.0.0/8"]},
        contacts=[contact("abuse@isp.example"), contact("ceo@isp.example", "management")],
    )
    town = factory.partner(
        "Town",
        type="government",
        region="saba",
        contacts=[contact("cert@town.example", "Notification")],
    )
    quiet = factory.partner("Quiet ISP", constituency={"ip_prefixes": ["11.0.0.0/8"]})
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"ip_prefixes": ["12.0.0.0/8"]},
        headers=auth,
    )
    assert r.status_code == 200
    members = [source.uuid, isp.uuid, town.uuid, quiet.uuid]
    attrs = [attr(value, label) for value, label in LABELS.items()]
    desk.ingest(source, event(tlp="green", distribution=4, members=members, attributes=attrs))
    desk.drain()

    done = run_due(maker, mailing)

    assert done["notification-delivery"] == 2
    by_to = {tuple(to): msg for to, msg in sink.received}
    assert set(by_to) == {("abuse@isp.example",), ("cert@town.example",)}
    with session_scope(maker) as s:
        notes = {n.recipient_ref: n for n in s.scalars(select(Notification))}
        mails = {m.notification_id: m for m in s.scalars(select(NotificationMail))}
    town_note = notes[town.uuid]
    [isp_note] = [n for n in notes.values() if n.via_partner_id == isp.id]
    [quiet_note] = [n for n in notes.values() if n.via_partner_id == quiet.id]
    expected = {
        ("abuse@isp.example",): (
            isp_note,
            "Beste constituent of ISP",
            lambda lb: to_constituent(lb, "core", True, 4),
        ),
        ("cert@town.example",): (
            town_note,
            "Dear Town",
            lambda lb: to_partner(lb, "core", True, 4),
        ),
    }
    for to, (note, greeting, oracle) in expected.items():
        msg = by_to[to]
        assert msg["Subject"].startswith(f"[{note.ticket}]")
        assert mid(msg) == mails[note.id].message_id
        assert note.ticket in mid(msg) and mid(msg).endswith("@hub.example.nl>")
        assert msg["X-CWN-Ticket"] == note.ticket
        text = text_of(msg)
        assert greeting in text
        mailed = {o["value"] for o in json_of(msg)["observations"]}
        prefix = "12." if note is town_note else "10."
        # exactly what the oracle lets through to this addressee, nothing of anyone else
        allowed = {v for v, lb in LABELS.items() if v.startswith(prefix) and oracle(lb)}
        assert mailed == allowed and allowed
        for value in LABELS:
            assert (value in text) is (value in allowed), (to, value)
    assert by_to[("cert@town.example",)]["X-Hub-TLP"] == "red"
    # AMBER+STRICT and RED never leave by mail towards a constituent
    assert not to_constituent("amber+strict", "core", True, 4)
    assert not to_constituent("red", "core", True, 4)
    assert town_note.status == isp_note.status == "sent" and quiet_note.status == "pending"

    sends = [e for e in audit_of(maker, "notify.release") if e.body["details"]["medium"] == "email"]
    assert sorted(e.recipient_uuid for e in sends) == sorted([isp.uuid, town.uuid])
    for entry in sends:
        details = entry.body["details"]
        assert entry.decision == "allow" and entry.channel == "notify-partner"
        [ticket] = details["tickets"]
        note = isp_note if ticket == isp_note.ticket else town_note
        assert details["message_id"] == mails[note.id].message_id
    with session_scope(maker) as s:
        acts = s.scalars(select(LineageActivity).where(LineageActivity.kind == "send")).all()
        assert sorted(a.on_behalf_of for a in acts) == sorted([isp.uuid, town.uuid])

    assert run_due(maker, mailing)["notification-delivery"] == 0
    assert len(sink.received) == 2


def test_smtp_down_is_retried_later_and_delivered_once(
    client, factory, desk, maker, auth, smtp_port, mailing
):
    one_direct(client, factory, desk, auth)
    t0 = utcnow()
    send = {"settings": mailing.settings, "policy": mailing.policy}

    assert mail.send_next(maker, now=t0, **send) == 1  # nobody listens on the port
    with session_scope(maker) as s:
        row = s.scalars(select(NotificationMail)).one()
        assert (row.state, row.attempts) == ("queued", 1)
        assert "connect" in (row.last_error or "")
        assert row.next_attempt_at == t0 + timedelta(seconds=60)
        assert s.scalars(select(Notification.status)).one() == "pending"
    [failed] = audit_of(maker, "notify.mail-failed")
    assert failed.body["details"]["message_id"] == row.message_id
    assert [
        e for e in audit_of(maker, "notify.release") if e.body["details"].get("medium") == "email"
    ] == []

    sink, controller = start_sink(smtp_port)
    try:
        assert mail.send_next(maker, now=t0 + timedelta(seconds=30), **send) == 0  # backoff
        assert sink.received == []
        assert mail.send_next(maker, now=t0 + timedelta(seconds=61), **send) == 1
        assert mail.send_next(maker, now=t0 + timedelta(days=1), **send) == 0
    finally:
        controller.stop()
    [(to, msg)] = sink.received
    assert to == ["cert@town.example"] and mid(msg) == row.message_id
    with session_scope(maker) as s:
        row = s.scalars(select(NotificationMail)).one()
        assert (row.state, row.attempts) == ("sent", 2)
        assert s.scalars(select(Notification.status)).one() == "sent"
    assert (
        len(
            [
                e
                for e in audit_of(maker, "notify.release")
                if e.body["details"].get("medium") == "email"
            ]
        )
        == 1
    )


def test_crash_after_the_server_accepted_resends_only_the_same_message_id(
    client, factory, desk, maker, auth, sink, mailing
):
    one_direct(client, factory, desk, auth)
    t0 = utcnow()
    send = {"settings": mailing.settings, "policy": mailing.policy}
    with session_scope(maker) as s:
        taken = mail.claim(s, now=t0, **send)
    assert taken is not None and taken.message is not None
    mail.deliver(mailing.settings, taken.message, taken.recipients)
    # the worker dies here: the server has the mail, the hub has not marked it

    assert mail.send_next(maker, now=t0 + timedelta(seconds=10), **send) == 0  # leased
    assert len(sink.received) == 1
    assert mail.send_next(maker, now=t0 + timedelta(minutes=10), **send) == 1
    assert mail.send_next(maker, now=t0 + timedelta(days=1), **send) == 0
    ids = [mid(msg) for _, msg in sink.received]
    assert len(ids) == 2 and len(set(ids)) == 1  # a copy the receiver can recognise
    with session_scope(maker) as s:
        row = s.scalars(select(NotificationMail)).one()
        assert row.state == "sent" and row.message_id == ids[0]
    assert (
        len(
            [
                e
                for e in audit_of(maker, "notify.release")
                if e.body["details"].get("medium") == "email"
            ]
        )
        == 1
    )


def test_refused_at_send_time_is_withheld_and_audited(
    client, factory, desk, maker, auth, sink, mailing
):
    town = one_direct(client, factory, desk, auth)
    r = client.patch(
        f"/api/v1/admin/partners/{town.uuid}", json={"tlp_accepted_at": None}, headers=auth
    )
    assert r.status_code == 200, r.text

    assert run_due(maker, mailing)["notification-delivery"] == 1
    assert run_due(maker, mailing)["notification-delivery"] == 0
    assert sink.received == []
    with session_scope(maker) as s:
        row = s.scalars(select(NotificationMail)).one()
        note = s.scalars(select(Notification)).one()
    assert row.state == "withheld" and note.status == "pending"
    [entry] = [
        e for e in audit_of(maker, "notify.release") if e.body["details"].get("medium") == "email"
    ]
    assert entry.decision == "deny" and entry.recipient_uuid == town.uuid
    assert entry.body["details"]["withheld"] == [note.ticket]
    assert entry.body["details"]["removed"][note.ticket][0][1:] == [
        "notify-partner",
        "no-tlp-agreement",
    ]


def test_no_smtp_host_no_mail(client, factory, desk, maker, auth, sink, mailing):
    one_direct(client, factory, desk, auth)
    plain = Runtime(
        settings=mailing.settings.model_copy(update={"smtp_host": None}), policy=mailing.policy
    )
    assert run_due(maker, plain)["notification-delivery"] == 0
    assert sink.received == []
    with session_scope(maker) as s:
        assert s.scalars(select(NotificationMail)).all() == []
