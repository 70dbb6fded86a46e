"""The GIL probe behind L1: how long one download of the 10^5-attribute event keeps every
other thread of its worker from running, measured without any load generator.

A thread sleeps 1 ms in a loop and records the time between its wake-ups: a gap much longer
than 1 ms is a stretch in which another thread held the GIL (or the machine gave this
process no core). The download is served in-process, through the app and the route a
worker runs (the ASGI app, the thread pool, the streamed answer), so what the probe sees is
what a small request on the same worker waits for. Machine load shows as many short gaps
and an inflated total; a long C call shows as one long gap, at any load.

    .venv/bin/python -m hub.bench.gil [--attributes 100000] [--downloads 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub.bench.core import Bench, Options


class GapRecorder:
    """A thread that sleeps ``tick`` seconds in a loop and keeps every wake-up gap longer
    than ``keep`` seconds, with when it ended (``time.perf_counter``)."""

    def __init__(self, tick: float = 0.001, keep: float = 0.005) -> None:
        self.tick = tick
        self.keep = keep
        self.gaps: list[tuple[float, float]] = []  # (ended at, length), seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="gil-probe")

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.is_set():
            time.sleep(self.tick)
            now = time.perf_counter()
            if now - last > self.keep:
                self.gaps.append((now, now - last))
            last = now

    def __enter__(self) -> GapRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def longest(self, n: int = 5) -> list[float]:
        return sorted((g for _t, g in self.gaps), reverse=True)[:n]

    def between(self, start: float, end: float) -> list[float]:
        return [g for t, g in self.gaps if start <= t <= end + 0.001]


class Phases:
    """Where the serving thread was: ``(name, start, end)`` of each wrapped call, to name
    the calls a long gap overlapped (``--phases``; wraps module attributes for the run)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, float, float]] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, name: str | None = None) -> None:
        original = getattr(owner, attr, None)
        if original is None:  # not in this version of the code
            return
        label = name or f"{getattr(owner, '__name__', owner)}.{attr}"
        spans = self.spans
        if hasattr(original, "decode"):  # a msgspec Decoder: time its decode

            class Timed:
                def decode(self, *args: Any) -> Any:
                    start = time.perf_counter()
                    try:
                        return original.decode(*args)
                    finally:
                        spans.append((label, start, time.perf_counter()))

            setattr(owner, attr, Timed())
            self._undo.append((owner, attr, original))
            return
        if attr == "_pieces":  # a generator: time from the first chunk to exhaustion

            def stream(*args: Any, **kwargs: Any) -> Any:
                start = time.perf_counter()
                yield from original(*args, **kwargs)
                spans.append(("stream", start, time.perf_counter()))

            setattr(owner, attr, stream)
            self._undo.append((owner, attr, original))
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spans.append((label, start, time.perf_counter()))

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def watch_gc(self) -> None:
        import gc

        started: dict[str, float] = {}
        spans = self.spans

        def callback(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started["at"] = time.perf_counter()
            elif "at" in started:
                spans.append((f"gc{info['generation']}", started.pop("at"), time.perf_counter()))

        gc.callbacks.append(callback)
        self._undo.append((gc, "callbacks", None))
        self._gc_callback = callback

    def restore(self) -> None:
        import gc

        if getattr(self, "_gc_callback", None) in gc.callbacks:
            gc.callbacks.remove(self._gc_callback)
        self._undo = [u for u in self._undo if u[2] is not None]
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)

    def during(self, ended: float, length: float) -> list[str]:
        start = ended - length
        found = [
            (min(e, ended) - max(s, start), n) for n, s, e in self.spans if s < ended and e > start
        ]
        named = [f"{n} {o * 1000:.0f}" for o, n in sorted(found, reverse=True)[:3] if o > 0.002]
        if not named:  # say what came just before
            before = [(e, n) for n, s, e in self.spans if e <= start]
            if before:
                e, n = max(before)
                named.append(f"{(start - e) * 1000:.0f} ms after {n} ended")
        return named


