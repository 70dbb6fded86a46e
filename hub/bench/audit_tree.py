"""A1–A3 (DESIGN.md §5): the audit log's Merkle tree, against the plain append of today."""

from __future__ import annotations

import math
import random
import statistics
import time
from typing import Any

import orjson
from sqlalchemy import event

from hub.audit import proofs, search, tree
from hub.audit import service as audit
from hub.bench.core import Bench, Goal
from hub.db import session_scope

RECIPIENT = "8d6c2f0e-4d7b-4c36-9a55-0b1f5a1d{:04d}"  # 100 partners
OPERATOR = "key:5e1f0c2a-2222-4c36-9a55-0b1f5a1d9e21 (NCSC-NL, operator)"
PER_TRANSACTION = 100  # a page of deliveries is one entry; a transaction holds a few


def _record(i: int) -> audit.Record:
    """A delivery entry as a 5-item partner page writes it."""
    items = [[f"6a1d9c0e-{i % 9999:04d}-4c36-9a55-0b1f5a1d9e21", 3, True, "allowed", "green", 0]]
    return audit.Record(
        action="release.page",
        actor="key:0f3c5e2a-1111-4c36-9a55-0b1f5a1d9e21 (Z-CERT, partner)",
        recipient_uuid=RECIPIENT.format(i % 100),
        channel="rest",
        decision="allow",
        details={"releases": items * 5, "count": 5},
    )


def measure(bench: Bench) -> float:
    """A1 and A2; returns A3's measurement (an auditor's search page, ms), which is compared
    with S2's figure once that is measured (``a3``)."""
    o = bench.o
    n = 10**4 if o.quick else (10**6 if o.large else 10**5)
    label = f"10^{round(math.log10(n))}"
    engine, maker, _ = bench.fresh_db(None, "audit-tree")
    try:
        _a1_append_and_tree(bench, maker, n, label)
        _a2_inclusion_reads(bench, engine, maker, n, label)
        return _search_page_ms(maker)
    finally:
        engine.dispose()


def _a1_append_and_tree(bench: Bench, maker: Any, n: int, label: str) -> None:
    """A1: appending ``n`` entries, then building their Merkle tree (the worker's job),
    costs at most 1.2 times the plain appends."""
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


def _a2_inclusion_reads(bench: Bench, engine: Any, maker: Any, n: int, label: str) -> None:
    """A2: an inclusion proof among ``n`` entries reads at most 2 + log2(n)/8 statements
    (the worst of 200 random ones; their median time is noted)."""
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
                proofs.inclusion(session, seq=seq, size=n, org=None)
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


def _search_page_ms(maker: Any) -> float:
    """A3's measurement: the median time (ms) of an auditor's search page of 50 entries."""
    times = []
    filters = search.Filters(recipient=RECIPIENT.format(42))
    for _ in range(30):
        started = time.perf_counter()
        with session_scope(maker) as session:  # a search is recorded: a write
            page = search.search(session, filters, actor=OPERATOR, limit=50, before=None)
            orjson.dumps(page)
        times.append(time.perf_counter() - started)
    assert len(page["items"]) == 50
    return statistics.median(times) * 1000


def a3(bench: Bench, search_ms: float) -> None:
    """A3: the auditor's search page against S2's hub figure (its time per page at
    saturation, 1 worker: 1000 / rps)."""
    s2 = next((g for g in bench.goals if g.id == "S2" and g.hub), None)
    page_ms = 1000 / s2.hub if s2 is not None and s2.hub else None
    ratio = search_ms / page_ms if page_ms else None
    bench.add(
        Goal(
            "A3",
            "audit search page of 50 / partner page (S2)",
            search_ms,
            page_ms,
            ratio,
            "≤ 1.0",
            ratio <= 1.0 if ratio is not None else None,
            unit="ms",
            note="search filtered by recipient (1 of 100), newest first, recorded as an "
            "entry; in-process vs S2's time per page over HTTP; SQLite",
        )
    )
