"""E-mail delivery of notifications through the configured SMTP server (optional: no
``HUB_SMTP_HOST``, no e-mail).

A notification still pending (nobody fetched it) is mailed once to the notification contacts
(contact role ``notification``) of its addressee: the recipient itself, or for a
constituent the partner that passes it on. Every send is a release through
`hub.notifications.release` like a REST fetch: decided again, audited, a lineage ``send``
activity, pending → sent.

Send, then mark: the send record (`NotificationMail`, with a Message-ID derived from the
notification) is committed with a lease before the SMTP conversation, and the release is
recorded (audit, lineage, status) only once the server accepted the mail. SMTP cannot take
part in a transaction, so exactly-once is impossible; a crash after the server accepted the
mail and before the mark sends it again when the lease runs out, with the same Message-ID,
which lets the receiving side drop the copy. Marking first could lose a mail on a crash in
between, and losing a warning is worse than a recognisable duplicate. A failed send is
recorded (send row and audit entry) and retried with backoff, without end.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.audit import service as audit
from hub.db import session_scope
from hub.jobs import claiming
from hub.models import Notification, Partner, PartnerContact
from hub.models.base import utcnow
from hub.models.notification import NotificationMail
from hub.notifications import release
from hub.notifications.routing import participants_of
from hub.notifications.service import agent_for, partner_recipient
from hub.settings import Settings

AGENT = "job:notifications-mail"
CONTACT_ROLE = "notification"
RETRY_FIRST_SECONDS = 60
RETRY_MAX_SECONDS = 6 * 3600
EXERCISE_SUBJECT = "[OEFENING/EXERCISE]"
NO_CONTACT = "the addressee has no notification contact any more"
# English where it is the everyday language (Saba, Sint Eustatius, Sint Maarten), else Dutch.
_ENGLISH_REGIONS = frozenset({"saba", "sint-eustatius", "sint-maarten"})


class SendFailed(Exception):
    """The SMTP server could not be reached or refused the mail; the send is retried."""


def backoff(attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failure: 1 min, doubling, at most 6 h."""
    return timedelta(seconds=min(RETRY_FIRST_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS))


def language_of(partner: Partner) -> str:
    return "en" if partner.region in _ENGLISH_REGIONS else "nl"


def message_id(note: Notification, settings: Settings) -> str:
    """The same for every attempt at the same notification: duplicates are recognisable."""
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "cwn-hub"
    return f"<{note.ticket}.{note.uuid}@{domain}>"


def _addressee(note: Notification) -> int:
    partner_id = note.recipient_partner_id or note.via_partner_id
    assert partner_id is not None
    return partner_id


def _contacts(session: Session, partner_id: int) -> list[str]:
    return list(
        session.scalars(
            select(PartnerContact.email)
            .where(
                PartnerContact.partner_id == partner_id,
                func.lower(PartnerContact.role) == CONTACT_ROLE,
            )
            .order_by(PartnerContact.id)
        )
    )


def _next_due(session: Session, now: datetime) -> NotificationMail | None:
    return session.scalars(
        claiming(
            select(NotificationMail)
            .where(NotificationMail.state == "queued", NotificationMail.next_attempt_at <= now)
            .order_by(NotificationMail.next_attempt_at, NotificationMail.id)
            .limit(1)
        )
    ).first()


def _next_new(session: Session, settings: Settings) -> NotificationMail | None:
    """A pending notification not mailed yet whose addressee has a notification contact,
    with its send record (flushed: a concurrent worker fails on the unique key, not later)."""
    addressee = func.coalesce(Notification.recipient_partner_id, Notification.via_partner_id)
    has_contact = (
        select(PartnerContact.id)
        .where(
            PartnerContact.partner_id == addressee,
            func.lower(PartnerContact.role) == CONTACT_ROLE,
        )
        .exists()
    )
    mailed = select(NotificationMail.id).where(NotificationMail.notification_id == Notification.id)
    note = session.scalars(
        claiming(
            select(Notification)
            .where(Notification.status == "pending", ~mailed.exists(), has_contact)
            .order_by(Notification.id)
            .limit(1)
        )
    ).first()
    if note is None:
        return None
    partner = session.get(Partner, _addressee(note))
    assert partner is not None
    mail = NotificationMail(
        notification_id=note.id,
        partner_id=partner.id,
        message_id=message_id(note, settings),
        recipients=_contacts(session, partner.id),
        language=language_of(partner),
        state="queued",
        attempts=0,
    )
    session.add(mail)
    session.flush()
    return mail