def instrument() -> Phases:
    import importlib

    import orjson

    import tlp
    from hub import responses
    from hub.intel import snapshots
    from hub.sharing import events

    try:
        pieces: Any = importlib.import_module("hub.intel.pieces")
    except ImportError:  # measuring a version before it
        pieces = None

    phases = Phases()
    phases.wrap(snapshots, "unpack")
    if pieces is not None:
        phases.wrap(pieces, "inflate")
        phases.wrap(pieces, "_elements")
        phases.wrap(pieces, "_SNAPSHOT", "split")
    phases.wrap(responses, "_pieces")
    phases.wrap(events, "current_state")
    phases.wrap(events, "_visible")
    phases.wrap(tlp, "filter_misp_event")
    phases.wrap(events, "_finish")
    phases.wrap(events, "summarise")
    phases.wrap(events, "record_event_release")
    phases.wrap(orjson, "dumps")
    phases.watch_gc()
    return phases


@contextmanager
def _served(attributes: int, workdir: Path) -> Iterator[tuple[Any, str, dict[str, str]]]:
    from fastapi.testclient import TestClient

    from hub.bench import underload
    from hub.main import create_app
    from hub.settings import Settings

    bench = Bench(Options(), workdir, lambda _line: None)
    served = underload.seed(bench, None, "gil-probe", big=attributes, small=2)
    settings = Settings(database_url=served.url, secret_key=underload.SECRET, log_level="WARNING")
    with TestClient(create_app(settings)) as client:
        yield client, served.big_uuid, {"Authorization": served.partner_key}


def noise_floor(seconds: float = 1.0) -> float:
    """The longest gap while this thread runs plain bytecode (which gives the GIL up every
    5 ms): what the machine's load alone adds to every figure (seconds)."""
    with GapRecorder() as gaps:
        until = time.perf_counter() + seconds
        spin = 0
        while time.perf_counter() < until:
            spin += 1
    return max((g for _t, g in gaps.gaps), default=0.0)


def probe(
    attributes: int = 10**5,
    downloads: int = 3,
    workdir: Path | None = None,
    *,
    phases: bool = False,
    out: Callable[[str], None] = print,
) -> list[float]:
    """Serve the event ``downloads`` times; the longest gap of each (seconds)."""
    longest_each: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        where = workdir or Path(scratch)
        with _served(attributes, where) as (client, uuid, headers):
            view = f"/api/v1/events/{uuid}"
            first = client.get(view, headers=headers)
            first.raise_for_status()
            size = len(first.content)
            marks = instrument() if phases else None
            for i in range(downloads):
                floor = noise_floor()
                with GapRecorder() as gaps:
                    started = time.perf_counter()
                    answer = client.get(view, headers=headers)
                    ended = time.perf_counter()
                assert answer.status_code == 200 and len(answer.content) == size
                longest = gaps.longest()
                longest_each.append(longest[0] if longest else 0.0)
                over = [g for g in gaps.between(started, ended) if g > 0.03]
                out(
                    f"download {i + 1}: {size / 1e6:.1f} MB in {(ended - started) * 1000:.0f} ms;"
                    f" longest gaps (ms) {', '.join(f'{g * 1000:.1f}' for g in longest)};"
                    f" gaps > 30 ms: {len(over)} ({sum(over) * 1000:.0f} ms);"
                    f" noise floor {floor * 1000:.1f} ms; load {os.getloadavg()[0]:.2f}"
                )
                if marks is not None:
                    for t, g in sorted(gaps.gaps, key=lambda x: -x[1])[:5]:
                        out(f"    gap {g * 1000:.1f} ms: {'; '.join(marks.during(t, g))}")
                    marks.spans.clear()
            if marks is not None:
                marks.restore()
    return longest_each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attributes", type=int, default=10**5)
    parser.add_argument("--downloads", type=int, default=3)
    parser.add_argument("--phases", action="store_true", help="name the calls each gap overlapped")
    args = parser.parse_args()
    say = sys.stdout.write
    say(f"load before: {os.getloadavg()[0]:.2f}\n")
    probe(args.attributes, args.downloads, phases=args.phases, out=lambda line: say(line + "\n"))


if __name__ == "__main__":
    main()
