"""The worker jobs: match or aggregate (`run_due`); expire or e-mail (`deliver_due`)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.notifications import feedback, mail, routing, service, tickets
from hub.runtime import Runtime


def run_due(session: Session, context: Runtime, *, rules: service.Rules | None = None) -> int:
    """One unit of work: the next unmatched event version, else the next due group.

    Returns 1 when it did something, 0 when nothing is due. The batching interval comes
    from ``HUB_NOTIFY_INTERVAL_SECONDS`` (0: a group is due at once).
    """
    if routing.match_next(session, policy=context.policy):
        return 1
    rules = rules or service.Rules(interval_seconds=context.settings.notify_interval_seconds)
    return tickets.aggregate_next(session, rules=rules)


def deliver_due(maker: sessionmaker[Session], context: Runtime) -> int:
    """One unit of delivery work: expire a batch of notifications nobody acknowledged within
    ``HUB_NOTIFY_EXPIRE_DAYS``, else send one due e-mail (when ``HUB_SMTP_HOST`` is set; the
    mail job opens its own short transactions around the SMTP conversation)."""
    with session_scope(maker) as session:
        expired = feedback.expire_due(session, days=context.settings.notify_expire_days)
    if expired:
        return expired
    return mail.send_next(maker, settings=context.settings, policy=context.policy)
