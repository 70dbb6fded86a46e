"""An event's ``changed_at`` is taken at the end of the unit that changed it, in commit order,
and its version's ``arrived_at`` is the same moment (``hub.intel.moments``).

The REST change feed pages by ``(changed_at, id)``: a change committed after a reader passed
its position, but stamped earlier (when its unit began), would be lost to that reader.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.intel import service
from hub.models import AuditEntry, Event, EventVersion
from tests.builders import attr, event


def _ingest(session: Session, source: Any, body: dict[str, Any]) -> None:
    service.ingest_events(
        session,
        payloads=[body],
        source=source,
        actor="test",
        channel="rest",
        policy=tlp.DEFAULT_POLICY,
    )


def _stamps(maker: sessionmaker[Session], uuid: str) -> tuple[Any, Any]:
    with maker() as s:
        row = s.scalar(select(Event).where(Event.uuid == uuid))
        assert row is not None
        arrived = s.scalar(
            select(EventVersion.arrived_at).where(
                EventVersion.event_id == row.id, EventVersion.version == row.version
            )
        )
        return row.changed_at, arrived


def test_a_version_arrives_at_the_moment_its_event_changed(maker, factory) -> None:
    source = factory.partner("Moment CSIRT", type="sectoral-csirt")
    first = event(tlp="green", attributes=[attr("198.51.100.1")])
    with maker.begin() as s:
        _ingest(s, s.merge(source), first)
    changed, arrived = _stamps(maker, first["Event"]["uuid"])
    assert changed == arrived
    edit = {**first["Event"], "timestamp": str(int(first["Event"]["timestamp"]) + 5)}
    edit["Attribute"] = [*edit["Attribute"], attr("198.51.100.2")]
    with maker.begin() as s:
        _ingest(s, s.merge(source), {"Event": edit})
    again, arrived_again = _stamps(maker, first["Event"]["uuid"])
    assert again == arrived_again and again > changed


def test_the_moment_is_taken_when_the_unit_ends(maker, factory) -> None:
    """Taken after everything else the unit wrote (its audit entries included), just before
    it commits: units that commit in turn (SQLite's write lock; PostgreSQL's order lock) get
    moments in that order, wherever they began."""
    source = factory.partner("Order CSIRT", type="sectoral-csirt")
    body = event(tlp="green", attributes=[attr("198.51.100.3")])
    with maker.begin() as s:
        before = s.scalar(select(func.max(AuditEntry.seq))) or 0
        _ingest(s, s.merge(source), body)
    changed, _arrived = _stamps(maker, body["Event"]["uuid"])
    with maker() as s:
        written = s.scalars(select(AuditEntry.recorded_at).where(AuditEntry.seq > before)).all()
    assert written and max(written) <= changed
