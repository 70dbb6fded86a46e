"""L1, L2 and L3 (DESIGN.md §5): small requests beside a large download and beside slow
uploads, and the memory of one search over 10^6 attributes.

Every figure is a ratio to a reference measured on the same server in the same run: the
p99 of the same small request on the idle server (L1, L2), the peak memory of serving one
10^5-attribute page (L3). The small requests come from ``load.light`` (wrk with a Lua
script when installed), the download from wrk with one connection, the slow uploads from
threads that write 8 KiB at a time at a fixed rate (a client on a slow line: sleeping, not
computing, so they need no tool outside Python).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import select, text

import tlp
from hub.bench import load
from hub.bench.core import SECRET, Bench, Goal
from hub.bench.dataset import make_event
from hub.db import session_scope
from hub.intel import service as intel
from hub.models import Event
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate
from hub.vocabulary import PartnerStatus, Role

UPLOAD_BYTES = 3 * 10**6
UPLOAD_RATE = 64 * 1024  # bytes per second, per client
UPLOADERS = 4
SMALL_PAGE = "/api/v1/events?limit=1"


@dataclass(frozen=True)
class Served:
    """A database the hub serves in a load goal, and the keys to call it with."""

    url: str
    partner_key: str
    operator_key: str
    big_uuid: str


def seed(
    bench: Bench,
    url: str | None,
    name: str,
    *,
    big: int,
    small: int = 20,
    attribute_labels: bool = True,
) -> Served:
    """A fresh database holding one ``big``-attribute event and ``small`` 10-attribute events,
    a partner key and an operator key."""
    from hub.auth import service as keys

    engine, maker, _ = bench.fresh_db(url, name)
    event = make_event(big, seed=7, attribute_labels=attribute_labels)
    with session_scope(maker) as session:
        org = partners.repository.hub_org(session)
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
        partner_key = keys.create_key(
            session, partner=reader, role=Role.PARTNER, secret=SECRET, actor="bench"
        ).key
        operator_key = keys.create_key(
            session, partner=org, role=Role.OPERATOR, secret=SECRET, actor="bench"
        ).key
        payloads = [event] + [
            make_event(10, seed=100 + i, event_label=("clear", "green", "amber")[i % 3])
            for i in range(small)
        ]
        intel.ingest_events(
            session,
            payloads=payloads,
            source=org,
            actor="bench",
            channel="file",
            policy=tlp.DEFAULT_POLICY,
        )
        assert session.scalar(select(Event.id).where(Event.uuid == event["Event"]["uuid"]))
    if engine.dialect.name == "postgresql":  # as autovacuum does soon after a bulk load
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    served_url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    return Served(served_url, partner_key, operator_key, event["Event"]["uuid"])


def server_env(url: str) -> dict[str, str]:
    return {"HUB_DATABASE_URL": url, "HUB_SECRET_KEY": SECRET, "HUB_LOG_LEVEL": "WARNING"}


# --- L1, L2 -------------------------------------------------------------------------------------


def upload_body(n: int, seed: int) -> bytes:
    """A MISP event of about UPLOAD_BYTES of JSON (``n`` is ignored when 0)."""
    per_attr = len(orjson.dumps(make_event(1000, seed=seed))) / 1000
    return orjson.dumps(make_event(n or int(UPLOAD_BYTES / per_attr), seed=seed))


def slow_upload(base: str, path: str, headers: dict[str, str], body: bytes, rate: int) -> int:
    """POST ``body`` at ``rate`` bytes/s (headers at once, then 8 KiB pieces on schedule);
    the status answered, or 0 when the connection failed."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)
    try:
        conn.putrequest("POST", path)
        for key, value in {
            **headers,
            "Content-Type": "application/json",
            "Content-Length": str(len(body)),
        }.items():
            conn.putheader(key, value)
        conn.endheaders()
        piece = 8192
        started = time.monotonic()
        for i, offset in enumerate(range(0, len(body), piece)):
            wait = started + i * piece / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            conn.send(body[offset : offset + piece])
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def latency(bench: Bench, backend: str) -> None:
    """L1 and L2 on one database, with 1 and 2 workers."""

    o = bench.o
    url = o.pg_url if backend == "PostgreSQL" else None
    served = seed(bench, url, f"load-{backend.lower()}", big=10**5)
    seconds = o.load_seconds
    small = {"Authorization": served.partner_key}
    for workers in (1, 2):
        where = f"{backend}, {workers} worker{'s' if workers > 1 else ''}"
        env = server_env(served.url)
        with load.server("hub.main:create_app", env=env, workers=workers) as base:
            page = base + SMALL_PAGE
            view = f"{base}/api/v1/events/{served.big_uuid}"
            httpx.get(view, headers=small, timeout=300).raise_for_status()  # warm
            idle = load.light(page, small, seconds=seconds, workdir=bench.dir)
            if o.wants("L1"):
                _l1(bench, page, view, small, idle, where)
            if o.wants("L2"):
                _l2(bench, base, served, small, idle, where, seed_base=1000 * workers)


