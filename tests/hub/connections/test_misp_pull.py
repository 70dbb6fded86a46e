"""Pulling from a MISP (a second hub's /misp API) with real PyMISP, through durable jobs."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.connections import jobs, leases, misp_pull
from hub.db import session_scope
from hub.models import Connection, Event, EventVersion, Partner
from hub.models.base import utcnow
from tests.builders import attr, event
from tests.hub.connections.conftest import (
    Crash,
    Remote,
    add_connection,
    faulty_session,
    run,
)


def _events(n: int, *, distribution: int = 3) -> list[dict[str, Any]]:
    return [
        event(
            f"remote {i}", tlp="green", distribution=distribution, attributes=[attr(f"192.0.2.{i}")]
        )
        for i in range(n)
    ]


def _held(maker: sessionmaker[Session]) -> dict[str, tuple[int, int, str, int]]:
    """uuid → (version, distribution, orgc uuid, number of stored versions)."""
    with session_scope(maker, write=False) as session:
        counts = dict(
            session.execute(
                select(Event.uuid, func.count(EventVersion.id))
                .join(EventVersion, EventVersion.event_id == Event.id)
                .group_by(Event.uuid)
            ).all()
        )
        return {
            e.uuid: (e.version, e.distribution, e.orgc_uuid, counts[e.uuid])
            for e in session.scalars(select(Event))
        }


def _uuids(events: list[dict[str, Any]]) -> set[str]:
    return {e["Event"]["uuid"] for e in events}


def test_pull_stores_published_events_once_with_misp_downgrade(
    maker: sessionmaker[Session], remote: Remote, upstream: Partner
) -> None:
    wide = _events(3)
    # The remote serves distribution as it holds it; the pull downgrades as MISP does:
    # 1, "this community only", becomes 0 and stops here; 2 becomes 1.
    community = _events(1, distribution=1)
    connected = _events(1, distribution=2)
    draft = event("unpublished", published=False)
    remote.add_events([*wide, *community, *connected, draft])
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    held = _held(maker)
    # unpublished: not pulled
    assert set(held) == _uuids(wide) | _uuids(community) | _uuids(connected)
    assert {held[u][1] for u in _uuids(wide)} == {3}
    assert held[next(iter(_uuids(community)))][1] == 0  # "this community only" stops here
    assert held[next(iter(_uuids(connected)))][1] == 1
    assert {held[u][2] for u in held} == {upstream.uuid}  # the connection's partner is the source
    assert job.stats["stored"] == 5

    # A second run downloads nothing: everything is held with the same timestamp.
    again = run(maker, conn)
    assert again.state == "done"
    assert again.stats.get("stored", 0) == 0 and again.stats.get("updated", 0) == 0
    assert {v[3] for v in _held(maker).values()} == {1}

    # A newer version upstream is pulled as a new version here.
    changed = dict(wide[0]["Event"])
    changed["timestamp"] = str(int(changed["timestamp"]) + 10_000)
    changed["Attribute"] = [*changed["Attribute"], attr("198.51.100.99")]
    remote.add_events([{"Event": changed}])
    third = run(maker, conn)
    assert third.stats.get("updated") == 1, third.stats
    assert _held(maker)[changed["uuid"]][0] == 2


def test_hub_own_misp_keeps_creator_and_distribution(
    maker: sessionmaker[Session], remote: Remote, hub_org: Partner
) -> None:
    community = _events(2, distribution=2)  # served as held; the hub's own MISP: kept as 2
    remote.add_events(community)
    conn = add_connection(
        maker, name="own", kind="misp-pull", url=remote.misp_url, partner=hub_org, key=remote.key
    )
    assert run(maker, conn).state == "done"
    held = _held(maker)
    assert {held[u][1] for u in _uuids(community)} == {2}
    assert {held[u][2] for u in _uuids(community)} == {remote.csirt.uuid}


def test_remote_down_mid_pull_then_back_everything_once(
    maker: sessionmaker[Session], remote: Remote, upstream: Partner, monkeypatch: Any
) -> None:
    monkeypatch.setattr(misp_pull, "PULL_BATCH", 2)
    events = _events(5)
    remote.add_events(events)
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    job = run(maker, conn, max_steps=2)  # the index, then one batch of two
    assert job.state == "queued" and len(_held(maker)) == 2
    remote.served.stop()
    job = run(maker, conn)
    assert job.state == "queued" and job.attempts == 1
    assert "cannot connect" in (job.last_error or "")
    assert job.run_after > utcnow()  # backing off
    remote.served.start()
    job = run(maker, conn, now=utcnow() + timedelta(hours=2))
    assert job.state == "done", job.last_error
    held = _held(maker)
    assert set(held) == _uuids(events)
    assert {v[3] for v in held.values()} == {1}  # exactly once


@pytest.mark.parametrize("fault", [500, 429, "timeout"])
def test_retriable_failures_back_off_then_succeed(
    maker: sessionmaker[Session], remote: Remote, upstream: Partner, fault: int | str
) -> None:
    events = _events(2)
    remote.add_events(events)
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    http, adapter = faulty_session([fault, fault], after=3)  # fail in the middle of the run
    later = utcnow()
    job = run(maker, conn, http=http, now=later)
    for _ in range(3):
        if job.state != "queued":
            break
        assert job.attempts >= 1 and job.last_error
        later = job.run_after + timedelta(seconds=1)
        job = run(maker, conn, http=http, now=later)
    assert job.state == "done", job.last_error
    assert not adapter.faults
    assert set(_held(maker)) == _uuids(events)
    assert {v[3] for v in _held(maker).values()} == {1}


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    first = [jobs.backoff(1) for _ in range(50)]
    fourth = [jobs.backoff(4) for _ in range(50)]
    assert all(15 <= d <= 45 for d in first) and len(set(first)) > 1
    assert all(120 <= d <= 360 for d in fourth)
    assert jobs.backoff(30) <= jobs.BACKOFF_CAP * 1.5
    assert jobs.backoff(1, retry_after=7) == 7


def test_wrong_key_is_a_dead_letter_with_a_readable_error(
    maker: sessionmaker[Session], remote: Remote, upstream: Partner
) -> None:
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key="x" * 40,
    )
    job = run(maker, conn)
    assert job.state == "dead"
    assert "refused the key (401" in (job.last_error or ""), job.last_error
    assert "check the connection's credentials" in (job.last_error or "")


def test_crash_between_claim_and_commit_is_reclaimed_without_duplicates(
    maker: sessionmaker[Session], remote: Remote, upstream: Partner
) -> None:
    events = _events(3)
    remote.add_events(events)
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    http, _ = faulty_session(["crash"], after=4)  # index done; dies fetching the 2nd event
    with pytest.raises(Crash):
        run(maker, conn, http=http)
    held_after_crash = _held(maker)
    assert len(held_after_crash) == 1  # the first event was committed with its cursor
    # The dead worker's lease still stands: no other worker takes the job over yet.
    waiting = run(maker, conn)
    assert waiting.state == "queued" and waiting.claimed_by is not None
    assert _held(maker) == held_after_crash
    # Once the lease has run out, the job is reclaimed and completes, each event once.
    job = run(maker, conn, now=utcnow() + timedelta(seconds=leases.LEASE_SECONDS + 1))
    assert job.state == "done", job.last_error
    assert job.claimed_by is None and job.lease_until is None
    held = _held(maker)
    assert set(held) == _uuids(events)
    assert {v[3] for v in held.values()} == {1}


def test_no_transaction_is_open_while_the_remote_answers(
    maker: sessionmaker[Session], remote: Remote, upstream: Partner
) -> None:
    """A slow remote must not block the hub's own writes (SQLite: the one write lock;
    PostgreSQL: the connection's row)."""
    events = _events(2)
    remote.add_events(events)
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    http, adapter = faulty_session(["hold"], after=3)  # index done; held fetching an event
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(run(maker, conn, http=http)))
    worker.start()
    try:
        assert adapter.holding.wait(20), "the job never reached the remote"
        writer = threading.Thread(target=_rename_owner, args=(maker, upstream))
        writer.start()
        writer.join(10)  # a held write lock would keep it waiting for busy_timeout (30 s)
        assert not writer.is_alive(), "a write waited for the remote's answer"
    finally:
        adapter.release.set()
        worker.join(30)
    assert outcome and outcome[0].state == "done", outcome
    assert set(_held(maker)) == _uuids(events)


def _rename_owner(maker: sessionmaker[Session], partner: Partner) -> None:
    """A write touching what the running job reads: its connection's owner and connection."""
    with session_scope(maker) as session:
        session.get(Partner, partner.id).name = "Upstream CSIRT (renamed)"  # type: ignore[union-attr]
        session.execute(update(Connection).values(interval_seconds=120))
