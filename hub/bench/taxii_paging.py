"""T1 (DESIGN.md §5): paging through a TAXII 2.1 collection, the hub vs medallion.

The hub's collection is made of real renderings: one event rendered by the hub's own
pipeline (misp-stix, labels, references), its ``stix_objects`` rows then copied with fresh
identifiers (every ``type--uuid`` of a copy mapped to a new uuid, so each copy's references
point into the same copy) and later ``date_added``, up to the size measured; rendering 10^5
objects with misp-stix would take minutes for nothing the benchmark measures. medallion, the
OASIS reference server, is started by the benchmark with its memory backend holding exactly
the objects the hub served in that run (read by paging through the hub), and both are paged
through by the same client with the same page size.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid as uuid_mod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, insert, select

from hub.bench import load
from hub.bench.core import Bench, Goal
from hub.bench.underload import maker_of, seed, server_env
from hub.db import session_scope
from hub.models import StixObject, StixRendering
from hub.taxii import service as taxii

TAXII = "application/taxii+json;version=2.1"
PAGE = 100  # TAXII's usual page size, the hub's default and medallion's configured maximum
TEMPLATE_ATTRIBUTES = 300  # rendered at ingest (MAX_RENDER_AT_INGEST)
_ID = re.compile(rb"([a-z0-9-]+)--([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_COPY = ("stix_id", "doc", "refs")


@dataclass
class Paged:
    """One page-through: objects read, pages, the first page's and the whole time."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    pages: int = 0
    first: float = 0.0
    total: float = 0.0
    stopped: str = ""  # why the page-through stopped early, if it did

    @property
    def per_page(self) -> float:
        return self.total / self.pages if self.pages else float("nan")


def copy_ids(data: bytes, copy: int) -> bytes:
    """``data`` with every STIX identifier's uuid replaced by copy ``copy``'s own (uuid5 of the
    original; the same original always maps to the same new one within a copy)."""

    def swap(m: re.Match[bytes]) -> bytes:
        new = uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, f"{copy}/{m.group(2).decode()}")
        return m.group(1) + b"--" + str(new).encode()

    return _ID.sub(swap, data)


def grow(maker: Any, target: int, template_rows: int) -> int:
    """Copy the template rows (the first ``template_rows``, as rendered) until ``target``
    rows exist; returns how many exist."""
    with session_scope(maker) as session:
        have = session.scalar(select(func.count(StixObject.id))) or 0
        template = [
            {c.key: getattr(row, c.key) for c in StixObject.__table__.columns if c.key != "id"}
            for row in session.scalars(
                select(StixObject).order_by(StixObject.id).limit(template_rows)
            ).all()
        ]
        assert template, "the template event rendered no STIX objects"
        last = session.scalar(select(func.max(StixObject.date_added)))
        n, batch = have, []
        while n < target:
            copy, row = divmod(n, len(template))  # copy 0 is the rendering itself
            new = dict(template[row])
            for key in _COPY:
                value = template[row][key]
                if value is not None:
                    raw = value if isinstance(value, bytes) else value.encode()
                    swapped = copy_ids(raw, copy)
                    new[key] = swapped if isinstance(value, bytes) else swapped.decode()
            new["date_added"] = last + timedelta(microseconds=n + 1)
            batch.append(new)
            n += 1
            if len(batch) >= 5000:
                session.execute(insert(StixObject), batch)
                batch = []
        if batch:
            session.execute(insert(StixObject), batch)
    return n


def page_through(
    url: str, headers: dict[str, Any], *, auth: Any = None, page_limit: float, budget: float
) -> Paged:
    """GET …/objects/?limit=PAGE, then ``next`` until ``more`` is false; stops early when a
    page takes longer than ``page_limit`` or the whole longer than ``budget`` seconds."""
    out = Paged()
    params: dict[str, Any] = {"limit": PAGE}
    with httpx.Client(headers={"Accept": TAXII, **headers}, auth=auth, timeout=None) as client:
        started = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            try:
                response = client.get(url, params=params, timeout=page_limit)
            except httpx.TimeoutException:
                out.stopped = f"no answer to page {out.pages + 1} within {page_limit:.0f} s"
                out.total = time.perf_counter() - started
                break
            elapsed = time.perf_counter() - t0
            response.raise_for_status()
            body = response.json()
            out.pages += 1
            out.first = out.first or elapsed
            out.objects.extend(body.get("objects", []))
            out.total = time.perf_counter() - started
            if not body.get("more"):
                break
            if elapsed > page_limit:
                out.stopped = f"a page took {elapsed:.1f} s (limit {page_limit:.0f} s)"
                break
            if out.total > budget:
                out.stopped = f"{out.total:.0f} s spent (budget {budget:.0f} s)"
                break
            params = {"limit": PAGE, "next": body["next"]}
    return out


def unique(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (id, version) once: the marking definitions come with every page."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        seen.setdefault((obj["id"], obj.get("modified") or obj.get("created") or ""), obj)
    return list(seen.values())


def medallion(
    workdir: Path, objects: list[dict[str, Any]], *, page_limit: float, budget: float
) -> Paged:
    """Start medallion (memory backend) holding ``objects``; page through it; stop it."""
    port = load.free_port()
    base = f"http://127.0.0.1:{port}"
    collection = str(uuid_mod.uuid4())
    data = _medallion_data(base, collection, objects)
    (workdir / "medallion-data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(workdir / "medallion-data.json"),
        },
        "users": {"bench": "bench-password"},
        "taxii": {"max_page_size": PAGE},
    }
    (workdir / "medallion.json").write_text(json.dumps(config))
    log = (workdir / "medallion.log").open("wb")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "medallion.scripts.run"),
            *("--host", "127.0.0.1", "--port", str(port), str(workdir / "medallion.json")),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_until_up(proc, base, workdir)
        return page_through(
            f"{base}/api1/collections/{collection}/objects/",
            {},
            auth=("bench", "bench-password"),
            page_limit=page_limit,
            budget=budget,
        )
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)
        log.close()