def _l1(
    bench: Bench,
    page: str,
    view: str,
    small: dict[str, str],
    idle: load.LoadResult,
    where: str,
) -> None:
    with load.downloading(view, small, seconds=bench.o.load_seconds + 30) as downloads:
        time.sleep(1.5)  # the first download under way
        busy = load.light(page, small, seconds=bench.o.load_seconds, workdir=bench.dir)
    ratio = busy.p99_ms / idle.p99_ms
    bench.add(
        Goal(
            "L1",
            f"1-item page p99 during a 10^5 download ({where})",
            busy.p99_ms,
            idle.p99_ms,
            ratio,
            "≤ 3",
            ratio <= 3 and busy.server_errors == 0,
            unit="ms",
            note=f"p50 {busy.p50_ms:.1f} ms vs idle {idle.p50_ms:.1f}; "
            f"{busy.requests} small requests (idle {idle.requests}), "
            f"{downloads['completed']} downloads; 5xx {busy.server_errors}; "
            f"{busy.tool_note}",
        )
    )


def _l2(
    bench: Bench,
    base: str,
    served: Served,
    small: dict[str, str],
    idle: load.LoadResult,
    where: str,
    *,
    seed_base: int,
) -> None:
    bodies = [upload_body(0, seed_base + i) for i in range(UPLOADERS)]
    statuses: list[int] = []
    durations: list[float] = []

    def one(body: bytes) -> None:
        started = time.monotonic()
        status = slow_upload(
            base, "/api/v1/events", {"Authorization": served.operator_key}, body, UPLOAD_RATE
        )
        statuses.append(status)
        durations.append(time.monotonic() - started)

    threads = [threading.Thread(target=one, args=(b,)) for b in bodies]
    for t in threads:
        t.start()
    window = len(bodies[0]) / UPLOAD_RATE + 5  # the uploads, and their ingest at the end
    busy = load.light(base + SMALL_PAGE, small, seconds=window, workdir=bench.dir)
    for t in threads:
        t.join(timeout=600)
    failed = [s for s in statuses if not 200 <= s < 300]
    five = busy.server_errors + sum(s >= 500 for s in statuses)
    ratio = busy.p99_ms / idle.p99_ms
    bench.add(
        Goal(
            "L2",
            f"small-request p99 during 4 slow uploads ({where})",
            busy.p99_ms,
            idle.p99_ms,
            ratio,
            "≤ 5, 0 5xx",
            ratio <= 5 and five == 0 and not failed and len(statuses) == len(bodies),
            unit="ms",
            note=f"p50 {busy.p50_ms:.1f} ms vs idle {idle.p50_ms:.1f}; {busy.requests} small "
            f"requests over {busy.seconds:.0f} s; uploads {len(bodies)} x "
            f"{len(bodies[0]) / 1e6:.1f} MB at {UPLOAD_RATE // 1024} KiB/s answered "
            f"{sorted(statuses)} in {min(durations, default=0):.0f}-"
            f"{max(durations, default=0):.0f} s; 5xx {five}; {busy.tool_note}",
        )
    )


