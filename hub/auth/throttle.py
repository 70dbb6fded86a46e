"""Failed authentication, counted per presented key, per source address and per key hint in
the database (so every API worker sees the same counts) and refused with 429 past a limit.

A presented key past its limit (a machine retrying with a revoked, expired or suspended key)
is refused with 429 itself, and nothing else is: partners behind one NAT or proxy keep
working. Keys that name nothing (unknown or malformed: guesses) also count against their
source address, with a much higher ceiling; an address past it is refused whatever key it
sends until the block ends (otherwise a correct guess would still answer 200). A key hint
(the last four characters of the key sent) past its limit is refused only for keys that do
not work, so a partner's valid key is never locked out by someone else's failures.
Each block is audited once, with the count that caused it: failures themselves are counted
(here and in ``/metrics``), not audited one by one.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.context import current_request_id
from hub.models import AuthThrottle
from hub.models.base import utcnow

ADDRESS = "address"
HINT = "hint"
KEY = "key"
# Failures of keys that name no key at all: only these count against the source address.
GUESSES = frozenset({"unknown", "malformed"})
_CLEANUP_CHANCE = 0.01  # stale rows go now and then, not on every failure


@dataclass(frozen=True, slots=True)
class Limits:
    address: int  # guesses from one source address
    hint: int
    key: int  # failures of one presented key
    window: timedelta
    block: timedelta


def hint_of(key: str) -> str | None:
    """The key hint a failure counts against: the last four characters, as MISP shows keys."""
    return key[-4:] if len(key) >= 4 else None


def key_subject(key: str) -> str | None:
    """What a presented key's failures are counted under: a hash of it, never the key."""
    if not key:
        return None
    return hashlib.sha256(b"hub-auth-throttle\0" + key.encode("utf-8", "replace")).hexdigest()[:40]


def record_failure(
    session: Session,
    *,
    address: str | None,
    key: str | None,
    reason: str,
    limits: Limits,
    now: datetime | None = None,
) -> datetime | None:
    """Count one failed authentication of the presented ``key``; when the block of the key,
    the address or the hint ends if one is blocked now, else None. Only guesses (``GUESSES``)
    count against the address. Its own unit of work: call it in a fresh session."""
    now = now or utcnow()
    blocked: list[datetime] = []
    scopes = [
        (KEY, key_subject(key or ""), limits.key),
        (ADDRESS, address if reason in GUESSES else None, limits.address),
        (HINT, hint_of(key or ""), limits.hint),
    ]
    for scope, subject, limit in scopes:
        if not subject:
            continue
        until = _count(
            session,
            scope=scope,
            subject=subject[:64],
            limit=limit,
            reason=reason,
            limits=limits,
            now=now,
        )
        if until is not None:
            blocked.append(until)
    if random.random() < _CLEANUP_CHANCE:  # housekeeping, not secrecy
        session.execute(
            delete(AuthThrottle).where(
                AuthThrottle.window_start < now - limits.window,
                or_(AuthThrottle.blocked_until.is_(None), AuthThrottle.blocked_until < now),
            )
        )
    return max(blocked) if blocked else None


def _count(
    session: Session,
    *,
    scope: str,
    subject: str,
    limit: int,
    reason: str,
    limits: Limits,
    now: datetime,
) -> datetime | None:
    table = AuthThrottle.__table__
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert  # type: ignore[union-attr]
    stale = AuthThrottle.window_start < now - limits.window
    stmt = (
        insert(table)
        .values(scope=scope, subject=subject, window_start=now, failures=1, blocked_until=None)
        .on_conflict_do_update(
            index_elements=[table.c.scope, table.c.subject],
            set_={
                "failures": case((stale, 1), else_=AuthThrottle.failures + 1),
                "window_start": case((stale, now), else_=AuthThrottle.window_start),
            },
        )
        .returning(AuthThrottle.failures, AuthThrottle.blocked_until)
    )
    failures, blocked_until = session.execute(stmt).one()
    if blocked_until is not None and blocked_until > now:
        return blocked_until  # type: ignore[no-any-return]
    if failures < limit:
        return None
    until = now + limits.block
    # Only one worker blocks (and audits) it, however many failures arrive at once.
    won = session.execute(
        update(AuthThrottle)
        .where(
            AuthThrottle.scope == scope,
            AuthThrottle.subject == subject,
            or_(AuthThrottle.blocked_until.is_(None), AuthThrottle.blocked_until <= now),
        )
        .values(blocked_until=until, failures=0, window_start=now)
    ).rowcount
    if won:
        audit.append(
            session,
            [
                audit.Record(
                    action="auth.throttle",
                    actor="hub",
                    object_ref=f"{scope}:{subject}",
                    request_id=current_request_id(),
                    details={
                        "failures": failures,
                        "window_seconds": int(limits.window.total_seconds()),
                        "blocked_until": until.isoformat(),
                        "last_reason": reason,
                    },
                )
            ],
        )
    return until


def count_request(
    session: Session,
    *,
    scope: str,
    subject: str,
    limit: int,
    window: timedelta,
    now: datetime | None = None,
) -> datetime | None:
    """Count one request of ``subject`` (a source address) to a route that answers without
    a key, in fixed windows shared by every API worker; past ``limit`` in a window, when the
    window ends (answer 429 until then), else None. The count commits with the request."""
    now = now or utcnow()
    table = AuthThrottle.__table__
    insert = (postgresql if session.bind.dialect.name == "postgresql" else sqlite).insert  # type: ignore[union-attr]
    stale = AuthThrottle.window_start < now - window
    stmt = (
        insert(table)
        .values(scope=scope, subject=subject[:64], window_start=now, failures=1)
        .on_conflict_do_update(
            index_elements=[table.c.scope, table.c.subject],
            set_={
                "failures": case((stale, 1), else_=AuthThrottle.failures + 1),
                "window_start": case((stale, now), else_=AuthThrottle.window_start),
            },
        )
        .returning(AuthThrottle.failures, AuthThrottle.window_start)
    )
    count, started = session.execute(stmt).one()
    if count <= limit:
        return None
    started = started if started.tzinfo else started.replace(tzinfo=now.tzinfo)
    return started + window  # type: ignore[no-any-return]
