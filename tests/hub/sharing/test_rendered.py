"""A large event released in the process pool (``hub.sharing.rendered``) is the release made
in the request's thread, byte for byte, with the same audit entries: every event of a grid of
labels and addressings (plus sightings of several organisations, a TLP:EX:CHR event and
withdrawn elements) to every kind of partner, with and without ``include_deleted``. The
pool is forced for every event here (``HUB_RENDER_OFFLOAD_ATTRIBUTES=1``) and compared with
an app that never uses it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.intel import offload
from hub.main import create_app
from hub.models import AuditEntry
from hub.settings import Settings
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import Who, grid, make_people


@pytest.fixture
def pooled(settings: Settings, engine: Any) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"render_offload_attributes": 1}), engine=engine)
    with TestClient(app) as client:
        yield client
    offload.close()


@pytest.fixture
def threaded(settings: Settings, engine: Any) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"render_offload_attributes": 0}), engine=engine)
    with TestClient(app) as client:
        yield client


def _entries(maker: sessionmaker[Session], after: int) -> list[Any]:
    """The audit entries appended after ``after``, without what differs between two
    requests (number, time, request id, the salt of the internal part and its seal)."""
    with maker() as s:
        rows = s.scalars(select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq))
        out = []
        for row in rows:
            details = {k: v for k, v in (row.body.get("details") or {}).items() if k != "sealed"}
            if "delivery" in details:
                details["delivery"] = details["delivery"] is not None
            internal = {k: v for k, v in (row.internal or {}).items() if k != "salt"}
            out.append(
                (row.action, row.decision, row.recipient_uuid, row.channel, details, internal)
            )
        return out


def _last(maker: sessionmaker[Session]) -> int:
    with maker() as s:
        return int(s.scalar(select(func.max(AuditEntry.seq))) or 0)


def _answer(client: TestClient, who: Who, path: str, maker: sessionmaker[Session]) -> Any:
    before = _last(maker)
    r = client.get(f"/api/v1/{path}", headers=who.headers)
    return r.status_code, r.content, r.headers.get("x-hub-tlp"), _entries(maker, before)


def _events(source: Who, people: dict[str, Who]) -> list[dict[str, Any]]:
    members = [people["eco"].uuid, people["conn"].uuid]
    events = grid(members)
    sighted = event(
        "sighted",
        tlp="green",
        attributes=[attr("198.51.100.80"), attr("198.51.100.81", "amber")],
        timestamp=1_800_000_000,
    )
    for i, org in enumerate((source.uuid, people["core"].uuid, people["eco"].uuid)):
        sighted["Event"]["Attribute"][0].setdefault("Sighting", []).append(
            {
                "uuid": f"5a1e0000-0000-4000-8000-00000000000{i}",
                "type": "0",
                "date_sighting": "1800000000",
                "source": f"sensor {i}",
                "Organisation": {"uuid": org, "name": f"org {i}"},
            }
        )
    chr_event = event("chr", tlp="green", attributes=[attr("198.51.100.90")])
    chr_event["Event"]["Tag"].append({"name": "tlp:ex:chr"})
    return [*events, sighted, chr_event]


def test_the_pool_releases_what_the_thread_releases(
    pooled: TestClient,
    threaded: TestClient,
    factory: Any,
    maker: sessionmaker[Session],
) -> None:
    source, people = make_people(factory, role=Role.PARTNER)
    everyone = [source, *people.values()]
    events = _events(source, people)
    for ev in events:
        r = threaded.post("/api/v1/events", json=ev, headers=source.headers)
        assert r.status_code == 201, r.text
    # Withdrawn elements: the core partner had the first event whole, then one of its
    # attributes was deleted (include_deleted shows it to who had it).
    first = events[0]
    for who in everyone:
        threaded.get(f"/api/v1/events/{first['Event']['uuid']}", headers=who.headers)
    edit = copy.deepcopy(first)
    edit["Event"]["timestamp"] = str(int(first["Event"].get("timestamp") or 1_700_000_000) + 10)
    edit["Event"]["Attribute"] = [
        dict(edit["Event"]["Attribute"][0], deleted=True, timestamp=edit["Event"]["timestamp"])
    ]
    assert threaded.post("/api/v1/events", json=edit, headers=source.headers).status_code == 201
    compared = served = 0
    for ev in events:
        for who in everyone:
            for path in (
                f"events/{ev['Event']['uuid']}",
                f"events/{ev['Event']['uuid']}?include_deleted=true",
            ):
                there = _answer(pooled, who, path, maker)
                here = _answer(threaded, who, path, maker)
                assert there == here, (ev["Event"]["info"], who.name, path)
                compared += 1
                served += there[0] == 200
    assert offload._pool is not None  # noqa: SLF001 - the pool did the work
    assert compared == len(events) * len(everyone) * 2
    assert 0 < served < compared  # some refused, some served
