"""A1–A3 (DESIGN.md §5): the audit log's Merkle tree, against the plain append of today."""

from __future__ import annotations

import math
import random
import statistics
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import event

from hub.audit import proofs, tree
from hub.audit import service as audit
from hub.db import session_scope

if TYPE_CHECKING:
    from hub.bench.runner import Bench

RECIPIENT = "8d6c2f0e-4d7b-4c36-9a55-0b1f5a1d9e21"
PER_TRANSACTION = 100  # a page of deliveries is one entry; a transaction holds a few


def _record(i: int) -> audit.Record:
    """A delivery entry as a 5-item partner page writes it."""
    items = [[f"6a1d9c0e-{i % 9999:04d}-4c36-9a55-0b1f5a1d9e21", 3, True, "allowed", "green", 0]]
    return audit.Record(
        action="release.page",
        actor="key:0f3c5e2a-1111-4c36-9a55-0b1f5a1d9e21 (Z-CERT, partner)",
        recipient_uuid=RECIPIENT,
        channel="rest",
        decision="allow",
        details={"releases": items * 5, "count": 5},
    )


def measure(bench: Bench) -> None:
    from hub.bench.runner import Goal

    o = bench.o
    n = 10**4 if o.quick else (10**6 if o.large else 10**5)
    label = f"10^{round(math.log10(n))}"
    engine, maker, _ = bench._fresh_db(None, "audit-tree")
    try:
        started = time.perf_counter()
        for first in range(0, n, PER_TRANSACTION):
            with session_scope(maker) as session:
                audit.append(session, [_record(i) for i in range(first, first + PER_TRANSACTION)])
        plain = time.perf_counter() - started
        started = time.perf_counter()
        while True:
            with session_scope(maker) as session:
                if not tree.extend(session):
                    break
        building = time.perf_counter() - started
        ratio = (plain + building) / plain
        bench.add(
            Goal(
                "A1",
                f"append {label} audit entries + Merkle tree / plain",
                plain + building,
                plain,
                ratio,
                "≤ 1.2",
                ratio <= 1.2,
                note=f"tree built by the worker's job: {building / n * 1e6:.1f} µs/entry, "
                f"append {plain / n * 1e6:.1f} µs/entry; SQLite",
            )
        )

        reads: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            reads.append(statement)

        rng = random.Random(17)
        times, worst = [], 0
        with maker() as session:
            proofs.inclusion(session, seq=1, size=n, org=None)  # warm the statement cache
            for seq in rng.sample(range(1, n + 1), 200):
                reads.clear()
                event.listen(engine, "before_cursor_execute", count)
                started = time.perf_counter()
                try:
                    proofs.inclusion(session, seq=seq, size=n, org=RECIPIENT)
                finally:
                    times.append(time.perf_counter() - started)
                    event.remove(engine, "before_cursor_execute", count)
                worst = max(worst, len(reads))
        allowed = 2 + math.log2(n) / 8
        median_ms = statistics.median(times) * 1000
        bench.add(
            Goal(
                "A2",
                f"inclusion proof at {label} entries: reads",
                worst,
                allowed,
                None,
                f"≤ {allowed:.1f}",
                worst <= allowed,
                unit="",
                exact=True,
                note=f"median {median_ms:.2f} ms (goal ≤ 5 ms: "
                f"{'PASS' if median_ms <= 5 else 'FAIL'}); tree size, entry, nodes; SQLite",
            )
        )
        bench.add(
            Goal(
                "A3",
                "audit search page of 50 (auditor API)",
                None,
                None,
                None,
                "≈ S2",
                None,
                note="not measured: the auditor's search API is not implemented yet",
            )
        )
    finally:
        engine.dispose()
