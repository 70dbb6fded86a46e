"""Push connections in exercise mode (issue #20): a participant's misp-push connection made
for an exercise pushes that exercise's items (marked) and nothing else; the same
participant's real connection and a non-participant's never get an exercise item; closing
the exercise pushes the withdrawal (deletions) through the exercise connection only. The
remote MISPs are the recording fake MISP of the differential leak test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

import tlp
from hub.db import session_scope
from hub.models import AuditEntry, Connection
from hub.runtime import Runtime
from hub.settings import Settings
from hub.worker import run_due
from tests.builders import attr
from tests.hub.exercises.test_isolation import _ok, event
from tests.hub.leak_harvest import FakeMisp

INJECT_IP = "203.0.113.7"
REAL_IP = "198.51.100.77"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the fake MISP listens on loopback: allowed explicitly, as the connection tests do
    return settings.model_copy(
        update={"connections_allow_loopback": True, "notify_interval_seconds": 0}
    )


@pytest.fixture
def fake() -> Iterator[FakeMisp]:
    found = FakeMisp()
    yield found
    found.close()


@pytest.fixture
def drain(maker: Any, settings: Settings) -> Any:
    context = Runtime(settings=settings, policy=tlp.DEFAULT_POLICY)
    return lambda: run_due(maker, context)


def connect(client: Any, auth: Any, fake: FakeMisp, name: str, partner: str, **extra: Any) -> Any:
    body = {
        "name": name,
        "kind": "misp-push",
        "url": f"{fake.url}/{name}/",
        "partner": partner,
        "credentials": {"api_key": "k" * 40},
        "interval_seconds": 60,
        **extra,
    }
    return client.post("/api/v1/admin/connections", json=body, headers=auth)


def pushed(fake: FakeMisp, prefix: str) -> list[dict[str, Any]]:
    """The events a connection's fake MISP received (add and edit bodies), in order."""
    out = []
    for method, path, body in fake.of(prefix):
        if method == "POST" and path.startswith(("/events/add", "/events/edit")):
            doc = json.loads(body)
            out.append(doc.get("Event", doc))
    return out


def everything(fake: FakeMisp, prefix: str) -> str:
    return "\n".join(f"{m} {p} {b.decode('utf-8', 'replace')}" for m, p, b in fake.of(prefix))


def test_an_exercise_push_connection_carries_its_exercise_only(
    client, factory, auth, maker, fake, drain
):
    p = factory.partner("P CSIRT", type="sectoral-csirt")
    other = factory.partner("Q ISP")  # a participant without an exercise connection
    n = factory.partner("N ISP")
    ex = _ok(
        client.post(
            "/api/v1/admin/exercises",
            json={"name": "Drill", "participants": [p.uuid, other.uuid]},
            headers=auth,
        ),
        201,
    )
    eid = ex["uuid"]
    second = _ok(
        client.post(
            "/api/v1/admin/exercises",
            json={"name": "Other", "participants": [p.uuid]},
            headers=auth,
        ),
        201,
    )["uuid"]
    _ok(connect(client, auth, fake, "p-real", p.uuid), 201)
    made = _ok(connect(client, auth, fake, "p-drill", p.uuid, exercise=eid), 201)
    assert made["exercise"] == eid
    _ok(connect(client, auth, fake, "p-other", p.uuid, exercise=second), 201)
    _ok(connect(client, auth, fake, "q-real", other.uuid), 201)
    _ok(connect(client, auth, fake, "n-real", n.uuid), 201)
    # a non-participant's connection cannot be put in the exercise's mode, nor a pull
    r = connect(client, auth, fake, "n-drill", n.uuid, exercise=eid)
    assert r.status_code == 422 and r.json()["field"] == "exercise", r.text
    r = connect(client, auth, fake, "p-pull", p.uuid, exercise=eid, kind="misp-pull")
    assert r.status_code == 422 and r.json()["field"] == "exercise", r.text

    real = event("Real incident", attributes=[attr(REAL_IP)], tlp="green", distribution=3)
    _ok(client.post("/api/v1/events", json={"Event": real}, headers=auth), 201)
    inject_attr = attr(INJECT_IP)
    inject = _ok(
        client.post(
            f"/api/v1/admin/exercises/{eid}/injects",
            json={
                "name": "IOC drop",
                "event": event(
                    "Ransomware IOC", attributes=[inject_attr], tlp="green", distribution=3
                ),
            },
            headers=auth,
        ),
        201,
    )
    i_uuid = inject["event_uuid"]
    drain()

    # the exercise connection: the inject alone, marked
    [doc] = pushed(fake, "p-drill")
    assert doc["uuid"] == i_uuid and doc["info"].startswith("EXERCISE: ")
    assert f'cwn:exercise="{eid}"' in [t["name"] for t in doc.get("Tag") or []]
    assert REAL_IP not in everything(fake, "p-drill") and real["uuid"] not in everything(
        fake, "p-drill"
    )
    # real connections (the participants' own included) and another exercise's: none of it
    for prefix in ("p-real", "q-real", "n-real"):
        assert [d["uuid"] for d in pushed(fake, prefix)] == [real["uuid"]], prefix
    for prefix in ("p-real", "q-real", "n-real", "p-other"):
        text = everything(fake, prefix)
        for needle in (i_uuid, INJECT_IP, eid, "EXERCISE", inject_attr["uuid"]):
            assert needle not in text, (prefix, needle)
    assert pushed(fake, "p-other") == []

    # the push is a delivery of the exercise: audited under an exercise actor
    with session_scope(maker) as session:
        conn = session.scalar(select(Connection).where(Connection.name == "p-drill"))
        assert conn is not None
        entries = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "release", AuditEntry.actor.like(f"connection:{conn.uuid}%")
            )
        ).all()
    assert entries and all(e.actor.endswith(f", exercise {eid})") for e in entries)
    report = _ok(client.get(f"/api/v1/admin/exercises/{eid}/report", headers=auth))
    line = next(x for x in report["lines"] if x["partner_uuid"] == p.uuid)
    assert line["status"] == "received" and line["first_receipt_channel"] == "misp-sync"

    # closing pushes the withdrawal through the exercise connection, and nowhere else
    fake.reset()
    _ok(client.post(f"/api/v1/admin/exercises/{eid}/close", json={}, headers=auth))
    drain()
    [gone] = pushed(fake, "p-drill")
    assert gone["uuid"] == i_uuid
    assert all(a.get("deleted") for a in gone.get("Attribute") or []), gone
    for prefix in ("p-real", "q-real", "n-real", "p-other"):
        assert i_uuid not in everything(fake, prefix), prefix


