"""The benchmark's core: its options, the goals it reports, and the databases its steps
measure on. Every step module (``runner``, ``matching``, ``underload``, ``audit_tree``,
``taxii_paging``) builds on this and none on another, so the runner can call them all."""

from __future__ import annotations

import gc
import os
import platform
import sqlite3
import statistics
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import create_engine, text

from hub import __version__, migrate
from hub.bench import load
from hub.db import make_engine, make_sessionmaker, session_scope
from hub.models import Partner
from hub.partners import service as partners
from hub.settings import Settings

SECRET = "bench-secret-" + "b" * 40


@dataclass
class Goal:
    id: str
    what: str
    hub: float | None
    reference: float | None
    ratio: float | None
    goal: str
    passed: bool | None
    unit: str = "s"
    exact: bool = False  # an exact counter: a failure fails even the quick run
    note: str = ""

    def line(self) -> str:
        def fmt(v: float | None) -> str:
            if v is None:
                return "-"
            return f"{v:.4g} {self.unit}".strip()

        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]
        ratio = "-" if self.ratio is None else f"{self.ratio:.2f}"
        text = (
            f"{self.id:<4} {self.what:<44} hub {fmt(self.hub):>12}  ref {fmt(self.reference):>12}"
            f"  ratio {ratio:>6}  goal {self.goal:<9} {verdict}"
        )
        return text + (f"  ({self.note})" if self.note else "")


@dataclass
class Options:
    quick: bool = False
    large: bool = False
    pg_url: str | None = None
    json_path: Path | None = None
    repetitions: int = 3
    load_seconds: float = 10.0
    sizes: list[int] = field(default_factory=list)
    # Goal ids to run (``--only``); empty: all. A step runs when any goal it measures is named.
    only: set[str] = field(default_factory=set)
    search_total: int = 10**6  # L3: attributes the search runs over

    def wants(self, *ids: str) -> bool:
        return not self.only or bool(self.only & {i.upper() for i in ids})


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextmanager
def gc_collected() -> Iterator[None]:
    gc.collect()
    yield


def header(options: Options) -> dict[str, Any]:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    import fastapi
    import psycopg
    import sqlalchemy
    import uvicorn

    return {
        "commit": commit or "unknown",
        "hub": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "fastapi": fastapi.__version__,
        "uvicorn": uvicorn.__version__,
        "orjson": orjson.__version__,
        "psycopg": psycopg.__version__,
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "mode": "quick" if options.quick else ("large" if options.large else "full"),
        "load_tool": "wrk" if load.shutil.which("wrk") else "python",
    }


class Bench:
    """What every measurement step shares: the options, a scratch directory, the goals
    reported so far, and fresh databases (SQLite files, or scratch PostgreSQL databases
    dropped at the end)."""

    def __init__(self, options: Options, workdir: Path, out: Callable[[str], None]) -> None:
        self.o = options
        self.dir = workdir
        self.out = out
        self.goals: list[Goal] = []
        self.pg_databases: set[tuple[str, str]] = set()

    def add(self, goal: Goal) -> None:
        self.goals.append(goal)
        self.out(goal.line())

    def _scratch_pg_database(self, url: str) -> str:
        """A new, empty database on the given server for each use; never touch the one named."""
        from sqlalchemy.engine import make_url

        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"hub_bench_{os.getpid()}"
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self.pg_databases.add((url, name))
        return make_url(url).set(database=name).render_as_string(hide_password=False)

    def drop_scratch(self) -> None:
        for url, name in self.pg_databases:
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

    def fresh_db(self, url: str | None, name: str) -> tuple[Any, Any, Partner]:
        if url is None:
            path = self.dir / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        else:
            url = self._scratch_pg_database(url)
        engine = make_engine(Settings(database_url=url))
        migrate.upgrade(engine)
        maker = make_sessionmaker(engine)
        with session_scope(maker) as session:
            org, _ = partners.ensure_hub_org(session, name="NCSC-NL", actor="bench")
        return engine, maker, org
