"""When an event changed, in the order its changes became visible.

The REST change feed pages events by ``(changed_at, id)`` with a keyset cursor: a reader that
has passed a position must never find, later, a change committed behind it, or that change is
lost to the feed. So ``changed_at`` (and the ``arrived_at`` of the version it records) is not
the moment a unit of work began but a moment taken at its end, just before it commits, by
which time every change committed earlier carries an earlier one:

- SQLite: a unit that writes holds the database's write lock from its first statement to its
  commit, so any moment taken inside it is later than those of every unit committed before.
- PostgreSQL: units run side by side; each takes one transaction-scoped advisory lock at its
  end, reads the database's clock, stamps its events and commits, which releases the lock.
  Only those few statements wait on each other.

``Event.changed_at`` and the version's ``arrived_at`` get the same value, so the feed can tell
from a version's arrival where the event stood in a listing (``hub.sharing.feed``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import event as sa_event
from sqlalchemy import inspect, text, tuple_, update
from sqlalchemy.orm import Session

from hub.models import Event, EventVersion
from hub.models.base import utcnow

_PENDING = "hub_changed_events"
# pg_advisory_xact_lock key of the commit-order step ("cwn-feed" as an integer).
_ORDER_LOCK = 0x6377_6E2D_6665_6564


def changed(session: Session, row: Event) -> None:
    """Record that ``row`` gets a new version in this unit: stamped at its commit."""
    session.info.setdefault(_PENDING, []).append(row)


def now(session: Session) -> datetime:
    """The clock the feed's moments are read from (PostgreSQL's own: several hosts may
    serve one database)."""
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(text("SELECT clock_timestamp()"))  # type: ignore[no-any-return]
    return utcnow()


@sa_event.listens_for(Session, "before_commit")
def _stamp(session: Session) -> None:
    rows: list[Event] | None = session.info.pop(_PENDING, None)
    if not rows:
        return
    live = [r for r in rows if inspect(r).persistent]
    if not live:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ORDER_LOCK})
    moment = now(session)
    for row in live:
        row.changed_at = moment
    session.flush()
    pairs = {(r.id, r.version) for r in live}
    session.execute(
        update(EventVersion)
        .where(tuple_(EventVersion.event_id, EventVersion.version).in_(list(pairs)))
        .values(arrived_at=moment)
    )


@sa_event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)
