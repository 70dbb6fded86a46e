"""Done-when of issue #20: an operator runs an exercise from a scenario file (YAML, committed
under tests/hub/exercises/scenarios/) with three partners, on the same running hub as real
traffic. Every channel of every key is harvested as its clients would: REST, ``/misp``
through PyMISP, TAXII through taxii2-client, notifications, and the bodies pushed to each
partner's MISP (the recording fake MISP). The injects reach exactly the participants'
exercise keys and exercise connections, marked; nothing of them reaches a real key (the
participants' own included), a real connection, or the partner that takes no part; the
after-action report shows who got what when; closing withdraws it and ends the keys."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymisp import PyMISP
from sqlalchemy import select
from taxii2client.v21 import as_pages

import tlp
from hub.db import session_scope
from hub.models import ExerciseInject
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr, event
from tests.hub.exercises.test_cli import hub  # noqa: F401 - the `hub` CLI fixture
from tests.hub.exercises.test_isolation import _ok
from tests.hub.exercises.test_push import connect, everything, pushed
from tests.hub.leak_harvest import FakeMisp
from tests.hub.taxii.conftest import server_url, taxii_server  # noqa: F401 - fixture

SCENARIO = Path(__file__).parent / "scenarios" / "crisis-day.yaml"
INJECTS = {
    "5e0e6f0a-3c55-4f5e-9d11-2b3c4d5e6f01": ["203.0.113.21"],
    "5e0e6f0a-3c55-4f5e-9d11-2b3c4d5e6f02": ["203.0.113.22", "pay-now.ransom.example"],
}
PARTICIPANTS = ["Z-CERT", "IBD", "Water ISAC"]
NET = {"ip_prefixes": ["203.0.113.0/24", "198.51.100.0/24"]}
REAL_IP = "198.51.100.50"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"connections_allow_loopback": True, "notify_interval_seconds": 0}
    )


@pytest.fixture
def fake() -> Iterator[FakeMisp]:
    found = FakeMisp()
    yield found
    found.close()


def harvest(client: Any, url: str, key: str) -> dict[str, Any]:
    """What one key gets on each channel: the event uuids and the raw text."""
    h = {"Authorization": key}
    out: dict[str, Any] = {}
    listed = _ok(client.get("/api/v1/events?limit=200", headers=h))["items"]
    docs = [_ok(client.get(f"/api/v1/events/{e['uuid']}", headers=h)) for e in listed]
    out["rest"] = ({e["uuid"] for e in listed}, json.dumps([listed, docs]))
    misp = PyMISP(url + "/misp/", key, ssl=False, timeout=30)
    index = misp.search_index(minimal=True)
    events = [misp.get_event(e["uuid"], pythonify=False) for e in index]
    out["misp"] = ({e["uuid"] for e in index}, json.dumps([index, events]))
    objects: list[dict[str, Any]] = []
    for coll in taxii_server(url, key).api_roots[0].collections:
        for envelope in as_pages(coll.get_objects, per_request=200):
            objects += envelope.get("objects", [])
    stix = [o for o in objects if o["id"] not in tlp.KNOWN_MARKING_IDS]
    out["taxii"] = (stix, json.dumps(objects))
    notes = []
    for via in ("", "?via=me"):
        notes += _ok(client.get(f"/api/v1/notifications{via}", headers=h))["items"]
    out["notifications"] = (notes, json.dumps(notes))
    return out


def test_an_exercise_from_a_scenario_file_reaches_exactly_its_participants(
    hub,  # noqa: F811
    client,
    factory,
    auth,
    maker,
    settings,
    fake,
    server_url,  # noqa: F811
):
    people = {
        name: factory.partner(name, type="sectoral-csirt", constituency=NET)
        for name in PARTICIPANTS
    }
    outsider = factory.partner("Outsider ISP", constituency=NET)
    real = {name: factory.key(Role.PARTNER, p) for name, p in people.items()}
    real["Outsider ISP"] = factory.key(Role.PARTNER, outsider)
    drain = lambda: run_due(maker, Runtime(settings=settings, policy=tlp.DEFAULT_POLICY))  # noqa: E731

    eid = hub("exercise", "load", str(SCENARIO)).output.strip()
    ex = _ok(client.get(f"/api/v1/admin/exercises/{eid}", headers=auth))
    assert ex["match_real_constituencies"] is True
    assert sorted(ex["participants"]) == sorted(p.uuid for p in people.values())
    exercise = {name: hub("exercise", "key", eid, name).output.strip() for name in PARTICIPANTS}
    # every partner's MISP gets pushes: each participant an exercise connection as well as
    # its real one, the outsider a real one
    for name, p in people.items():
        slug = name.lower().replace(" ", "-")
        _ok(connect(client, auth, fake, f"{slug}-drill", p.uuid, exercise=eid), 201)
        _ok(connect(client, auth, fake, f"{slug}-real", p.uuid), 201)
    _ok(connect(client, auth, fake, "outsider-real", outsider.uuid), 201)

    # real traffic on the same hub, before and during the exercise
    before = event("Real phishing wave", attributes=[attr(REAL_IP)], distribution=2)
    _ok(client.post("/api/v1/events", json=before, headers=auth), 201)
    assert hub("exercise", "send-due").output.strip() == "1"
    assert hub("exercise", "inject", eid, "--id", _inject_id(maker, "Ransom note")).output.strip()
    during = event("Real DDoS", attributes=[attr("198.51.100.51")], distribution=2)
    _ok(client.post("/api/v1/events", json=during, headers=auth), 201)
    drain()
    real_uuids = {before["Event"]["uuid"], during["Event"]["uuid"]}

    # the marks, not the word a real notification's `"exercise": null` field spells
    needles = [eid, "EXERCISE: ", "cwn:exercise", "OEFENING"]
    for uuid, values in INJECTS.items():
        needles += [uuid, *values]
    for name, key in exercise.items():
        got = harvest(client, server_url, key)
        assert got["rest"][0] == set(INJECTS), name
        assert got["misp"][0] == set(INJECTS), name
        for uuid in INJECTS:
            doc = _ok(client.get(f"/api/v1/events/{uuid}", headers={"Authorization": key}))
            assert doc["Event"]["info"].startswith("EXERCISE: ")
            assert f'cwn:exercise="{eid}"' in [t["name"] for t in doc["Event"]["Tag"]]
        stix, text = got["taxii"]
        assert stix and all(o.get("x_cwn_exercise") == eid for o in stix), name
        assert all(v in text for values in INJECTS.values() for v in values), name
        notes, text = got["notifications"]
        assert notes and all(n.get("exercise") == eid for n in notes), name
        assert "203.0.113.2" in text
        for channel, (_, text) in got.items():
            for needle in (*real_uuids, REAL_IP, "Real phishing", "Real DDoS"):
                assert needle not in text, (name, channel, needle)
    for name, key in real.items():
        got = harvest(client, server_url, key)
        assert got["rest"][0] == real_uuids == got["misp"][0], name
        for channel, (_, text) in got.items():
            for needle in needles:
                assert needle not in text, (name, channel, needle)
    # push bodies: the exercise connections got the injects, marked; real ones real traffic
    for name in PARTICIPANTS:
        slug = name.lower().replace(" ", "-")
        bodies = pushed(fake, f"{slug}-drill")
        assert {b["uuid"] for b in bodies} == set(INJECTS), name
        assert all(b["info"].startswith("EXERCISE: ") for b in bodies)
        assert all(f'cwn:exercise="{eid}"' in [t["name"] for t in b["Tag"]] for b in bodies)
        assert not any(u in everything(fake, f"{slug}-drill") for u in real_uuids)
    for prefix in [f"{n.lower().replace(' ', '-')}-real" for n in PARTICIPANTS] + ["outsider-real"]:
        assert {b["uuid"] for b in pushed(fake, prefix)} == real_uuids, prefix
        text = everything(fake, prefix)
        assert not [n for n in needles if n in text], prefix

    # the after-action report: who got what when, all three, nobody else
    report = json.loads(hub("exercise", "report", eid).output)
    assert len(report["lines"]) == 6 and report["not_received"] == []
    assert {x["partner_name"] for x in report["lines"]} == set(PARTICIPANTS)
    for line in report["lines"]:
        assert line["status"] in ("received", "late") and line["first_receipt_at"], line
        assert line["first_receipt_channel"] in ("misp-sync", "rest", "taxii"), line
    csv = hub("exercise", "report", eid, "--csv").output
    assert len(csv.splitlines()) == 7 and "Outsider" not in csv

    # closing: the withdrawal goes out through the exercise connections, the keys end
    fake.reset()
    assert "2 item(s) withdrawn" in hub("exercise", "close", eid).output
    drain()
    for name in PARTICIPANTS:
        slug = name.lower().replace(" ", "-")
        gone = pushed(fake, f"{slug}-drill")
        assert {b["uuid"] for b in gone} == set(INJECTS)
        assert all(a.get("deleted") for b in gone for a in b.get("Attribute") or [])
        assert fake.of(f"{slug}-real") == [] or not any(
            u in everything(fake, f"{slug}-real") for u in INJECTS
        )
        r = client.get("/api/v1/events", headers={"Authorization": exercise[name]})
        assert r.status_code == 401
    assert not any(u in everything(fake, "outsider-real") for u in INJECTS)


def _inject_id(maker: Any, name: str) -> str:
    """The number of a loaded inject (what an operator reads from ``hub exercise``'s list)."""
    with session_scope(maker) as session:
        return str(
            session.scalars(select(ExerciseInject.id).where(ExerciseInject.name == name)).one()
        )