def compose(
    released: release.Released, mail: NotificationMail, settings: Settings, now: datetime
) -> EmailMessage:
    """Subject (the template's first line, with the ticket; an exercise's prefixed
    ``[OEFENING/EXERCISE]``), the text in the addressee's language, and the JSON rendering
    as an attachment."""
    note = released.notification
    subject, _, text = released.body["text"][mail.language].partition("\n")
    if note.exercise_id is not None:  # exercise traffic, marked as the issue (#20) says
        subject = f"{EXERCISE_SUBJECT} {subject}"
    if note.correction:
        text += f"\n{note.correction}\n"
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = ", ".join(mail.recipients)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = mail.message_id
    msg["X-CWN-Ticket"] = note.ticket
    msg["X-Hub-TLP"] = released.tlp
    msg.set_content(text.lstrip("\n"))
    msg.add_attachment(
        orjson.dumps(released.body["json"], option=orjson.OPT_INDENT_2),
        maintype="application",
        subtype="json",
        filename=f"{note.ticket}.json",
    )
    return msg


def deliver(settings: Settings, msg: EmailMessage, recipients: list[str]) -> None:
    """Hand the mail to the SMTP server; raise SendFailed unless it accepted it.

    What goes wrong after the server accepted the data (QUIT) does not count as a failure:
    retrying then would send it twice.
    """
    assert settings.smtp_host is not None
    try:
        smtp = smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        )
    except OSError as err:
        raise SendFailed(f"cannot connect to {settings.smtp_host}: {err}") from err
    try:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        smtp.send_message(msg, from_addr=parseaddr(settings.smtp_from)[1], to_addrs=recipients)
    except (smtplib.SMTPException, OSError) as err:
        smtp.close()
        raise SendFailed(f"{type(err).__name__}: {err}") from err
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@dataclass(slots=True)
class Claim:
    """A mail taken for one attempt: its release decided (not yet recorded) and composed;
    ``message`` is None when the release path refused it (recorded already: never sent), or
    when the addressee has no notification contact left (``verdict`` None: recorded as a
    failed attempt, retried)."""

    mail_id: int
    verdict: release.Verdict | None
    message: EmailMessage | None
    recipients: list[str]


def claim(
    session: Session, *, settings: Settings, policy: tlp.Policy, now: datetime
) -> Claim | None:
    """Take the next due mail for one attempt: a lease (``next_attempt_at`` pushed past the
    longest SMTP conversation) keeps other workers off it while it is sent outside any
    transaction, and makes a worker that dies mid-send retry it after the lease."""
    mail = _next_due(session, now) or _next_new(session, settings)
    if mail is None:
        return None
    # Addressed to the contacts of now: a retry must not reach one removed since.
    mail.recipients = _contacts(session, mail.partner_id)
    if not mail.recipients:
        mark_failed(session, mail.id, NO_CONTACT, now=now)
        return Claim(mail.id, None, None, [])
    note = session.get(Notification, mail.notification_id)
    partner = session.get(Partner, mail.partner_id)
    assert note is not None and partner is not None
    verdict = release.decide(
        session, recipient=_mailed_as(session, note, partner), notes=[note], policy=policy
    )
    if not verdict.released:
        mail.state = "withheld"
        mail.last_error = "refused by the release path"
        mail.audit_seq = release.record(
            session,
            verdict,
            actor=agent_for(AGENT, note.exercise_id),
            activity="send",
            medium="email",
            extra=_extra(mail),
        )
        return Claim(mail.id, verdict, None, mail.recipients)
    mail.next_attempt_at = now + timedelta(seconds=settings.smtp_timeout_seconds * 4 + 60)
    message = compose(verdict.released[0], mail, settings, now)
    return Claim(mail.id, verdict, message, list(mail.recipients))


