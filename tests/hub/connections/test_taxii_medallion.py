"""Pulling from medallion, the OASIS TAXII 2.1 reference server (a server we did not write),
with a collection loaded from a fixture bundle; real taxii2-client, real paging."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid as uuid_mod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from taxii2client.v21 import Server

from hub.db import session_scope
from hub.models import Connection, Event, EventVersion, Partner
from tests.hub.connections.conftest import add_connection, free_port, run

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stix"
TAXII = "application/taxii+json;version=2.1"
USER, PASSWORD = "hub-puller", "medallion-test-password"


def _objects(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / name).read_text())["objects"]  # type: ignore[no-any-return]


def _manifest(objects: list[dict[str, Any]], start: datetime) -> list[dict[str, Any]]:
    """One manifest entry per object, each added a millisecond after the one before."""
    return [
        {
            "id": o["id"],
            "date_added": (start + timedelta(milliseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "version": o.get("modified") or o.get("created"),
            "media_type": "application/stix+json;version=2.1",
        }
        for i, o in enumerate(objects)
    ]


@dataclass
class Medallion:
    url: str  # discovery URL
    collection: str
    process: subprocess.Popen[bytes]

    def add(self, objects: list[dict[str, Any]]) -> None:
        """POST objects to the collection, as a producer would (taxii2-client)."""
        server = Server(self.url, user=USER, password=PASSWORD)
        collection = next(c for c in server.default.collections if c.id == self.collection)
        status = collection.add_objects(
            {"type": "bundle", "id": f"bundle--{uuid_mod.uuid4()}", "objects": objects}
        )
        assert status.success_count == len(objects), status


@pytest.fixture
def medallion(tmp_path: Path) -> Iterator[Medallion]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    collection = str(uuid_mod.uuid4())
    objects = _objects("schemas-threat-report-poisonivy.json")
    data = {
        "/discovery": {
            "title": "medallion for the hub's tests",
            "default": f"{base}/api1/",
            "api_roots": [f"{base}/api1/"],
        },
        "api1": {
            "information": {
                "title": "fixtures",
                "versions": [TAXII],
                "max_content_length": 10_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": collection,
                    "title": "Poison Ivy report",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": objects,
                    "manifest": _manifest(objects, datetime(2024, 1, 1, tzinfo=UTC)),
                }
            ],
        },
    }
    (tmp_path / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(tmp_path / "data.json"),
        },
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": 100},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    log = tmp_path / "medallion.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "medallion.scripts.run"),
                *("--host", "127.0.0.1", "--port", str(port)),
                str(tmp_path / "config.json"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(f"{base}/taxii2/", process, log)
        yield Medallion(f"{base}/taxii2/", collection, process)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        process.wait(10)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            requests.get(url, headers={"Accept": TAXII}, auth=(USER, PASSWORD), timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("medallion did not start")


def _counts(maker: sessionmaker[Session]) -> tuple[int, int]:
    """(events, event versions) held."""
    with session_scope(maker, write=False) as session:
        return (
            session.scalar(select(func.count(Event.id))) or 0,
            session.scalar(select(func.count(EventVersion.id))) or 0,
        )


def test_pull_from_medallion_pages_and_resumes_from_its_cursor(
    maker: sessionmaker[Session], medallion: Medallion, upstream: Partner
) -> None:
    loaded = _objects("schemas-threat-report-poisonivy.json")
    conn = add_connection(
        maker,
        name="medallion",
        kind="taxii-pull",
        url=medallion.url,
        partner=upstream,
        key="",
        credentials={"username": USER, "password": PASSWORD},
        filters={"collection": "Poison Ivy report", "page_size": 40},
    )
    first = run(maker, conn, max_steps=1)  # one page: medallion hands out a `next` token
    assert first.state == "queued" and first.stats["objects"] == 40, first.stats
    with session_scope(maker, write=False) as session:
        assert session.get(Connection, conn.id).cursor.get("next")  # type: ignore[union-attr]
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    assert job.stats["objects"] == len(loaded), job.stats  # every object, over four pages
    events, versions = _counts(maker)
    assert events >= 1 and versions == events, job.stats
    with session_scope(maker, write=False) as session:
        cursor = session.get(Connection, conn.id).cursor  # type: ignore[union-attr]
    assert "next" not in cursor and cursor["added_after"].startswith("2024-01-01T00:00:00.154")

    # Nothing new: the cursor brings nothing twice.
    again = run(maker, conn)
    assert again.state == "done" and again.stats.get("objects", 0) == 0, again.stats
    assert _counts(maker) == (events, versions)

    # Added later upstream: only that is pulled.
    later = _objects("cti-doc-indicator-for-malicious-url.json")
    medallion.add(later)
    third = run(maker, conn)
    assert third.state == "done", third.last_error
    assert third.stats["objects"] == len(later), third.stats
    assert _counts(maker)[0] == events + 1
