"""The references each goal is measured against: minimal code doing the unavoidable work.

They are deliberately naive-but-fast (stdlib sqlite3, psycopg COPY, orjson) so that the
ratio hub / probe says how much the hub adds on top of the work itself.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson

RANK = {"tlp:clear": 0, "tlp:green": 1, "tlp:amber": 2, "tlp:amber+strict": 3, "tlp:red": 4}
_SCHEMA = """
CREATE TABLE attrs (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, uuid TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL, category TEXT NOT NULL, value TEXT NOT NULL, to_ids INTEGER NOT NULL,
    timestamp INTEGER NOT NULL, tlp_rank INTEGER NOT NULL, tags TEXT NOT NULL);
CREATE INDEX ix_attrs_event ON attrs (event_id);
"""


def rows_of(body: bytes) -> list[tuple[Any, ...]]:
    event = orjson.loads(body)["Event"]
    out = []
    for a in event["Attribute"]:
        tags = a.get("Tag") or []
        rank = max((RANK.get(t["name"], 3) for t in tags), default=3)
        out.append(
            (
                1,
                a["uuid"],
                a["type"],
                a["category"],
                a["value"],
                int(a["to_ids"]),
                int(a["timestamp"]),
                rank,
                orjson.dumps(tags).decode(),
            )
        )
    return out


def sqlite_floor(body: bytes, path: Path) -> float:
    """I1 reference: decode → tuples → raw sqlite3 executemany → one commit (seconds)."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    started = time.perf_counter()
    rows = rows_of(body)
    conn.executemany(
        "INSERT INTO attrs (event_id, uuid, type, category, value, to_ids, timestamp, tlp_rank,"
        " tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    conn.commit()
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def postgres_copy(body: bytes, url: str, *, decode: bool = True) -> float:
    """I2 reference: decode → tuples → COPY into an equivalent table → commit (seconds).
    With ``decode=False`` the tuples are made before the clock starts: COPY and commit only
    (the reference for the hub's bulk-insert stage)."""
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    prepared = None if decode else rows_of(body)
    with psycopg.connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_attrs")
        conn.execute(
            _SCHEMA.replace("attrs", "bench_attrs")
            .replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
            .split(";")[0]
        )
        conn.execute("CREATE INDEX ON bench_attrs (event_id)")
        conn.commit()
        started = time.perf_counter()
        rows = rows_of(body) if prepared is None else prepared
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY bench_attrs (event_id, uuid, type, category, value, to_ids, timestamp,"
                " tlp_rank, tags) FROM STDIN"
            ) as copy,
        ):
            for r in rows:
                copy.write_row(r)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_attrs")
        conn.commit()
    return elapsed


def parse_only(body: bytes) -> float:
    """I4 reference: a plain JSON parse of the same bytes (seconds)."""
    started = time.perf_counter()
    orjson.loads(body)
    return time.perf_counter() - started


def fetch_and_serialise(path: Path, event_id: int) -> float:
    """S1 reference: fetch an event's attribute rows, build dicts, serialise with orjson."""
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    cursor = conn.execute(
        "SELECT doc, tlp_rank FROM attributes WHERE event_id = ? AND deleted = 0 ORDER BY id",
        (event_id,),
    )
    attrs = [orjson.loads(doc) for doc, rank in cursor if rank <= 2]
    body = orjson.dumps({"Event": {"Attribute": attrs}})
    elapsed = time.perf_counter() - started
    conn.close()
    assert body
    return elapsed