def _medallion_data(base: str, collection: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    """medallion's memory backend file: one collection holding copies of ``objects``, each
    added a millisecond after the one before (an observable is versioned by that date)."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    objects = [dict(o) for o in objects]
    manifest = []
    for i, obj in enumerate(objects):
        added = (start + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        version = obj.get("modified") or obj.get("created")
        if version is None:  # an observable: medallion versions it by its date added
            version = obj["_date_added"] = added
        manifest.append(
            {
                "id": obj["id"],
                "date_added": added,
                "version": version,
                "media_type": "application/stix+json;version=2.1",
            }
        )
    return {
        "/discovery": {
            "title": "bench",
            "default": f"{base}/api1/",
            "api_roots": [f"{base}/api1/"],
        },
        "api1": {
            "information": {"title": "bench", "versions": [TAXII], "max_content_length": 10**8},
            "status": [],
            "collections": [
                {
                    "id": collection,
                    "title": "bench",
                    "can_read": True,
                    "can_write": False,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": manifest,
                }
            ],
        },
    }


def _wait_until_up(proc: subprocess.Popen[bytes], base: str, workdir: Path) -> None:
    """Wait (up to 60 s) until the started medallion answers its discovery URL."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError("medallion exited: " + (workdir / "medallion.log").read_text())
        try:
            httpx.get(f"{base}/taxii2/", headers={"Accept": TAXII}, timeout=2)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise RuntimeError("medallion did not start within 60 s") from None
            time.sleep(0.2)


def measure(bench: Bench) -> None:
    """T1 at 10^3 and 10^4 objects (hub and medallion) and the hub alone at 10^5."""
    sizes, with_medallion = (10**3, 10**4, 10**5), (10**3, 10**4)
    page_limit, budget = 120.0, 300.0
    served = seed(bench, None, "taxii", big=TEMPLATE_ATTRIBUTES, small=0, attribute_labels=False)
    engine, maker = maker_of(served.url)
    with session_scope(maker) as session:
        rendering = session.scalar(select(StixRendering.status))
        template_rows = session.scalar(select(func.count(StixObject.id))) or 0
    if rendering != "rendered":
        raise RuntimeError(f"the template event was not rendered ({rendering})")
    hub_at: dict[int, Paged] = {}
    for size in sizes:
        stored = grow(maker, size, template_rows)
        with load.server("hub.main:create_app", env=server_env(served.url)) as base:
            url = f"{base}/taxii2/{taxii.API_ROOT}/collections/{taxii.ALL.id}/objects/"
            headers = {"Authorization": served.partner_key}
            page_through(url, headers, page_limit=60, budget=60)  # warm
            hub = page_through(url, headers, page_limit=600, budget=3600)
        hub_at[size] = hub
        objects = unique(hub.objects)
        label = f"10^{len(str(size)) - 1}"
        if size not in with_medallion:
            continue
        ref = medallion(bench.dir, objects, page_limit=page_limit, budget=budget)
        complete = not ref.stopped and len(unique(ref.objects)) == len(objects)
        note = f"{len(objects):,} objects ({stored:,} rows) in {hub.pages} pages of {PAGE}"
        if complete:
            hub_s, ref_s, what = hub.total, ref.total, "whole collection"
        elif ref.pages:  # medallion stopped early: compare the time per page it did serve
            hub_s, ref_s = hub.per_page, ref.per_page
            what = f"per page ({ref.pages} medallion pages)"
        else:  # not one page within the limit: the limit is a lower bound of its time
            hub_s, ref_s = hub.first, page_limit
            what = "first page; medallion's time is a lower bound (the page limit)"
        if ref.pages:
            note += (
                f"; first page hub {hub.first * 1000:.1f} ms, medallion "
                f"{ref.first * 1000:.0f} ms ({ref.first / hub.first:.0f}x)"
            )
        bench.add(
            Goal(
                "T1",
                f"TAXII page-through {label} objects, medallion/hub",
                hub_s,
                ref_s,
                ref_s / hub_s,
                "≥ 20",
                ref_s / hub_s >= 20,
                note=f"{what}; {note}"
                + (f"; medallion stopped: {ref.stopped}" if ref.stopped else ""),
            )
        )
    engine.dispose()
    small, large = sizes[0], sizes[-1]
    if small != large:
        ratio = hub_at[large].per_page / hub_at[small].per_page
        bench.add(
            Goal(
                "T1",
                f"hub time per TAXII page, 10^{len(str(large)) - 1} / 10^{len(str(small)) - 1}",
                hub_at[large].per_page,
                hub_at[small].per_page,
                ratio,
                "≤ 1.5",
                ratio <= 1.5,
                note=", ".join(
                    f"{len(unique(p.objects)):,} objects: {p.per_page * 1000:.1f} ms/page"
                    for p in hub_at.values()
                )
                + "; flat = at most 1.5x",
            )
        )