def _mailed_as(session: Session, note: Notification, partner: Partner) -> tlp.Recipient:
    """The addressee as the release path sees it: for an exercise's notification, the
    participant in that exercise (a partner that is none, or an exercise closed since, gets
    the real-traffic recipient, which ``tlp.in_scope`` refuses: the mail is withheld)."""
    exercise = note.exercise_id
    if exercise is not None and partner.id in participants_of(session, exercise):
        return partner_recipient(partner, exercise)
    return partner_recipient(partner)


def _extra(mail: NotificationMail) -> dict[str, Any]:
    return {"message_id": mail.message_id, "to": mail.recipients}


def mark_sent(session: Session, taken: Claim, *, now: datetime) -> None:
    """Record the release that was sent (the decision made when it was claimed), with its
    ``send`` lineage activity; the notification goes pending → sent."""
    mail = session.get(NotificationMail, taken.mail_id)
    assert taken.verdict is not None
    note = session.get(Notification, taken.verdict.notes[0].id)
    assert mail is not None and note is not None
    taken.verdict.notes = [note]
    for released in taken.verdict.released:
        released.notification = note
    mail.audit_seq = release.record(
        session,
        taken.verdict,
        actor=agent_for(AGENT, note.exercise_id),
        activity="send",
        medium="email",
        extra=_extra(mail),
    )
    mail.state = "sent"
    mail.sent_at = now
    mail.attempts += 1
    session.flush()


def mark_failed(session: Session, mail_id: int, error: str, *, now: datetime) -> None:
    """Record the failure on the send and in the audit log; the mail waits for its retry."""
    mail = session.get(NotificationMail, mail_id)
    assert mail is not None
    note = session.get(Notification, mail.notification_id)
    partner = session.get(Partner, mail.partner_id)
    assert note is not None and partner is not None
    mail.attempts += 1
    mail.last_error = error[:2000]
    mail.next_attempt_at = now + backoff(mail.attempts)
    audit.append(
        session,
        [
            audit.Record(
                action="notify.mail-failed",
                actor=agent_for(AGENT, note.exercise_id),
                object_ref=f"notification:{note.ticket}",
                recipient_uuid=partner.uuid,
                channel=release.CHANNEL.value,
                details={
                    "message_id": mail.message_id,
                    "attempt": mail.attempts,
                    "error": mail.last_error,
                    "next_attempt_at": mail.next_attempt_at.isoformat(),
                },
            )
        ],
    )
    session.flush()


def send_next(
    maker: sessionmaker[Session],
    *,
    settings: Settings,
    policy: tlp.Policy,
    now: datetime | None = None,
) -> int:
    """One unit of work: a failed mail whose retry is due, else the next pending notification
    not mailed yet. Three short transactions (claim, then sent or failed) with the SMTP
    conversation between them, so no transaction waits on the mail server. Returns 1 when
    it tried one, 0 when nothing is due (or no SMTP host is configured)."""
    if not settings.smtp_host:
        return 0
    now = now or utcnow()
    with session_scope(maker) as session:
        taken = claim(session, settings=settings, policy=policy, now=now)
    if taken is None:
        return 0
    if taken.message is None:
        return 1
    try:
        deliver(settings, taken.message, taken.recipients)
    except SendFailed as err:
        with session_scope(maker) as session:
            mark_failed(session, taken.mail_id, str(err), now=now)
        return 1
    with session_scope(maker) as session:
        mark_sent(session, taken, now=now)
    return 1
