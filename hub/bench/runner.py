"""Runs every goal of DESIGN.md §5 against its in-run reference and reports the ratios."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, func, select, text

import tlp
from hub import migrate
from hub.bench import audit_tree, load, matching, probes, reference_app, taxii_paging, underload
from hub.bench.core import SECRET, Bench, Goal, Options, gc_collected, header, median
from hub.bench.dataset import make_event
from hub.db import make_engine, make_sessionmaker, session_scope
from hub.intel import rows as intel_rows
from hub.intel import service as intel
from hub.intel import snapshots
from hub.intel.validation import normalise_event
from hub.models import Attribute, AuditEntry, Event, Partner
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate
from hub.settings import Settings
from hub.vocabulary import PartnerStatus, Role


class Steps(Bench):
    """The ingest, memory and serving measurements; the other goals have modules of their own."""

    # --- ingest -----------------------------------------------------------------------------

    def _ingest_time(self, body: bytes, url: str | None, name: str) -> tuple[float, float, int]:
        """Median full-ingest seconds, unchanged re-ingest seconds, attributes stored."""
        times, again = [], []
        stored = 0
        for _ in range(self.o.repetitions):
            engine, maker, org = self.fresh_db(url, name)
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

    def _pg_insert_stage(self, body: bytes) -> tuple[float, float]:
        """I2 on PostgreSQL (DESIGN.md §5, "bulk insert ≥ 50 % of COPY"): the hub's bulk-insert
        stage — the attribute rows of a validated, labelled event made and written by the
        ingest code, committed — against COPY of the same rows, made before the clock
        starts, into the same table in the same state. Seconds (hub, reference)."""
        assert self.o.pg_url
        engine, maker, org = self.fresh_db(self.o.pg_url, "pg-stage")
        with session_scope(maker) as session:
            _ingest(session, org, body)
            event_id = session.scalar(select(Event.id))
        event = normalise_event(snapshots.parse_body(body))
        labels = tlp.label_misp_event(event, policy=tlp.DEFAULT_POLICY, source_org_uuid=org.uuid)
        expected = len(event["Attribute"]) + sum(len(o["Attribute"]) for o in event["Object"])
        rows = [tuple(r.values()) for r in intel_rows.attribute_rows(event, labels, event_id)]
        columns = ", ".join(next(intel_rows.attribute_rows(event, labels, event_id)))
        timings: dict[str, list[float]] = {"hub": [], "ref": []}
        for _ in range(self.o.repetitions):
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

    def ingest(self, size: int) -> float:
        body = orjson.dumps(make_event(size))
        label = f"10^{len(str(size)) - 1}" if str(size).strip("0") == "1" else str(size)
        floor = median(
            [probes.sqlite_floor(body, self.dir / "floor.db") for _ in range(self.o.repetitions)]
        )
        hub_time, reingest, stored = self._ingest_time(body, None, "ingest")
        self.add(
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
        self.add(
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
        parse = median([probes.parse_only(body) for _ in range(self.o.repetitions)])
        self.add(
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
        if self.o.pg_url:
            copy = median(
                [probes.postgres_copy(body, self.o.pg_url) for _ in range(self.o.repetitions)]
            )
            pg_time, _, pg_stored = self._ingest_time(body, self.o.pg_url, "pg")
            stage, copy_only = self._pg_insert_stage(body)
            self.add(
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
            self.add(
                Goal(
                    "I2b",
                    f"PostgreSQL ingest / SQLite ingest ({label})",
                    pg_time,
                    hub_time,
                    pg_time / hub_time,
                    "≤ 1.5",
                    pg_time / hub_time <= 1.5,
                )
            )
            self.add(
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
        return len(body)

    def memory(self, size: int) -> float:
        body = orjson.dumps(make_event(size))
        path = self.dir / f"event-{size}.json"
        path.write_bytes(body)
        db = self.dir / "rss.db"
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
        self.add(
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

    # --- serving ----------------------------------------------------------------------------

    def serving(self, size: int) -> None:
        """S1-S4 and S6: a full event and a page to a partner over HTTP, against references."""
        url, engine, maker, key, operator, big, big_id = self._serving_db(size)
        self.statements(engine, maker, key)
        env = {"HUB_DATABASE_URL": url, "HUB_SECRET_KEY": SECRET, "HUB_LOG_LEVEL": "WARNING"}
        headers = {"Authorization": key}
        seconds = self.o.load_seconds
        with load.server("hub.main:create_app", env=env) as base:
            self._full_event(base, headers, url, big, big_id)
            page = f"{base}/api/v1/events?limit=50"
            audited_before = _page_audits(maker)
            served_before = _pages_served(base, operator)
            hub_sat = load.saturate(page, headers, seconds=seconds)
            hub_paced = load.paced(page, headers, seconds=seconds, rate=max(1.0, hub_sat.rps / 2))
            # The server's own count of 2xx page responses: a load generator stopping mid-run
            # (wrk) never sees the responses in flight, but they were deliveries all the same.
            served = _pages_served(base, operator) - served_before
        audited = _page_audits(maker) - audited_before
        seen = hub_sat.ok + hub_sat.warmup_ok + hub_paced.ok + hub_paced.warmup_ok
        with load.server("hub.main:create_app", env=env, workers=2) as base2:
            hub_two = load.saturate(f"{base2}/api/v1/events?limit=50", headers, seconds=seconds)
        ref_sat, ref_paced = self._reference_page(rate=max(1.0, hub_sat.rps / 2))
        engine.dispose()
        self._page_goals(hub_sat, hub_paced, hub_two, ref_sat, ref_paced)
        self.add(
            Goal(
                "S4",
                "audit entries written = page deliveries made",
                audited,
                served,
                None,
                "exact",
                audited == served,
                unit="",
                exact=True,
                note=f"2xx page responses counted by the server; the load tools saw {seen}",
            )
        )

    def _serving_db(self, size: int) -> tuple[str, Any, Any, str, str, dict[str, Any], int]:
        """A SQLite file with one ``size``-attribute event and 60 small ones; a partner key
        and an operator key."""
        from hub.auth import service as keys

        path = self.dir / "serve.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite:///{path}"
        engine = make_engine(Settings(database_url=url))
        migrate.upgrade(engine)
        maker = make_sessionmaker(engine)
        big = make_event(size, seed=7)
        with session_scope(maker) as session:
            org, _ = partners.ensure_hub_org(session, name="NCSC-NL", actor="bench")
            reader = partners.create(
                session,
                data=PartnerCreate(
                    name="Bench partner",
                    type="isp",
                    tier="core",
                    region="nl",
                    tlp_accepted_at="2026-01-01",
                ),
                actor="bench",
                status=PartnerStatus.ACTIVE,
            )
            key = keys.create_key(
                session, partner=reader, role=Role.PARTNER, secret=SECRET, actor="bench"
            ).key
            operator = keys.create_key(
                session, partner=org, role=Role.OPERATOR, secret=SECRET, actor="bench"
            ).key
            events = [big] + [
                make_event(10, seed=100 + i, event_label=("clear", "green", "amber")[i % 3])
                for i in range(60)
            ]
            intel.ingest_events(
                session,
                payloads=events,
                source=org,
                actor="bench",
                channel="file",
                policy=tlp.DEFAULT_POLICY,
            )
            big_id = session.scalar(select(Event.id).where(Event.uuid == big["Event"]["uuid"]))
            assert big_id is not None
        return url, engine, maker, key, operator, big, big_id

    def _full_event(
        self, base: str, headers: dict[str, str], url: str, big: dict[str, Any], big_id: int
    ) -> None:
        """S1: the big event over HTTP vs reading and serialising it straight from SQLite."""
        import httpx

        view = f"{base}/api/v1/events/{big['Event']['uuid']}"
        httpx.get(view, headers=headers, timeout=120)
        timings = []
        for _ in range(self.o.repetitions):
            started = time.perf_counter()
            r = httpx.get(view, headers=headers, timeout=120)
            timings.append(time.perf_counter() - started)
            assert r.status_code == 200, r.text[:200]
        path = Path(url.removeprefix("sqlite:///"))
        ref = median([probes.fetch_and_serialise(path, big_id) for _ in range(self.o.repetitions)])
        hub_view = median(timings)
        self.add(
            Goal(
                "S1",
                f"full event ({len(big['Event']['Attribute']):,} attr) to a partner over HTTP",
                hub_view,
                ref,
                ref / hub_view,
                "≥ 0.50",
                ref / hub_view >= 0.5,
            )
        )

    def _reference_page(self, *, rate: float) -> tuple[Any, Any]:
        """The reference server's page at saturation and at ``rate``."""
        ref_db = self.dir / "reference.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(ref_db) + suffix).unlink(missing_ok=True)
        reference_app.prepare(str(ref_db))
        ref_env = {"HUB_BENCH_REFERENCE_DB": str(ref_db)}
        seconds = self.o.load_seconds
        with load.server("hub.bench.reference_app:create_app", env=ref_env) as ref_base:
            ref_sat = load.saturate(f"{ref_base}/page", {}, seconds=seconds)
            ref_paced = load.paced(f"{ref_base}/page", {}, seconds=seconds, rate=rate)
        return ref_sat, ref_paced

    def _page_goals(
        self, hub_sat: Any, hub_paced: Any, hub_two: Any, ref_sat: Any, ref_paced: Any
    ) -> None:
        """S2, S3 and S6 from the page loads."""
        self.add(
            Goal(
                "S2",
                "50-item partner page at saturation (1 worker)",
                hub_sat.rps,
                ref_sat.rps,
                hub_sat.rps / ref_sat.rps,
                "≥ 0.70",
                hub_sat.rps / ref_sat.rps >= 0.7,
                unit="rps",
                note=f"p50 {hub_sat.p50_ms:.1f} ms, p99 {hub_sat.p99_ms:.1f} ms; "
                f"reference p99 {ref_sat.p99_ms:.1f} ms; {hub_sat.tool}",
            )
        )
        self.add(
            Goal(
                "S3",
                "p99 at half of saturation load",
                hub_paced.p99_ms,
                ref_paced.p99_ms,
                None,
                "≤ 25 ms",
                hub_paced.p99_ms <= 25,
                unit="ms",
                note=f"{hub_paced.rps:.0f} rps offered half of {hub_sat.rps:.0f}; "
                f"p50 {hub_paced.p50_ms:.1f} ms",
            )
        )
        self.add(
            Goal(
                "S6",
                "2 workers / 1 worker on the partner page",
                hub_two.rps,
                hub_sat.rps,
                hub_two.rps / hub_sat.rps,
                "≥ 1.6",
                hub_two.rps / hub_sat.rps >= 1.6,
                unit="rps",
            )
        )

    def statements(self, engine: Any, maker: Any, key: str) -> None:
        """S5: SQL statements per page request, counted in-process, for several page sizes."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from fastapi.testclient import TestClient

        from hub.main import create_app

        app = create_app(
            Settings(
                database_url=engine.url.render_as_string(hide_password=False),
                secret_key=SECRET,
                log_level="WARNING",
            ),
            engine=engine,
        )
        counted: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT")):
                counted.append(statement)

        worst = 0
        with TestClient(app) as client:
            client.get("/api/v1/events?limit=1", headers={"Authorization": key})
            for limit in (1, 50, 500):
                counted.clear()
                event.listen(engine, "before_cursor_execute", count)
                try:
                    client.get(f"/api/v1/events?limit={limit}", headers={"Authorization": key})
                finally:
                    event.remove(engine, "before_cursor_execute", count)
                worst = max(worst, len(counted))
        self.add(
            Goal(
                "S5",
                "SQL statements per page (limit 1, 50, 500)",
                worst,
                3,
                None,
                "≤ 3",
                worst <= 3,
                unit="",
                exact=True,
            )
        )


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


def _page_audits(maker: Any) -> int:
    with maker() as session:
        stmt = select(func.count(AuditEntry.seq)).where(AuditEntry.action == "release.page")
        return int(session.scalar(stmt) or 0)


def _pages_served(base: str, operator_key: str) -> int:
    """2xx responses of the partner page so far, from the server's own /metrics."""
    import httpx

    text_ = httpx.get(f"{base}/metrics", headers={"Authorization": operator_key}).text
    total = 0.0
    for line in text_.splitlines():
        if line.startswith("hub_http_requests_total{") and 'route="/api/v1/events"' in line:
            if 'method="GET"' in line and 'status="2' in line:
                total += float(line.rsplit(" ", 1)[1])
    return int(total)


