"""Servers started for a measurement, and a bounded loopback load generator.

Servers are uvicorn subprocesses stopped by their own process id. Load is wrk (Debian's
package) when it is installed, else an asyncio HTTP client; both only ever talk to
127.0.0.1, for a fixed duration.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(app: str, *, env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """Run ``uvicorn --factory app`` on a free loopback port; yields its base URL."""
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
        yield base
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

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def saturate(
    url: str, headers: dict[str, str], *, seconds: float, connections: int = 32
) -> LoadResult:
    """Closed-loop load at saturation."""
    if shutil.which("wrk"):
        return _wrk(url, headers, seconds=seconds, connections=connections)
    return asyncio.run(
        _python_load(url, headers, seconds=seconds, connections=connections, rate=None)
    )


def paced(
    url: str, headers: dict[str, str], *, seconds: float, rate: float, connections: int = 32
) -> LoadResult:
    """Open-loop load at a fixed request rate (for latency at moderate load)."""
    return asyncio.run(
        _python_load(url, headers, seconds=seconds, connections=connections, rate=rate)
    )


async def _python_load(
    url: str, headers: dict[str, str], *, seconds: float, connections: int, rate: float | None
) -> LoadResult:
    latencies: list[float] = []
    counts = {"all": 0, "ok": 0}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:
        warm = await client.get(url)  # warm the connection and the server
        started = time.perf_counter()
        deadline = started + seconds

        async def one() -> None:
            t0 = time.perf_counter()
            response = await client.get(url)
            latencies.append((time.perf_counter() - t0) * 1000)
            counts["all"] += 1
            counts["ok"] += 200 <= response.status_code < 300

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
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
        "python",
        warmup_ok=int(200 <= warm.status_code < 300),
    )


def _wrk(url: str, headers: dict[str, str], *, seconds: float, connections: int) -> LoadResult:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    out = subprocess.run(
        [*args, url], capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    secs = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0

    def pct(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return LoadResult(total, total - bad, secs, pct("50"), pct("99"), "wrk")
