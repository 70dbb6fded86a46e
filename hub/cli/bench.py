"""`hub bench`: the performance goals against in-run references (DESIGN.md §5)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from hub.cli.common import fail


def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="small sizes, short loads (< 1 min)")
    ] = False,
    large: Annotated[bool, typer.Option("--large", help="also 10^6 attributes")] = False,
    check: Annotated[bool, typer.Option("--check", help="exit 1 when any goal fails")] = False,
    json: Annotated[Path | None, typer.Option("--json", help="also write JSON lines here")] = None,
    pg_url: Annotated[
        str | None, typer.Option(help="PostgreSQL URL for I2 (default: HUB_BENCH_PG_URL)")
    ] = None,
    only: Annotated[
        str | None,
        typer.Option(help="comma-separated goal ids to run (e.g. L1,L2,L3,T1); default all"),
    ] = None,
    search_total: Annotated[
        int, typer.Option(help="L3: attributes stored for the search (default 10^6)")
    ] = 10**6,
) -> None:
    """Measure the performance goals against in-run references (DESIGN.md §5)."""

    from hub.bench.runner import Options, run

    sizes = [10**3, 10**4] if quick else [10**4, 10**5] + ([10**6] if large else [])
    options = Options(
        quick=quick,
        large=large,
        json_path=json,
        pg_url=pg_url or os.environ.get("HUB_BENCH_PG_URL"),
        repetitions=1 if quick else 3,
        load_seconds=2.0 if quick else 10.0,
        sizes=sizes,
        only={x.strip().upper() for x in (only or "").split(",") if x.strip()},
        search_total=search_total,
    )
    goals = run(options, out=typer.echo)
    exact_failures = [g for g in goals if g.exact and g.passed is False]
    failures = [g for g in goals if g.passed is False]
    if exact_failures:
        raise fail("exact counters wrong: " + ", ".join(f"{g.id} {g.what}" for g in exact_failures))
    if check and failures:
        raise fail("goals not met: " + ", ".join(g.id for g in failures))