def run(options: Options, out: Callable[[str], None] = print) -> list[Goal]:
    info = header(options)
    out("CWN hub benchmark  " + "  ".join(f"{k}={v}" for k, v in info.items()))
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        bench = Steps(options, Path(tmp), out)
        try:
            if options.wants("I1", "I2", "I2b", "I4", "CNT"):
                for size in options.sizes:
                    bench.ingest(size)
            if options.wants("M1"):
                matching.measure(bench)
                if options.pg_url:
                    matching.measure(bench, backend="PostgreSQL")
            memory_sizes = (
                options.sizes[-1:] if options.quick else [s for s in options.sizes if s >= 10**5]
            )
            if options.wants("I3"):
                for size in memory_sizes:
                    bench.memory(size)
            search_ms = None
            if options.wants("A1", "A2", "A3"):
                search_ms = audit_tree.measure(bench)
            if options.wants("S1", "S2", "S3", "S4", "S5", "S6"):
                bench.serving(options.sizes[-1] if options.quick else 10**5)
            if search_ms is not None:
                audit_tree.a3(bench, search_ms)
            # The load goals (L1-L3, T1) take minutes each: the full run only.
            if not options.quick:
                backends = ["SQLite"] + (["PostgreSQL"] if options.pg_url else [])
                if options.wants("L1", "L2"):
                    for backend in backends:
                        underload.latency(bench, backend)
                if options.wants("L3"):
                    for backend in backends:
                        underload.memory(bench, backend, total=options.search_total)
                if options.wants("T1"):
                    taxii_paging.measure(bench)
        finally:
            bench.drop_scratch()
    info["load_after"] = os.getloadavg()[0]
    out(
        f"load average before {info['load_before']:.2f}, after {info['load_after']:.2f}"
        + ("  (a high load means noisy numbers)" if info["load_before"] > 1.0 else "")
    )
    if options.json_path:
        with options.json_path.open("wb") as fh:
            fh.write(orjson.dumps({"header": info}) + b"\n")
            for goal in bench.goals:
                fh.write(orjson.dumps(asdict(goal)) + b"\n")
    return bench.goals
