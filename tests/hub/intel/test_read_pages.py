"""The REST event view and attribute search read without SQLite's write lock until their
audit entry (``read_page``): a 10^5-attribute decision must not hold every writer up."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from hub.bench.dataset import make_event


@pytest.mark.parametrize(
    "path",
    ["/api/v1/events/{uuid}", "/api/v1/attributes?value=d2.example.com", "/api/v1/events"],
)
def test_event_reads_take_the_write_lock_only_at_their_audit_entry(
    client: TestClient, engine: Any, backend: str, auth: dict[str, str], factory: Any, path: str
) -> None:
    body = make_event(20, attribute_labels=False)
    assert client.post("/api/v1/events", json=body, headers=auth).status_code == 201
    key = {"Authorization": factory.key("partner")}
    seen: list[str] = []

    def log(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(" ".join(statement.split())[:60].upper())

    url = path.format(uuid=body["Event"]["uuid"])
    client.get(url, headers=key)  # the key's first use stamps it; not what is measured
    if backend == "sqlite":  # every statement SQLite runs, the lock's BEGIN IMMEDIATE too

        def trace(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            dbapi_connection.set_trace_callback(lambda sql: log(None, None, sql))

        listened: tuple[str, Any] = ("checkout", trace)
    else:
        listened = ("before_cursor_execute", log)
    event.listen(engine, *listened)
    try:
        response = client.get(url, headers=key)
    finally:
        event.remove(engine, *listened)
        if backend == "sqlite":
            for connection in engine.pool._pool.queue:  # type: ignore[attr-defined]  # noqa: SLF001 - the pool's connections
                connection.dbapi_connection.set_trace_callback(None)
    assert response.status_code == 200, response.text
    reads = [i for i, s in enumerate(seen) if s.startswith("SELECT")]
    writes = [i for i, s in enumerate(seen) if s.startswith(("INSERT", "UPDATE", "WITH"))]
    assert reads and writes, seen
    if backend == "sqlite":
        immediate = [i for i, s in enumerate(seen) if s == "BEGIN IMMEDIATE"]
        # Read first (deferred), the lock taken just before the first write, never before.
        assert immediate and min(immediate) > min(reads), seen
        assert min(immediate) < min(writes), seen
        assert "COMMIT" in seen[: min(immediate)], seen  # the read snapshot ended first
    else:  # PostgreSQL has no such lock: the reads still come before the audit append
        assert min(reads) < min(writes), seen
