"""Runs every goal of DESIGN.md §5 against its in-run reference and reports the ratios.

Each group of goals has a module of its own (``ingest``, ``serving``, ``matching``,
``audit_tree``, ``underload``, ``taxii_paging``), on the shared core (``hub.bench.core``);
this module chooses which run and in what order.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import orjson

from hub.bench import audit_tree, ingest, matching, serving, taxii_paging, underload
from hub.bench.core import Bench, Goal, Options, header

__all__ = ["Options", "run"]


def run(options: Options, out: Callable[[str], None] = print) -> list[Goal]:
    info = header(options)
    out("CWN hub benchmark  " + "  ".join(f"{k}={v}" for k, v in info.items()))
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        bench = Bench(options, Path(tmp), out)
        try:
            if options.wants("I1", "I2", "I2b", "I4", "CNT"):
                for size in options.sizes:
                    ingest.measure(bench, size)
            if options.wants("M1"):
                matching.measure(bench)
                if options.pg_url:
                    matching.measure(bench, backend="PostgreSQL")
            memory_sizes = (
                options.sizes[-1:] if options.quick else [s for s in options.sizes if s >= 10**5]
            )
            if options.wants("I3"):
                for size in memory_sizes:
                    ingest.memory(bench, size)
            search_ms = None
            if options.wants("A1", "A2", "A3"):
                search_ms = audit_tree.measure(bench)
            if options.wants("S1", "S2", "S3", "S4", "S5", "S6"):
                serving.measure(bench, options.sizes[-1] if options.quick else 10**5)
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
