"""Actual coverage counts what the hub did for real, never an exercise (issue #20): a
participant that received, shared, acknowledged and had its exercise connection run, all in
an exercise, is not active in its cell, and the exercise's notifications are not in the
notification reach; the same acts for real traffic are counted."""

from __future__ import annotations

from typing import Any

from hub.audit import releases as release_index
from hub.db import session_scope
from hub.vocabulary import Role
from tests.builders import attr
from tests.hub.exercises.test_isolation import _ok, event
from tests.hub.exercises.test_push import connect, drain, fake, pushed, settings  # noqa: F401

IS = "information-sharing"
NET = {"ip_prefixes": ["203.0.113.0/24"]}
ZERO = {"received": 0, "shared": 0, "acknowledged": 0, "synced": 0, "any": 0}


def _acts(client: Any, key: str, ip: str) -> None:
    """Receive (REST), share (submit) and acknowledge every notification, with ``key``."""
    h = {"Authorization": key}
    for item in _ok(client.get("/api/v1/events", headers=h))["items"]:
        _ok(client.get(f"/api/v1/events/{item['uuid']}", headers=h))
    mine = event("seen here", attributes=[attr(ip)], distribution=3)
    _ok(client.post("/api/v1/events", json=mine, headers=h), 201)
    for via in ("", "?via=me"):
        for note in _ok(client.get(f"/api/v1/notifications{via}", headers=h))["items"]:
            r = client.post(
                f"/api/v1/notifications/{note['ticket']}/feedback", json={"kind": "ack"}, headers=h
            )
            assert r.status_code in (200, 201), r.text


def _cells(client: Any, auth: Any, maker: Any) -> dict[str, Any]:
    with session_scope(maker) as session:
        release_index.catch_up(session)  # the release index is up to date with the audit log
    body = _ok(client.get("/api/v1/admin/coverage/actual", headers=auth))
    cells = {c["sector"]: c["active"]["30"] for c in body["cells"] if c["function"] == IS}
    reach = {r["key"]: r["notifications"] for r in body["notification_reach_by_sector"]}
    return {"cells": cells, "reach": reach}


def test_exercise_traffic_is_not_coverage(client, factory, auth, maker, fake, drain):  # noqa: F811
    p = factory.partner("P CSIRT", sectors=["health"], functions=[IS], constituency=NET)
    ex = _ok(
        client.post(
            "/api/v1/admin/exercises",
            json={"name": "Drill", "participants": [p.uuid], "match_real_constituencies": True},
            headers=auth,
        ),
        201,
    )
    eid = ex["uuid"]
    key = _ok(
        client.post(f"/api/v1/admin/exercises/{eid}/keys", json={"partner": p.uuid}, headers=auth),
        201,
    )["key"]
    _ok(connect(client, auth, fake, "p-drill", p.uuid, exercise=eid), 201)
    body = {
        "name": "IOC",
        "event": event("IOC", attributes=[attr("203.0.113.7")], distribution=3),
    }
    _ok(client.post(f"/api/v1/admin/exercises/{eid}/injects", json=body, headers=auth), 201)
    drain()
    assert pushed(fake, "p-drill")  # the exercise connection ran and delivered
    _acts(client, key, "203.0.113.8")
    drain()
    found = _cells(client, auth, maker)
    assert found["cells"]["health"] == ZERO, found
    assert found["reach"].get("health", 0) == 0, found

    # the same acts in real traffic count
    real = factory.key(Role.PARTNER, p)
    hub_event = event("Real", attributes=[attr("203.0.113.9")], distribution=3)
    _ok(client.post("/api/v1/events", json=hub_event, headers=auth), 201)
    drain()
    _acts(client, real, "203.0.113.10")
    found = _cells(client, auth, maker)
    assert found["cells"]["health"] == {
        "received": 1,
        "shared": 1,
        "acknowledged": 1,
        "synced": 0,
        "any": 1,
    }, found
    assert found["reach"]["health"] >= 1, found
