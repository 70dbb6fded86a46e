"""The benchmark's machinery (percentiles, wrk's output, the pacing script, memory peaks, id
copies, slow uploads), not its timings: those are ratios that `hub bench` reports."""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from hub.bench import load, taxii_paging, underload
from hub.bench.runner import Options

WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:8642/
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.28ms   12.93ms  68.01ms   86.47%
    Req/Sec   303.80    135.37   610.00     80.00%
  Latency Distribution
     50%  458.00us
     75%   13.83ms
     90%   28.12ms
     99%    1.21s
  305 requests in 1.01s, 811.35KB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    301.76
Transfer/sec:    802.74KB
"""


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    assert load.percentile(values, 0.99) == 99.0
    assert load.percentile(values, 0.5) == 50.0
    assert load.percentile(values, 1.0) == 100.0
    assert load.percentile([3.0, 1.0, 2.0], 0.99) == 3.0
    assert load.percentile([7.0], 0.5) == 7.0
    assert math.isnan(load.percentile([], 0.99))


def test_wrk_summary_parsed_with_units_errors_and_non_2xx() -> None:
    result = load.parse_wrk(WRK_OUTPUT)
    assert result.requests == 305
    assert result.ok == 298
    assert result.seconds == pytest.approx(1.01)
    assert result.p50_ms == pytest.approx(0.458)
    assert result.p99_ms == pytest.approx(1210.0)
    assert result.socket_errors == 5
    assert result.tool == "wrk" and result.tool_note == "wrk"


def test_wrk_summary_without_latency_distribution_has_no_percentiles() -> None:
    text = WRK_OUTPUT.split("  Latency Distribution")[0] + "  12 requests in 2.00m, 1KB read\n"
    result = load.parse_wrk(text)
    assert result.requests == 12 and result.seconds == pytest.approx(120.0)
    assert math.isnan(result.p99_ms)


def test_not_a_wrk_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="not a wrk summary"):
        load.parse_wrk("wrk: command failed\n")


def test_light_summary_line_parsed() -> None:
    out = (
        "Running 10s test @ http://127.0.0.1:1/\n"
        "HUB-BENCH requests=412 duration_us=10004000 p50_us=2100 p99_us=48000 max_us=90000"
        " s2xx=400 s4xx=2 s5xx=10 errors=1\n"
    )
    result = load.parse_light(out)
    assert (result.requests, result.ok, result.server_errors, result.socket_errors) == (
        412,
        400,
        10,
        1,
    )
    assert result.p50_ms == pytest.approx(2.1) and result.p99_ms == pytest.approx(48.0)
    assert result.seconds == pytest.approx(10.004)
    with pytest.raises(ValueError, match="HUB-BENCH"):
        load.parse_light("Running 10s test\n")


def test_the_python_client_says_so_on_its_load_lines() -> None:
    result = load.LoadResult(1, 1, 1.0, 1.0, 1.0, "python")
    assert "no wrk" in result.tool_note


class _Alternating(BaseHTTPRequestHandler):
    """200, 503, 200, 503 ... and the body of every POST kept."""

    answered = {"200": 0, "503": 0}
    received: list[tuple[str | None, bytes]] = []

    def do_GET(self) -> None:
        with _LOCK:
            n = sum(self.answered.values())
            status = 503 if n % 2 else 200
            self.answered[str(status)] += 1
        self._answer(status, b'{"ok": true}')

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.headers["Content-Length"], self.rfile.read(length)))
        self._answer(201, b"{}")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


_LOCK = threading.Lock()


@pytest.fixture
def alternating() -> Iterator[str]:
    _Alternating.answered = {"200": 0, "503": 0}
    _Alternating.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Alternating)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_pacing_script_counts_server_errors(alternating: str, tmp_path: Path) -> None:
    result = load.light(
        alternating + "/x", {}, seconds=1, pause_ms=5, connections=1, workdir=tmp_path
    )
    sent = _Alternating.answered
    assert result.tool == "wrk"
    assert result.requests == result.ok + result.server_errors
    assert result.server_errors > 0 and result.ok > 0
    # wrk stops with at most one request (one connection) in flight that it never counts.
    assert 0 <= sent["503"] - result.server_errors <= 1
    assert 0 <= sent["200"] - result.ok <= 1
    assert result.p50_ms <= result.p99_ms


def test_python_client_counts_server_errors_too(alternating: str, tmp_path: Path) -> None:
    import asyncio

    result = asyncio.run(
        load.python_load(alternating + "/x", {}, seconds=0.5, connections=1, rate=50)
    )
    assert result.tool == "python"
    assert result.server_errors == _Alternating.answered["503"] - (1 - result.warmup_ok)
    assert result.ok + result.server_errors == result.requests


def test_slow_upload_sends_the_whole_body_with_its_length(alternating: str) -> None:
    body = orjson.dumps({"x": "y" * 50_000})
    status = underload.slow_upload(alternating, "/up", {"X-Test": "1"}, body, rate=1 << 20)
    assert status == 201
    assert _Alternating.received == [(str(len(body)), body)]


def test_slow_upload_to_nobody_answers_zero() -> None:
    port = load.free_port()  # nothing listens there
    assert underload.slow_upload(f"http://127.0.0.1:{port}", "/", {}, b"{}", rate=1024) == 0


def test_peak_increase_sees_a_transient_allocation() -> None:
    import os

    def allocate() -> int:
        block = bytearray(64 * 2**20)
        block[::4096] = b"x" * len(block[::4096])  # touch every page
        return len(block)

    increase, out = underload.peak_increase(os.getpid(), allocate)
    assert out == 64 * 2**20
    assert increase >= 48 * 2**20  # the block was freed: only the reset peak still shows it
    quiet, _ = underload.peak_increase(os.getpid(), lambda: None)
    assert quiet < 16 * 2**20


def test_copied_ids_are_new_consistent_and_leave_the_rest() -> None:
    a = "indicator--0b5f8f6e-9f0b-4d0b-9b2e-3e2f1c8a9d10"
    b = "observed-data--1c6a9a7f-0a1c-4e1c-8c3f-4f3a2d9b0e21"
    doc = orjson.dumps({"id": a, "object_refs": [b, a], "name": "tlp test 1234"})
    first = orjson.loads(taxii_paging.copy_ids(doc, 1))
    second = orjson.loads(taxii_paging.copy_ids(doc, 2))
    assert first["id"].startswith("indicator--") and first["id"] != a
    assert first["object_refs"][1] == first["id"]  # the same id maps to the same new one
    assert first["object_refs"][0].startswith("observed-data--") and first["object_refs"][0] != b
    assert second["id"] not in (a, first["id"])
    assert first["name"] == "tlp test 1234"
    assert taxii_paging.copy_ids(doc, 1) == taxii_paging.copy_ids(doc, 1)


def test_unique_keeps_each_object_version_once() -> None:
    marking = {"id": "marking-definition--x", "created": "2022-10-01T00:00:00Z"}
    objs = [marking, {"id": "ipv4-addr--y"}, dict(marking), {"id": "ipv4-addr--y"}]
    assert taxii_paging.unique(objs) == [marking, {"id": "ipv4-addr--y"}]


def test_only_selects_steps_by_goal_id() -> None:
    assert Options().wants("L1")
    picked = Options(only={"L3", "I2B"})
    assert picked.wants("L3") and picked.wants("I1", "I2b")
    assert not picked.wants("L1", "L2") and not picked.wants("T1")


def test_grow_copies_rendered_objects_that_the_hub_serves(
    maker: Any, hub_org: Any, factory: Any, client: Any
) -> None:
    """The T1 collection: a real rendering copied with fresh ids, resumable mid-copy, and
    served (all of it, each object once) by the hub's TAXII objects endpoint."""
    from sqlalchemy import func, select

    import tlp
    from hub.bench.dataset import make_event
    from hub.db import session_scope
    from hub.intel import service as intel
    from hub.models import StixObject

    with session_scope(maker) as session:
        intel.ingest_events(
            session,
            payloads=[make_event(6, attribute_labels=False)],
            source=session.merge(hub_org),
            actor="test",
            channel="file",
            policy=tlp.DEFAULT_POLICY,
        )
    with maker() as session:
        template = session.scalar(select(func.count(StixObject.id))) or 0
    assert template > 1
    assert taxii_paging.grow(maker, 2 * template + 1, template) == 2 * template + 1
    assert taxii_paging.grow(maker, 3 * template, template) == 3 * template  # resumes mid-copy
    with maker() as session:
        ids = session.scalars(select(StixObject.stix_id)).all()
    assert len(ids) == len(set(ids)) == 3 * template
    key = factory.key("partner")
    served: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 7}
    while True:
        page = client.get(
            "/taxii2/cwn/collections/all/objects/",
            params=params,
            headers={"Authorization": key, "Accept": taxii_paging.TAXII},
        )
        assert page.status_code == 200, page.text
        body = page.json()
        served += body.get("objects", [])
        if not body["more"]:
            break
        params = {"limit": 7, "next": body["next"]}
    objects = [o for o in taxii_paging.unique(served) if o["type"] != "marking-definition"]
    assert sorted(o["id"] for o in objects) == sorted(ids)


def test_the_gil_probe_sees_a_long_c_call() -> None:
    """The L1 probe's recorder (``hub.bench.gil``): a C call that keeps the GIL shows as a
    gap at least as long as the call."""
    from hub.bench.gil import GapRecorder

    haystack = bytes(64 * 2**20)
    with GapRecorder() as held:
        time.sleep(0.02)  # the recorder is running
        started = time.perf_counter()
        assert haystack.count(b"\x01") == 0  # one C call that keeps the GIL
        took = time.perf_counter() - started
        time.sleep(0.02)
    assert took > 0.01
    assert max(g for _t, g in held.gaps) >= 0.9 * took
