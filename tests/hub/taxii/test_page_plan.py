"""A TAXII page after a ``next`` cursor seeks to its position in ``ix_stix_objects_added``
(SQLite's plan says SEARCH, not SCAN; PostgreSQL's, with sequential scans priced out as they
are on a large table, an index condition on ``date_added``): the time per page stays flat
however deep the page."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from hub.bench.dataset import make_event
from hub.taxii import service

TAXII = "application/taxii+json;version=2.1"


def test_a_later_page_searches_the_index_from_the_cursor(
    client: TestClient, engine: Any, backend: str, auth: dict[str, str], factory: Any
) -> None:
    body = make_event(12, attribute_labels=False)
    assert client.post("/api/v1/events", json=body, headers=auth).status_code == 201
    headers = {"Authorization": factory.key("partner"), "Accept": TAXII}
    url = f"/taxii2/{service.API_ROOT}/collections/all/objects/"
    first = client.get(url, params={"limit": 3}, headers=headers).json()
    assert first["more"], first
    caught: list[tuple[str, Any]] = []

    def log(conn: Any, cursor: Any, statement: str, params: Any, *args: Any) -> None:
        if "FROM stix_objects" in statement and "ORDER BY stix_objects.date_added" in statement:
            caught.append((statement, params))

    event.listen(engine, "before_cursor_execute", log)
    try:
        second = client.get(url, params={"limit": 3, "next": first["next"]}, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", log)
    assert second.status_code == 200, second.text
    statement, params = caught[0]
    with engine.connect() as conn:
        if backend == "sqlite":
            plan = [
                row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
            ]
            outer = [p for p in plan if "stix_objects" in p]
            assert outer[0].startswith("SEARCH stix_objects USING INDEX ix_stix_objects_added")
            assert "date_added>" in outer[0], plan
            return
        # A dozen rows are cheaper to scan and sort than to seek; on a table of millions they
        # are not. Priced as there, the page must walk the index in order from the cursor.
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_sort = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params))
    lines = plan.splitlines()
    scan = next(i for i, line in enumerate(lines) if "ix_stix_objects_added" in line)
    assert "Index Cond: (date_added >=" in lines[scan + 1], plan
