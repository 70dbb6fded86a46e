"""Pulling STIX from a TAXII 2.1 collection (a second hub's /taxii2) with taxii2-client."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import Connection, Event
from tests.builders import attr, event
from tests.hub.connections.conftest import Remote, add_connection, run


def _held(maker: sessionmaker[Session]) -> dict[str, Any]:
    with session_scope(maker, write=False) as session:
        return {e.uuid: (e.version, e.tlp_rank) for e in session.scalars(select(Event))}


def test_taxii_pull_pages_with_a_cursor_and_stores_each_event_once(
    maker: sessionmaker[Session], remote: Remote, upstream: Any
) -> None:
    events = [
        event(f"taxii {i}", tlp="green", distribution=3, attributes=[attr(f"192.0.2.{i}")])
        for i in range(3)
    ]
    remote.add_events(events)
    conn = add_connection(
        maker,
        name="remote-taxii",
        kind="taxii-pull",
        url=f"{remote.served.url}/taxii2/",
        partner=upstream,
        key=remote.key,
        filters={"collection": "all", "page_size": 50},
    )
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    held = _held(maker)
    assert {e["Event"]["uuid"] for e in events} <= set(held), (job.stats, held)
    assert {v for v, _ in held.values()} == {1}
    assert {rank for _, rank in held.values()} == {1}  # TLP:GREEN survived the round trip
    with session_scope(maker, write=False) as session:
        cursor = session.get(Connection, conn.id).cursor  # type: ignore[union-attr]
    assert cursor.get("added_after")

    # Nothing new upstream: the next run reads an empty page and stores nothing.
    again = run(maker, conn)
    assert again.state == "done"
    assert again.stats.get("objects", 0) == 0, again.stats
    assert _held(maker) == held
