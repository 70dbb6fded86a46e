"""S2/S3 reference: the minimal partner page — 50 rows from SQLite, one audit INSERT and a
COMMIT per request, orjson — served by the same uvicorn the hub uses."""

from __future__ import annotations

import os
import sqlite3
import time

import orjson
from fastapi import FastAPI
from starlette.responses import Response


def create_app() -> FastAPI:
    path = os.environ["HUB_BENCH_REFERENCE_DB"]
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    app = FastAPI()

    @app.get("/page")
    async def page() -> Response:
        rows = conn.execute(
            "SELECT uuid, info, timestamp, tlp_rank FROM events "
            "WHERE tlp_rank <= 2 ORDER BY id LIMIT 50"
        ).fetchall()
        items = [{"uuid": u, "info": i, "timestamp": t, "tlp": r} for u, i, t, r in rows]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO audit (at, body) VALUES (?, ?)",
            (time.time(), orjson.dumps([i["uuid"] for i in items])),
        )
        conn.execute("COMMIT")
        return Response(
            orjson.dumps({"items": items, "next_cursor": None}), media_type="application/json"
        )

    return app


def prepare(path: str, events: int = 60) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("""
        PRAGMA journal_mode=WAL;
        CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, uuid TEXT, info TEXT,
            timestamp INTEGER, tlp_rank INTEGER);
        CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, at REAL, body BLOB);
    """)
    conn.executemany(
        "INSERT INTO events (uuid, info, timestamp, tlp_rank) VALUES (?, ?, ?, ?)",
        [
            (f"{i:08d}-0000-4000-8000-000000000000", f"event {i}", 1700000000 + i, i % 3)
            for i in range(events)
        ],
    )
    conn.commit()
    conn.close()
