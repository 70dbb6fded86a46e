"""A real ``hub worker`` process killed (SIGKILL) between claiming a pull job and committing
the event it is fetching: the lease holds until it runs out, then the job is reclaimed and
completes, and every event is held exactly once (issue 8)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.connections import leases
from hub.connections import service as connections
from hub.db import session_scope
from hub.models import Attribute, Connection, ConnectionJob, Event, EventVersion, Partner
from hub.models.base import utcnow
from tests.builders import attr, event
from tests.conftest import TEST_SECRET
from tests.hub.connections.conftest import Remote, add_connection, job_of, run

REPO = Path(__file__).resolve().parents[3]


class HoldView:
    """ASGI wrapper of the remote: the ``n``-th GET of ``/misp/events/view/…`` waits until
    ``release`` is set (``holding`` is set meanwhile); every other request passes through."""

    def __init__(self, app: Any, n: int) -> None:
        self.app = app
        self.n = n
        self.views = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/misp/events/view/")
        ):
            self.views += 1
            if self.views == self.n:
                self.holding.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.02)
        await self.app(scope, receive, send)


def _counts(maker: sessionmaker[Session]) -> tuple[dict[str, int], int, int]:
    """Event uuid → stored versions; event rows; attribute rows."""
    with session_scope(maker, write=False) as session:
        versions = dict(
            session.execute(
                select(Event.uuid, func.count(EventVersion.id))
                .join(EventVersion, EventVersion.event_id == Event.id)
                .group_by(Event.uuid)
            ).all()
        )
        events = session.scalar(select(func.count(Event.id))) or 0
        attributes = session.scalar(select(func.count(Attribute.id))) or 0
        return versions, events, attributes


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def test_killed_worker_process_is_reclaimed_without_duplicates(
    engine: Engine,
    maker: sessionmaker[Session],
    remote: Remote,
    upstream: Partner,
    tmp_path: Path,
) -> None:
    events = [
        event(f"remote {i}", tlp="green", distribution=3, attributes=[attr(f"192.0.2.{i}")])
        for i in range(3)
    ]
    uuids = {e["Event"]["uuid"] for e in events}
    remote.add_events(events)
    hold = HoldView(remote.served.app, n=2)  # the first event goes through; the second waits
    remote.served.stop()
    remote.served.app = hold
    remote.served.start()
    conn = add_connection(
        maker,
        name="upstream",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    with session_scope(maker) as session:
        row = session.get(Connection, conn.id)
        job_id = connections.enqueue(session, connection=row, trigger="manual").id

    env = {
        **os.environ,
        "HUB_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "HUB_SECRET_KEY": TEST_SECRET,
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_CONNECTIONS_ALLOW_LOOPBACK": "true",  # the remote listens on 127.0.0.1
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--once"],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while not hold.holding.wait(0.1):
            if proc.poll() is not None:
                raise AssertionError(f"the worker exited early: {log.read_text()}")
            assert time.monotonic() < deadline, "the worker never fetched the second event"
        # Inside the job: the worker process holds the lease and waits for the remote.
        claimed = job_of(maker, job_id)
        assert claimed.state == "queued"
        assert f":{proc.pid}:" in (claimed.claimed_by or ""), claimed.claimed_by
        assert claimed.lease_until is not None and claimed.lease_until > utcnow()
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        _stop(proc)
        hold.release.set()

    versions, event_rows, attribute_rows = _counts(maker)
    assert len(versions) == 1 and set(versions) < uuids  # committed before the kill
    committed = set(versions)
    # The dead process's lease still stands: nobody takes the job over before it runs out.
    waiting = run(maker, conn)
    assert waiting.id == job_id
    assert waiting.state == "queued" and waiting.claimed_by == claimed.claimed_by
    assert _counts(maker) == (versions, event_rows, attribute_rows)
    # Once it has run out, the job is reclaimed (in this process) and completes.
    done = run(maker, conn, now=utcnow() + timedelta(seconds=leases.LEASE_SECONDS + 1))
    assert done.id == job_id
    assert done.state == "done", done.last_error
    assert done.claimed_by is None and done.lease_until is None
    versions, event_rows, attribute_rows = _counts(maker)
    assert set(versions) == uuids
    assert versions == dict.fromkeys(uuids, 1)  # the committed event was not stored again
    assert committed < set(versions)
    assert (event_rows, attribute_rows) == (3, 3)
    with session_scope(maker, write=False) as session:
        assert session.scalar(select(func.count(ConnectionJob.id))) == 1
    assert hold.views >= 4  # the reclaimed run fetched the two events not committed
