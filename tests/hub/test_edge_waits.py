"""Nothing waits for a client or a remote while holding a lock, a transaction or a pooled
connection (DESIGN §4 rule 10), and every database wait is bounded: a busy SQLite, an
exhausted pool and a slow PostgreSQL statement answer 503 with Retry-After.

The first two run the hub for real (uvicorn on a loopback port, real sockets). Bounds are
generous on purpose: what they catch are waits of the length of the client's pause (5 s)
or of a database timeout (30 s), not milliseconds.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text

from hub.db import make_engine
from hub.main import create_app
from hub.settings import Settings
from hub.vocabulary import Role
from tests.builders import event
from tests.hub.live import Served

PAUSE = 5.0  # how long the slow clients and the hanging remote keep the server waiting
QUICK = 1.0  # what a concurrent request may take meanwhile (it takes ~0.05 s when idle)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The hanging remote listens on 127.0.0.1 (a development-only allowance).
    return settings.model_copy(update={"connections_allow_loopback": True})


@pytest.fixture
def served(app: Any) -> Iterator[Served]:
    server = Served(app)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _timed(call: Any) -> tuple[float, Any]:
    started = time.monotonic()
    result = call()
    return time.monotonic() - started, result


def _small_requests_stay_quick(
    base: str, operator: str, partner: str, *, warm: bool = False
) -> None:
    """A read, a write and the public health check, each well under a second (``warm``:
    just make them once, so that first-use imports such as misp-stix's are not timed)."""
    with httpx.Client(base_url=base, timeout=60) as client:
        for call in (
            lambda: client.get("/health"),
            lambda: client.get("/api/v1/me", headers={"Authorization": partner}),
            lambda: client.post(
                "/api/v1/events", json=event("meanwhile"), headers={"Authorization": partner}
            ),
            lambda: client.post(
                "/api/v1/admin/partners",
                json={
                    "name": f"P {time.monotonic()}",
                    "type": "isp",
                    "tier": "core",
                    "region": "nl",
                },
                headers={"Authorization": operator},
            ),
        ):
            took, r = _timed(call)
            assert r.status_code < 300, r.text
            assert warm or took < QUICK, (
                f"{r.request.method} {r.request.url.path} took {took:.2f} s"
            )


def test_slow_uploads_do_not_delay_other_requests(
    served: Served, factory: Any, operator_key: str, settings: Settings
) -> None:
    """More slow uploads than pooled connections (headers, half the body, a pause, the
    rest): each holds neither SQLite's write lock nor a PostgreSQL connection meanwhile."""
    submitter = factory.partner("Slow CSIRT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, submitter)
    reader = factory.key(Role.PARTNER)
    _small_requests_stay_quick(served.url, operator_key, reader, warm=True)
    uploads = []
    for i in range(settings.db_pool_size + 2):
        body = orjson.dumps(event(f"slow upload {i}"))
        sock = socket.create_connection(("127.0.0.1", served.port))
        sock.sendall(
            b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: {key}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        uploads.append((sock, body))
    try:
        time.sleep(0.5)  # every upload is authenticated and waiting for the rest of its body
        started = time.monotonic()
        _small_requests_stay_quick(served.url, operator_key, reader)
        time.sleep(max(0.0, PAUSE - (time.monotonic() - started)))
        _small_requests_stay_quick(served.url, operator_key, reader)
        for sock, body in uploads:
            sock.sendall(body[len(body) // 2 :])
        for sock, _ in uploads:
            sock.settimeout(30)
            head = sock.recv(65536)
            assert head.startswith(b"HTTP/1.1 201"), head[:300]
    finally:
        for sock, _ in uploads:
            sock.close()


def test_a_hanging_remote_in_a_connection_test_delays_nothing(
    served: Served, factory: Any, operator_key: str
) -> None:
    """The remote accepts the connection and never answers; the test request waits for it
    holding nothing, and ends as soon as the remote goes away."""
    remote = socket.socket()
    remote.bind(("127.0.0.1", 0))
    remote.listen(8)  # the kernel completes the handshake; nobody ever reads the request
    owner = factory.partner("Hanging MISP owner", type="sectoral-csirt")
    auth = {"Authorization": operator_key}
    _small_requests_stay_quick(served.url, operator_key, factory.key(Role.PARTNER), warm=True)
    with httpx.Client(base_url=served.url, timeout=120) as client:
        made = client.post(
            "/api/v1/admin/connections",
            json={
                "name": "hanging",
                "kind": "misp-pull",
                "url": f"http://127.0.0.1:{remote.getsockname()[1]}/",
                "partner": owner.uuid,
                "credentials": {"api_key": "k" * 40},
            },
            headers=auth,
        )
        assert made.status_code == 201, made.text
        report: list[Any] = []
        tester = threading.Thread(
            target=lambda: report.append(
                client.post(f"/api/v1/admin/connections/{made.json()['uuid']}/test", headers=auth)
            )
        )
        tester.start()
        try:
            time.sleep(1.0)
            assert tester.is_alive() and not report  # still waiting for the remote
            started = time.monotonic()
            _small_requests_stay_quick(served.url, operator_key, factory.key(Role.PARTNER))
            time.sleep(max(0.0, PAUSE - (time.monotonic() - started)))
            _small_requests_stay_quick(served.url, operator_key, factory.key(Role.PARTNER))
            assert tester.is_alive()
        finally:
            remote.close()  # the queued connection is reset: the test ends
            tester.join(30)
    assert report and report[0].status_code == 200
    assert report[0].json()["ok"] is False


def test_a_streamed_event_is_recorded_and_committed_before_its_first_byte(
    settings: Settings, factory: Any, maker: Any
) -> None:
    """A partner reading a large /misp event slowly holds no connection: with a pool of
    one, other requests go on while the stream waits for the reader."""
    from hub.bench.dataset import make_event
    from hub.models import AuditEntry

    app, engine = _app_on(settings, db_pool_size=1, db_pool_timeout_seconds=2)
    source = factory.partner("Streaming CSIRT", type="sectoral-csirt")
    key = factory.key(Role.SYNC, source)
    big = make_event(20_000, attribute_labels=False)
    server = Served(app)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            stored = client.post(
                "/misp/events/add/metadata:1", json=big, headers={"Authorization": key}
            )
            assert stored.status_code == 200, stored.text[:300]
            event_id = stored.json()["Event"]["id"]
            reader = socket.create_connection(("127.0.0.1", server.port))
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.sendall(
                f"GET /misp/events/view/{event_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: {key}\r\n\r\n".encode()
            )
            try:
                first = reader.recv(4096)
                assert first.startswith(b"HTTP/1.1 200"), first[:200]
                with maker() as session:  # committed before the first byte
                    releases = session.scalars(
                        select(AuditEntry.seq).where(
                            AuditEntry.action == "release",
                            AuditEntry.object_ref == f"event:{big['Event']['uuid']}",
                        )
                    ).all()
                assert len(releases) == 1
                time.sleep(1.0)  # the reader stalls; the server waits to send the rest
                took, r = _timed(lambda: client.get("/api/v1/me", headers={"Authorization": key}))
                assert r.status_code == 200 and took < QUICK, (r.status_code, took)
            finally:
                reader.close()
    finally:
        server.stop()
        engine.dispose()


# --- bounded waits ----------------------------------------------------------------------------


def _app_on(settings: Settings, **bounds: Any) -> tuple[Any, Engine]:
    bounded = settings.model_copy(update=bounds)
    engine = make_engine(bounded, requests=True)
    return create_app(bounded, engine=engine), engine


def test_an_exhausted_pool_answers_503_with_retry_after(
    settings: Settings, factory: Any, operator_key: str
) -> None:
    app, engine = _app_on(settings, db_pool_size=1, db_pool_timeout_seconds=0.3)
    partner = factory.key(Role.PARTNER)
    try:
        with TestClient(app) as client:
            assert client.get("/api/v1/me", headers={"Authorization": partner}).status_code == 200
            held = engine.connect()  # the pool's only connection
            try:
                held.execute(text("SELECT 1"))
                took, r = _timed(
                    lambda: client.get("/api/v1/me", headers={"Authorization": partner})
                )
                assert r.status_code == 503 and r.headers["Retry-After"].isdigit()
                assert r.json()["error"] == "database_unavailable"
                assert took < 5
                misp = client.get("/misp/servers/getVersion", headers={"Authorization": partner})
                assert misp.status_code == 503 and misp.json()["saved"] is False
                assert "Retry-After" in misp.headers
            finally:
                held.close()
            assert client.get("/api/v1/me", headers={"Authorization": partner}).status_code == 200
    finally:
        engine.dispose()


@contextmanager
def _writer_holding_the_lock(backend: str, settings: Settings, engine: Engine) -> Iterator[None]:
    """Another process writing for a long time: SQLite's write lock, or on PostgreSQL an
    exclusive lock on the table every request reads first (the key's organisation)."""
    if backend == "sqlite":
        holder = sqlite3.connect(str(settings.sqlite_path()), isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    else:
        with engine.connect() as locker:
            locker.execute(text("LOCK TABLE partners IN ACCESS EXCLUSIVE MODE"))
            yield
            locker.rollback()


def test_a_locked_database_answers_503_quickly(
    settings: Settings, backend: str, engine: Engine, operator_key: str
) -> None:
    """SQLite's busy timeout and PostgreSQL's statement_timeout bound the wait (30 s on the
    event loop before); the refused request wrote nothing."""
    app, bounded = _app_on(settings, db_busy_timeout_seconds=0.2, db_statement_timeout_seconds=0.3)
    new_partner = {"name": "Busy", "type": "isp", "tier": "core", "region": "nl"}
    try:
        with TestClient(app) as client:
            auth = {"Authorization": operator_key}
            assert client.get("/api/v1/me", headers=auth).status_code == 200
            with _writer_holding_the_lock(backend, settings, engine):
                took, r = _timed(
                    lambda: client.post("/api/v1/admin/partners", json=new_partner, headers=auth)
                )
                assert r.status_code == 503 and r.headers["Retry-After"].isdigit(), r.text
                assert r.json()["error"] == "database_unavailable"
                assert took < 5
            r = client.post("/api/v1/admin/partners", json=new_partner, headers=auth)
            assert r.status_code == 201  # nothing half-written by the refused attempt
    finally:
        bounded.dispose()
