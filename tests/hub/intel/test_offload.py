"""A large MISP submission is parsed, validated and drafted in a process of its own
(``hub.intel.offload``): what it prepares is what the request's thread prepares, a bad body
is still a 4xx naming what is wrong, and a pool whose process died loses nothing. The pool
is real (``spawn``), so these tests pay for one process start each."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.intel import offload
from hub.main import create_app
from hub.models import Event
from hub.settings import Settings
from hub.vocabulary import Role
from tests.builders import attr, event

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "misp" / "events").glob("*.json"))
ORGC = {"uuid": "5f0c9a4e-2c1b-4d7e-9a55-0e2f3b1c7d10", "name": "Offload CSIRT"}


@pytest.fixture
def offloading(settings: Settings, engine: Any) -> Iterator[TestClient]:
    """The app with every submission body prepared in the pool."""
    app = create_app(settings.model_copy(update={"ingest_offload_bytes": 1}), engine=engine)
    with TestClient(app) as client:
        yield client
    offload.close()


def _prepare(body: bytes, *, offload_bytes: int) -> offload.Prepared:
    return offload.prepared_submission(
        body,
        default_distribution=1,
        orgc=ORGC,
        policy=tlp.DEFAULT_POLICY,
        sqlite=True,
        offload_bytes=offload_bytes,
    )


def test_the_pool_prepares_what_the_thread_prepares() -> None:
    """Each fixture event, prepared and drafted in the pool and in the thread: the same
    normalised events and the same drafted rows, hash and snapshot."""
    try:
        for path in FIXTURES:
            # Normalised once first: what normalising makes up (a uuid, a timestamp) is
            # then given, the same to both.
            body = orjson.dumps(
                [i.event for i in _prepare(path.read_bytes(), offload_bytes=0).items]
            )
            there, here = _prepare(body, offload_bytes=1), _prepare(body, offload_bytes=0)
            assert offload._pool is not None  # noqa: SLF001 - the pool was used
            assert len(there.items) == len(here.items), path.name
            for a, b in zip(there.items, here.items, strict=True):
                assert a.event == b.event, path.name
                assert (a.error is None) == (b.error is None), path.name
                assert (a.draft is None) == (b.draft is None), path.name
                if a.draft is not None and a.draft.new is not None:
                    assert b.draft is not None and b.draft.new is not None
                    assert a.draft.new.digest == b.draft.new.digest, path.name
                    assert a.draft.new.snapshot == b.draft.new.snapshot, path.name
                    assert a.draft.new.rows == b.draft.new.rows, path.name
    finally:
        offload.close()


def test_a_submission_prepared_in_the_pool_is_stored(
    offloading: TestClient, factory: Any, maker: sessionmaker[Session]
) -> None:
    partner = factory.partner("Offload CSIRT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, partner)
    body = event("offloaded", attributes=[attr("198.51.100.77"), attr("x.example", type="domain")])
    r = offloading.post("/api/v1/events", json=body, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    assert offload._pool is not None  # noqa: SLF001 - prepared there, not in the thread
    with maker() as s:
        stored = s.scalar(select(Event).where(Event.uuid == body["Event"]["uuid"]))
        assert stored is not None
        assert (stored.attribute_count, stored.orgc_uuid) == (2, partner.uuid)


def test_a_bad_body_prepared_in_the_pool_is_a_422_naming_it(
    offloading: TestClient, factory: Any, maker: sessionmaker[Session]
) -> None:
    key = factory.key(Role.PARTNER, factory.partner("Careless CSIRT", type="sectoral-csirt"))
    bad = attr("198.51.100.9")
    bad["Sighting"] = [{"type": "7", "date_sighting": "1"}]
    body = event("bad sighting", attributes=[bad])
    r = offloading.post("/api/v1/events", json=body, headers={"Authorization": key})
    assert r.status_code == 422, r.text
    assert "Sighting" in r.json()["detail"]
    no_event = offloading.post(
        "/api/v1/events",
        content=b"[]",
        headers={"Authorization": key, "Content-Type": "application/json"},
    )
    assert no_event.status_code == 422 and no_event.json()["field"] == "Event", no_event.text
    with maker() as s:
        assert s.scalar(select(Event.id).where(Event.uuid == body["Event"]["uuid"])) is None


def test_a_pool_whose_process_died_loses_no_submission(
    offloading: TestClient, factory: Any, maker: sessionmaker[Session]
) -> None:
    key = factory.key(Role.PARTNER, factory.partner("Resilient CSIRT", type="sectoral-csirt"))
    first = event("first", attributes=[attr("198.51.100.10")])
    assert (
        offloading.post("/api/v1/events", json=first, headers={"Authorization": key}).status_code
        == 201
    )
    pool = offload._pool  # noqa: SLF001
    assert pool is not None
    for pid in list(pool._processes):  # noqa: SLF001 - kill what serves the pool
        os.kill(pid, signal.SIGKILL)
    second = event("second", attributes=[attr("198.51.100.11")])
    r = offloading.post("/api/v1/events", json=second, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    with maker() as s:
        assert s.scalar(select(Event.id).where(Event.uuid == second["Event"]["uuid"])) is not None
    third = event("third", attributes=[attr("198.51.100.12")])
    r = offloading.post("/api/v1/events", json=third, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    assert offload._pool is not None and offload._pool is not pool  # noqa: SLF001 - a new one


def test_a_policy_crosses_to_another_process_unchanged() -> None:
    policy = tlp.Policy(
        version="test-2",
        tier_ceilings={
            "core": tlp.Tlp.AMBER,
            "ecosystem": tlp.Tlp.GREEN,
            "connection": tlp.Tlp.CLEAR,
        },
        community_tiers=frozenset({"core"}),
        sources={ORGC["uuid"]: tlp.SourcePolicy(default_label=tlp.Tlp.GREEN)},
    )
    copy = pickle.loads(pickle.dumps(policy))
    assert copy.version == "test-2"
    assert dict(copy.tier_ceilings) == dict(policy.tier_ceilings)
    assert copy.community_tiers == policy.community_tiers
    assert copy.for_source(ORGC["uuid"]).default_label is tlp.Tlp.GREEN
    assert copy.default_source == policy.default_source