# --- L3 -----------------------------------------------------------------------------------------


def _status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def peak_increase(pid: int, request: Any) -> tuple[int, Any]:
    """Peak resident memory increase of process ``pid`` (bytes) while ``request()`` runs:
    the peak (VmHWM) is reset to the current size first (``clear_refs`` 5)."""
    baseline = _status_kib(pid, "VmRSS")
    with open(f"/proc/{pid}/clear_refs", "w") as fh:
        fh.write("5")
    out = request()
    peak = max(_status_kib(pid, "VmHWM"), _status_kib(pid, "VmRSS"))
    return (peak - baseline) * 1024, out


def _search(base: str, key: str, body: dict[str, Any]) -> tuple[int, int, float]:
    """(status, bytes read, seconds) of one restSearch, read as it streams in."""
    started = time.perf_counter()
    size = 0
    with httpx.stream(
        "POST",
        f"{base}/misp/attributes/restSearch",
        headers={"Authorization": key, "Accept": "application/json"},
        content=orjson.dumps(body),
        timeout=1800,
    ) as response:
        for chunk in response.iter_bytes(1 << 16):
            size += len(chunk)
    return response.status_code, size, time.perf_counter() - started


def memory(bench: Bench, backend: str, *, total: int, per_event: int = 10**5) -> None:
    """L3: the server's peak memory increase over one search whose candidates are all
    ``total`` attributes, vs serving one 10^5-attribute page, each in a fresh server."""
    url = bench.o.pg_url if backend == "PostgreSQL" else None
    served = seed(
        bench, url, f"search-{backend.lower()}", big=per_event, small=0, attribute_labels=False
    )
    engine, maker = maker_of(served.url)
    started = time.perf_counter()
    for i in range(1, total // per_event):  # one event, one transaction at a time
        payload = make_event(per_event, seed=5000 + i, attribute_labels=False)
        with session_scope(maker) as session:
            intel.ingest_events(
                session,
                payloads=[payload],
                source=partners.repository.hub_org(session),
                actor="bench",
                channel="file",
                policy=tlp.DEFAULT_POLICY,
            )
        del payload
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    setup = time.perf_counter() - started
    label = f"10^{len(str(total)) - 1}" if str(total).strip("0") == "1" else f"{total:,}"
    searches = {
        "reference": {"limit": per_event},
        "last page": {"limit": per_event, "page": total // per_event},
        "type url": {"type": "url", "limit": per_event},
    }
    figures: dict[str, tuple[int, int, int, float]] = {}
    for name, body in searches.items():
        with load.server_process("hub.main:create_app", env=server_env(served.url)) as (
            base,
            pid,
        ):
            _search(base, served.partner_key, {"limit": 1})  # warm: code paths, caches
            increase, (status, size, secs) = peak_increase(
                pid, lambda b=body, u=base: _search(u, served.partner_key, b)
            )
        figures[name] = (increase, status, size, secs)
    ref = figures["reference"][0]
    for name in ("last page", "type url"):
        increase, status, size, secs = figures[name]
        ratio = increase / ref
        bench.add(
            Goal(
                "L3",
                f"restSearch over {label} attributes, {name} ({backend})",
                increase / 2**20,
                ref / 2**20,
                ratio,
                "≤ 2",
                ratio <= 2 and status == 200,
                unit="MiB",
                note=f"{searches[name]}: HTTP {status}, {size / 1e6:.1f} MB in {secs:.1f} s; "
                f"reference {searches['reference']} {figures['reference'][2] / 1e6:.1f} MB "
                f"in {figures['reference'][3]:.1f} s; setup (ingest) {setup:.0f} s",
            )
        )


def maker_of(url: str) -> tuple[Any, Any]:
    from hub.db import make_engine, make_sessionmaker
    from hub.settings import Settings

    engine = make_engine(Settings(database_url=url))
    return engine, make_sessionmaker(engine)
