"""Servers started for a measurement, and a bounded loopback load generator.

Servers are uvicorn subprocesses stopped by their own process id. Load is wrk (Debian's
package) when it is installed, else an asyncio HTTP client; both only ever talk to
127.0.0.1, for a fixed duration.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(app: str, *, env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """Run ``uvicorn --factory app`` on a free loopback port; yields its base URL."""
    with server_process(app, env=env, workers=workers) as (base, _pid):
        yield base


@contextmanager
def server_process(app: str, *, env: dict[str, str], workers: int = 1) -> Iterator[tuple[str, int]]:
    """As ``server``; yields the base URL and the server's process id (with one worker,
    the process that serves: its memory is the server's)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            app,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{app} exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start within 60 s") from None
                time.sleep(0.2)
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class LoadResult:
    requests: int
    ok: int
    seconds: float
    p50_ms: float
    p99_ms: float
    tool: str
    warmup_ok: int = (
        0  # successful requests outside the timed window (they still count as deliveries)
    )
    server_errors: int = 0  # 5xx answers (counted only where the tool can: wrk's Lua, Python)
    socket_errors: int = 0  # connect/read/write errors and timeouts

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def tool_note(self) -> str:
        """What every load line says about its load generator."""
        if self.tool == "wrk":
            return "wrk"
        return "no wrk: Python client, competing with the server for the cores"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..1): the smallest value with at least ``q`` of
    the values at or below it; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(q * len(ordered))
    return ordered[min(len(ordered) - 1, max(rank - 1, 0))]


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def saturate(
    url: str, headers: dict[str, str], *, seconds: float, connections: int = 32
) -> LoadResult:
    """Closed-loop load at saturation."""
    if have_wrk():
        return _wrk(url, headers, seconds=seconds, connections=connections)
    return asyncio.run(
        python_load(url, headers, seconds=seconds, connections=connections, rate=None)
    )


def paced(
    url: str, headers: dict[str, str], *, seconds: float, rate: float, connections: int = 32
) -> LoadResult:
    """Open-loop load at a fixed request rate (for latency at moderate load)."""
    return asyncio.run(
        python_load(url, headers, seconds=seconds, connections=connections, rate=rate)
    )


def light(
    url: str,
    headers: dict[str, str],
    *,
    seconds: float,
    pause_ms: int = 20,
    connections: int = 2,
    workdir: Path,
) -> LoadResult:
    """Light load for latency goals (L1, L2): each of ``connections`` clients sends a request,
    reads the answer and pauses ``pause_ms``. With wrk a Lua script paces the requests and
    counts 5xx answers; without it, an asyncio client at the equivalent rate."""
    if have_wrk():
        script = workdir / "light.lua"
        script.write_text(LIGHT_LUA)
        args = [
            *("wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s"),
            *("--timeout", "120s", "-s", str(script)),
        ]
        for key, value in headers.items():
            args += ["-H", f"{key}: {value}"]
        out = subprocess.run(
            [*args, url, "--", str(pause_ms)],
            capture_output=True,
            text=True,
            timeout=seconds + 180,
            check=True,
        ).stdout
        return parse_light(out)
    return asyncio.run(
        python_load(
            url,
            headers,
            seconds=seconds,
            connections=connections,
            rate=connections * 1000.0 / max(pause_ms, 1),
        )
    )