def test_the_report_says_why_a_participant_did_not_receive(
    client, factory, auth, maker, fake, drain
):
    """Each participant that missed the inject, and the reason the hub recorded: a TLP
    refusal (a connection-tier partner and an AMBER inject, decided for its exercise
    connection), a connection that failed (nobody listens at its URL), no exercise key nor
    connection, a key never used, and one that was used but did not fetch it."""
    from tests.hub.connections.conftest import free_port

    names = ["Q Green", "S Down", "T None", "U Idle", "V Busy", "W Pull"]
    green = ("Q Green", "W Pull")
    people = {n: factory.partner(n, tier="connection" if n in green else "core") for n in names}
    body = {"name": "Drill", "participants": [p.uuid for p in people.values()]}
    eid = _ok(client.post("/api/v1/admin/exercises", json=body, headers=auth), 201)["uuid"]
    _ok(connect(client, auth, fake, "q-drill", people["Q Green"].uuid, exercise=eid), 201)
    down = {
        "name": "s-drill",
        "kind": "misp-push",
        "url": f"http://127.0.0.1:{free_port()}/",
        "partner": people["S Down"].uuid,
        "credentials": {"api_key": "k" * 40},
        "exercise": eid,
    }
    _ok(client.post("/api/v1/admin/connections", json=down, headers=auth), 201)
    keys = {
        n: _ok(
            client.post(
                f"/api/v1/admin/exercises/{eid}/keys",
                json={"partner": people[n].uuid},
                headers=auth,
            ),
            201,
        )["key"]
        for n in ("U Idle", "V Busy", "W Pull")
    }
    inject = {
        "name": "IOC",
        "event": event("IOC", attributes=[attr(INJECT_IP)], tlp="amber", distribution=3),
    }
    i_uuid = _ok(
        client.post(f"/api/v1/admin/exercises/{eid}/injects", json=inject, headers=auth), 201
    )["event_uuid"]
    # V's key is used (it reads its notifications) but never fetches the inject
    r = client.get("/api/v1/notifications", headers={"Authorization": keys["V Busy"]})
    assert r.status_code == 200
    # W (GREEN ceiling) pulls: the listing's SQL leaves the AMBER inject out, recording nothing
    r = client.get("/api/v1/events", headers={"Authorization": keys["W Pull"]})
    assert r.status_code == 200 and i_uuid not in r.text
    drain()
    report = _ok(client.get(f"/api/v1/admin/exercises/{eid}/report", headers=auth))
    why = {x["partner_name"]: x["why"] for x in report["lines"] if x["event_uuid"] == i_uuid}
    assert all(x["status"] == "not-received" for x in report["lines"]), report["lines"]
    assert [w.split(":")[0] for w in why["Q Green"]] == ["tlp-refused"], why
    assert "misp-sync" in why["Q Green"][0]
    assert why["S Down"] and all(w.startswith("connection-failed: s-drill") for w in why["S Down"])
    assert why["T None"] == ["no-key: no exercise key and no exercise push connection"]
    assert [w.split(":")[0] for w in why["U Idle"]] == ["key-unused"]
    assert [w.split(":")[0] for w in why["V Busy"]] == ["not-fetched"]
    [pulled] = why["W Pull"]  # a black-box attack found "not-fetched" said here
    assert pulled.startswith("tlp-refused: ") and pulled.endswith("(decided now)"), pulled
    csv = client.get(f"/api/v1/admin/exercises/{eid}/report?format=csv", headers=auth).text
    assert "tlp-refused: " in csv and "connection-failed: s-drill" in csv
