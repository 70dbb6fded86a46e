"""The ingest goals (DESIGN.md §5): I1 (SQLite ingest against a minimal parse-and-insert),
I2 (PostgreSQL bulk insert against COPY, PostgreSQL ingest against SQLite), I3 (peak memory,
in a child process of its own), I4 (an unchanged re-ingest against the JSON parse) and CNT
(every attribute sent is stored)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select, text

import tlp
from hub.bench import probes
from hub.bench.core import Bench, Goal, gc_collected, median
from hub.bench.dataset import make_event
from hub.db import session_scope
from hub.intel import rows as intel_rows
from hub.intel import service as intel
from hub.intel import snapshots
from hub.intel.validation import normalise_event
from hub.models import Attribute, Event, Partner


def _ingest_time(bench: Bench, body: bytes, url: str | None, name: str) -> tuple[float, float, int]:
    """Median full-ingest seconds, unchanged re-ingest seconds, attributes stored."""
    times, again = [], []
    stored = 0
    for _ in range(bench.o.repetitions):
        engine, maker, org = bench.fresh_db(url, name)
        with gc_collected():
            started = time.perf_counter()
            with session_scope(maker) as session:
                _ingest(session, org, body)
            times.append(time.perf_counter() - started)
        with gc_collected():
            started = time.perf_counter()
            with session_scope(maker) as session:
                out = _ingest(session, org, body)
            again.append(time.perf_counter() - started)
            assert out[0].status == "unchanged"
        with maker() as session:
            stored = session.scalar(select(func.count(Attribute.id))) or 0
        engine.dispose()
    return median(times), median(again), stored


def _pg_insert_stage(bench: Bench, body: bytes) -> tuple[float, float]:
    """I2 on PostgreSQL (DESIGN.md §5, "bulk insert ≥ 50 % of COPY"): the hub's bulk-insert
    stage — the attribute rows of a validated, labelled event made and written by the
    ingest code, committed — against COPY of the same rows, made before the clock
    starts, into the same table in the same state. Seconds (hub, reference)."""
    assert bench.o.pg_url
    engine, maker, org = bench.fresh_db(bench.o.pg_url, "pg-stage")
    with session_scope(maker) as session:
        _ingest(session, org, body)
        event_id = session.scalar(select(Event.id))
    event = normalise_event(snapshots.parse_body(body))
    labels = tlp.label_misp_event(event, policy=tlp.DEFAULT_POLICY, source_org_uuid=org.uuid)
    expected = len(event["Attribute"]) + sum(len(o["Attribute"]) for o in event["Object"])
    rows = [tuple(r.values()) for r in intel_rows.attribute_rows(event, labels, event_id)]
    columns = ", ".join(next(intel_rows.attribute_rows(event, labels, event_id)))
    timings: dict[str, list[float]] = {"hub": [], "ref": []}
    for _ in range(bench.o.repetitions):
        for who in ("ref", "hub"):
            with engine.begin() as connection:
                connection.execute(text("TRUNCATE attributes CASCADE"))
            with gc_collected():
                started = time.perf_counter()
                with engine.begin() as connection:
                    if who == "hub":
                        rows_in = intel_rows.attribute_rows(event, labels, event_id)
                        intel_rows.insert_attributes(connection, rows_in)
                    else:
                        raw = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                        with raw.copy(f"COPY attributes ({columns}) FROM STDIN") as copy:
                            for row in rows:
                                copy.write_row(row)
                timings[who].append(time.perf_counter() - started)
            with maker() as session:
                stored = session.scalar(select(func.count(Attribute.id)))
            if stored != expected:
                raise RuntimeError(f"I2 {who}: {stored} attributes stored of {expected}")
    engine.dispose()
    return median(timings["hub"]), median(timings["ref"])


def measure(bench: Bench, size: int) -> float:
    body = orjson.dumps(make_event(size))
    label = f"10^{len(str(size)) - 1}" if str(size).strip("0") == "1" else str(size)
    floor = median(
        [probes.sqlite_floor(body, bench.dir / "floor.db") for _ in range(bench.o.repetitions)]
    )
    hub_time, reingest, stored = _ingest_time(bench, body, None, "ingest")
    bench.add(
        Goal(
            "I1",
            f"ingest {label} attributes into SQLite",
            hub_time,
            floor,
            floor / hub_time,
            "≥ 0.50",
            floor / hub_time >= 0.5,
            note=f"{size / hub_time:,.0f} attr/s; stretch 0.80",
        )
    )
    bench.add(
        Goal(
            "CNT",
            f"attributes stored = sent ({label})",
            stored,
            size,
            None,
            "exact",
            stored == size,
            unit="",
            exact=True,
        )
    )
    parse = median([probes.parse_only(body) for _ in range(bench.o.repetitions)])
    bench.add(
        Goal(
            "I4",
            f"unchanged re-ingest {label} vs JSON parse",
            reingest,
            parse,
            reingest / parse,
            "≤ 2.0",
            reingest / parse <= 2.0,
        )
    )
    if bench.o.pg_url:
        _postgres(bench, body, size=size, label=label, sqlite_time=hub_time)
    return len(body)


def _postgres(bench: Bench, body: bytes, *, size: int, label: str, sqlite_time: float) -> None:
    """I2, I2b and CNT on PostgreSQL: the bulk-insert stage against COPY, the full ingest
    against SQLite's (``sqlite_time``), every attribute stored."""
    assert bench.o.pg_url
    copy = median([probes.postgres_copy(body, bench.o.pg_url) for _ in range(bench.o.repetitions)])
    pg_time, _, pg_stored = _ingest_time(bench, body, bench.o.pg_url, "pg")
    stage, copy_only = _pg_insert_stage(bench, body)
    bench.add(
        Goal(
            "I2",
            f"PostgreSQL bulk insert {label} vs COPY of its rows",
            stage,
            copy_only,
            copy_only / stage,
            "≥ 0.50",
            copy_only / stage >= 0.5,
            note=f"full ingest {pg_time:.3g} s vs decode+COPY into a one-index "
            f"table {copy:.3g} s: {copy / pg_time:.2f} (no goal)",
        )
    )
    bench.add(
        Goal(
            "I2b",
            f"PostgreSQL ingest / SQLite ingest ({label})",
            pg_time,
            sqlite_time,
            pg_time / sqlite_time,
            "≤ 1.5",
            pg_time / sqlite_time <= 1.5,
        )
    )
    bench.add(
        Goal(
            "CNT",
            f"attributes stored = sent on PostgreSQL ({label})",
            pg_stored,
            size,
            None,
            "exact",
            pg_stored == size,
            unit="",
            exact=True,
        )
    )


def memory(bench: Bench, size: int) -> float:
    body = orjson.dumps(make_event(size))
    path = bench.dir / f"event-{size}.json"
    path.write_bytes(body)
    db = bench.dir / "rss.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "hub.bench.rss", str(path), f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    result = orjson.loads(done.stdout.strip().splitlines()[-1])
    increase = (result["peak_kib"] - result["baseline_kib"]) * 1024
    ratio = increase / len(body)
    bench.add(
        Goal(
            "I3",
            f"peak memory increase / JSON size ({size:,} attr)",
            increase / 2**20,
            len(body) / 2**20,
            ratio,
            "≤ 8",
            ratio <= 8,
            unit="MiB",
        )
    )
    return ratio


def _ingest(session: Any, org: Partner, body: bytes) -> list[Any]:
    """One timed unit of the ingest goals: parse and ingest ``body`` from the hub's org."""
    return intel.ingest_events(
        session,
        payloads=[snapshots.parse_body(body)],
        source=session.merge(org),
        actor="bench",
        channel="file",
        policy=tlp.DEFAULT_POLICY,
    )