@contextmanager
def downloading(url: str, headers: dict[str, str], *, seconds: float) -> Iterator[dict[str, int]]:
    """Another client downloading ``url`` over and over, one request at a time, for at most
    ``seconds`` (wrk with one connection; else a Python thread). Yields a dict that holds
    ``completed`` (downloads finished) once the block has ended."""
    result = {"completed": 0, "failed": 0}
    if have_wrk():
        args = ["wrk", "-t1", "-c1", f"-d{max(1, round(seconds))}s", "--timeout", "120s"]
        for key, value in headers.items():
            args += ["-H", f"{key}: {value}"]
        proc = subprocess.Popen(
            [*args, url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            yield result
        finally:
            proc.send_signal(signal.SIGINT)  # wrk prints its summary on SIGINT
            out, _ = proc.communicate(timeout=180)
            try:
                parsed = parse_wrk(out)
                result["completed"], result["failed"] = parsed.ok, parsed.requests - parsed.ok
            except ValueError:  # stopped before its summary
                pass
        return
    stop = threading.Event()

    def loop() -> None:
        with httpx.Client(headers=headers, timeout=120) as client:
            deadline = time.monotonic() + seconds
            while not stop.is_set() and time.monotonic() < deadline:
                with client.stream("GET", url) as response:
                    for _ in response.iter_bytes(1 << 16):
                        pass
                ok = 200 <= response.status_code < 300
                result["completed" if ok else "failed"] += 1

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join(timeout=180)


async def python_load(
    url: str, headers: dict[str, str], *, seconds: float, connections: int, rate: float | None
) -> LoadResult:
    latencies: list[float] = []
    counts = {"all": 0, "ok": 0, "5xx": 0, "errors": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=120) as client:
        warm = await client.get(url)  # warm the connection and the server
        started = time.perf_counter()
        deadline = started + seconds

        async def one() -> None:
            t0 = time.perf_counter()
            try:
                response = await client.get(url)
            except httpx.TransportError:
                counts["errors"] += 1
                return
            latencies.append((time.perf_counter() - t0) * 1000)
            counts["all"] += 1
            counts["ok"] += 200 <= response.status_code < 300
            counts["5xx"] += response.status_code >= 500

        if rate is None:

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    await one()

            await asyncio.gather(*(worker() for _ in range(connections)))
        else:
            pending: set[asyncio.Task[None]] = set()
            interval, n = 1.0 / rate, 0
            while True:
                due = started + n * interval
                if due >= deadline:
                    break
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one())
                pending.add(task)
                task.add_done_callback(pending.discard)
                n += 1
            if pending:
                await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
    return LoadResult(
        counts["all"],
        counts["ok"],
        elapsed,
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        "python",
        warmup_ok=int(200 <= warm.status_code < 300),
        server_errors=counts["5xx"],
        socket_errors=counts["errors"],
    )


def _wrk(url: str, headers: dict[str, str], *, seconds: float, connections: int) -> LoadResult:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    return parse_wrk(out)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(out: str) -> LoadResult:
    """wrk's text summary (with ``--latency`` for the percentiles; NaN without)."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if total is None:
        raise ValueError("not a wrk summary: no 'N requests in T'")
    secs = float(total.group(2)) * _UNITS[total.group(3)] / 1000
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(g) for g in errors.groups()) if errors else 0

    def pct(label: str) -> float:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
        return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")

    requests = int(total.group(1))
    return LoadResult(
        requests,
        requests - bad,
        secs,
        pct("50"),
        pct("99"),
        "wrk",
        socket_errors=socket_errors,
    )


def parse_light(out: str) -> LoadResult:
    """The line ``LIGHT_LUA`` prints at the end of a wrk run."""
    m = re.search(r"^HUB-BENCH (.*)$", out, re.MULTILINE)
    if m is None:
        raise ValueError("no HUB-BENCH line in wrk's output")
    fields = {}
    for part in m.group(1).split():
        key, _, value = part.partition("=")
        fields[key] = int(value)
    return LoadResult(
        requests=fields["requests"],
        ok=fields["s2xx"],
        seconds=fields["duration_us"] / 1e6,
        p50_ms=fields["p50_us"] / 1000,
        p99_ms=fields["p99_us"] / 1000,
        tool="wrk",
        server_errors=fields["s5xx"],
        socket_errors=fields["errors"],
    )


# Paced requests (``delay``: a pause before each request, not counted in its latency), the
# answers counted by status class, and one summary line that ``parse_light`` reads.
LIGHT_LUA = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  pause = tonumber(args[1]) or 0
  classes = {0, 0, 0, 0, 0}
end
function delay() return pause end
function response(status, headers, body)
  local k = math.floor(status / 100)
  if k >= 1 and k <= 5 then classes[k] = classes[k] + 1 end
end
function done(summary, latency, requests)
  local c = {0, 0, 0, 0, 0}
  for _, t in ipairs(threads) do
    local theirs = t:get("classes")
    for i = 1, 5 do c[i] = c[i] + theirs[i] end
  end
  local e = summary.errors
  io.write(string.format(
    "HUB-BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d" ..
    " s2xx=%d s4xx=%d s5xx=%d errors=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, c[2], c[4], c[5], e.connect + e.read + e.write + e.timeout))
end
"""
