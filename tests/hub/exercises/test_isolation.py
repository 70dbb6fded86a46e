"""The differential test of issue #20: during an exercise with participants P and a
non-participant N, every channel of every key is harvested (REST list/get, ``/misp``
index/view/HEAD/restSearch of events and attributes/filterEventIdsForPush, TAXII
collections/objects/manifest, notifications). No exercise marker, uuid or value reaches N
or a real key (P's own real key included); every exercise item reaches P's exercise keys,
marked; real traffic never reaches an exercise key; a push-back by P's exercise key stays in
the exercise; after closing, P's views hold none of it live; the after-action report's
receipt times are the audit log's."""

from __future__ import annotations

import base64
import json
import uuid as uuid_mod
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

import tlp
from hub.db import session_scope
from hub.models import ApiKey, Attribute, AuditEntry, Event
from hub.runtime import Runtime
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr
from tests.builders import event as wrapped

TAXII = "application/taxii+json;version=2.1"
INJECT_IP = "203.0.113.7"
PUSHBACK_IP = "203.0.113.99"
REAL_IP = "198.51.100.77"
NET = {"ip_prefixes": ["203.0.113.0/24", "198.51.100.0/24"]}


def event(info: str, **kw: Any) -> dict[str, Any]:
    """A bare MISP event (the builder wraps it in ``{"Event": …}``)."""
    return wrapped(info, **kw)["Event"]


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200,)), (r.request.method, str(r.request.url), r.text)
    return r.json() if r.content else None


MISSING = str(uuid_mod.uuid4())  # a uuid nothing has: what "missing" answers look like


def harvest(client: Any, key: str, probes: list[str], audit_size: int = 0) -> list[tuple[str, str]]:
    """(request, response text) of every channel the key has. ``probes`` are uuids asked
    for by name (as a client that learnt them elsewhere would): the caller's own words are
    blanked out of the answers to them, and an answer about a probe the key may not see
    must be exactly the answer about a uuid nothing has."""
    h = {"Authorization": key}
    out: list[tuple[str, str]] = []

    def text(r: Any, *asked: str) -> str:
        headers = {k: v for k, v in r.headers.items() if k.lower() not in ("x-request-id", "date")}
        found = r.text + repr(sorted(headers.items()))
        for uuid in asked:
            found = found.replace(uuid, "<asked>")
        return found

    def get(url: str, **extra: str) -> Any:
        r = client.get(url, headers={**h, **extra})
        out.append((f"GET {url}", text(r)))
        return r

    def post(url: str, body: Any, *asked: str) -> Any:
        r = client.post(url, json=body, headers=h)
        out.append((f"POST {url}", text(r, *asked)))
        return r

    listed = [e["uuid"] for e in _ok(get("/api/v1/events?limit=200"))["items"]]
    get("/api/v1/events?tag=cwn:exercise&limit=200")
    for uuid in listed:
        get(f"/api/v1/events/{uuid}")
        get(f"/misp/events/view/{uuid}")
    for url in ("/api/v1/events/{}", "/misp/events/view/{}"):
        missing = client.get(url.format(MISSING), headers=h)
        for uuid in probes:
            r = client.get(url.format(uuid), headers=h)
            out.append((f"GET {url.format(uuid)}", text(r, uuid)))
            if uuid not in listed:
                assert (r.status_code, text(r, uuid)) == (
                    missing.status_code,
                    text(missing, MISSING),
                ), f"{url.format(uuid)} is not answered as a missing one"
    for uuid in probes:
        r = client.head(f"/misp/events/view/{uuid}", headers=h)
        out.append((f"HEAD {uuid}", str(r.status_code)))
    post("/misp/events/index", {})
    post("/misp/events/restSearch", {})
    post("/misp/events/restSearch", {"tags": ["cwn:exercise"]})
    post("/misp/attributes/restSearch", {})
    post("/misp/attributes/restSearch", {"value": INJECT_IP})
    offer = [{"Event": {"uuid": u, "timestamp": "1"}} for u in [*probes, MISSING]]
    wanted = post("/misp/events/filterEventIdsForPush", offer, *probes).json()
    assert MISSING in wanted and all(u in wanted for u in probes if u not in listed)
    r = get("/taxii2/cwn/collections/", Accept=TAXII)
    for coll in r.json().get("collections") or []:
        get(f"/taxii2/cwn/collections/{coll['id']}/objects/?limit=500", Accept=TAXII)
        get(f"/taxii2/cwn/collections/{coll['id']}/manifest/?limit=500", Accept=TAXII)
    get("/api/v1/notifications")
    get("/api/v1/notifications?via=me")
    get("/api/v1/me/releases?limit=200")  # what the organisation received, in the key's scope
    for seq in range(1, audit_size + 1):  # the audit entries about the key's organisation
        r = client.get(f"/api/v1/audit/entries/{seq}", headers=h)
        leaf = base64.b64decode(r.json()["leaf"]).decode() if r.status_code == 200 else ""
        if '"action":"submit.refused"' in leaf:  # the record of the key's own clash: its
            leaf = leaf.replace(json.loads(leaf)["object_ref"].removeprefix("event:"), "<sent>")
        out.append((f"GET /api/v1/audit/entries/{seq}", leaf))
    return out


def leaks(texts: list[tuple[str, str]], needles: list[str]) -> list[str]:
    return [
        f"{request}: {needle!r} in {text[:1500]}"
        for request, text in texts
        for needle in needles
        if needle.lower() in text.lower()
    ]


def live_attributes(client: Any, key: str, uuid: str) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/events/{uuid}", headers={"Authorization": key})
    if r.status_code == 404:
        return []
    doc = _ok(r)["Event"]
    found = list(doc.get("Attribute") or [])
    for obj in doc.get("Object") or []:
        found += obj.get("Attribute") or []
    return [a for a in found if not a.get("deleted")]


def audit_size(maker: Any) -> int:
    with session_scope(maker) as session:
        return int(session.scalar(select(func.max(AuditEntry.seq))) or 0)


@pytest.fixture
def drain(maker: Any, settings: Any) -> Any:
    context = Runtime(
        settings=settings.model_copy(update={"notify_interval_seconds": 0}),
        policy=tlp.DEFAULT_POLICY,
    )
    return lambda: run_due(maker, context)


def test_exercise_isolated_on_every_channel(client, factory, auth, maker, drain):
    p1 = factory.partner("P1 CSIRT", type="sectoral-csirt", constituency=NET)
    p2 = factory.partner("P2 ISP", constituency=NET)
    n = factory.partner("N ISP", constituency=NET)
    p3 = factory.partner("P3 Water", constituency=NET)  # takes part, never gets a key
    real = {
        "P1 real": factory.key(Role.PARTNER, p1),
        "P2 real": factory.key(Role.PARTNER, p2),
        "N": factory.key(Role.PARTNER, n),
    }
    # real traffic first, from the hub and from P1's real key
    hub_real = event("Real incident", attributes=[attr(REAL_IP)])
    _ok(client.post("/api/v1/events", json={"Event": hub_real}, headers=auth), 201)
    p1_real = event("P1 real sighting", attributes=[attr("198.51.100.78")])
    _ok(
        client.post("/api/v1/events", json=p1_real, headers={"Authorization": real["P1 real"]}), 201
    )

    ex = _ok(
        client.post(
            "/api/v1/admin/exercises",
            json={
                "name": "Ransomware at hospital X",
                "participants": [p1.uuid, p2.name, p3.uuid],
                # notified through their (real) constituencies: the notification channel
                # carries exercise traffic too
                "match_real_constituencies": True,
            },
            headers=auth,
        ),
        201,
    )
    eid = ex["uuid"]
    exercise = {
        who.name: _ok(
            client.post(
                f"/api/v1/admin/exercises/{eid}/keys", json={"partner": who.uuid}, headers=auth
            ),
            201,
        )["key"]
        for who in (p1, p2)
    }
    # a non-participant gets no exercise key
    r = client.post(f"/api/v1/admin/exercises/{eid}/keys", json={"partner": n.uuid}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "partner"

    inject_attr = attr(INJECT_IP)
    inject = _ok(
        client.post(
            f"/api/v1/admin/exercises/{eid}/injects",
            json={"name": "IOC drop", "event": event("Ransomware IOC", attributes=[inject_attr])},
            headers=auth,
        ),
        201,
    )
    i_uuid = inject["event_uuid"]
    # P1 reads the inject, then its MISP pushes an item of its own: what it passed on
    _ok(client.get(f"/api/v1/events/{i_uuid}", headers={"Authorization": exercise["P1 CSIRT"]}))
    # P1's MISP pushes an item of its own with its exercise key: it stays in the exercise
    pushback_attr = attr(PUSHBACK_IP)
    pushback = event("Seen at our hospital", attributes=[pushback_attr])
    _ok(
        client.post(
            "/misp/events/add/metadata:1",
            json={"Event": pushback},
            headers={"Authorization": exercise["P1 CSIRT"]},
        )
    )
    # crossing scopes is refused naming nothing, both ways
    for key, uuid in (
        (exercise["P1 CSIRT"], p1_real["uuid"]),
        (real["P1 real"], pushback["uuid"]),
    ):
        body = event("clash", uuid=uuid, attributes=[attr("192.0.2.1")])
        r = client.post("/api/v1/events", json=body, headers={"Authorization": key})
        assert r.status_code == 403, r.text
        assert "exercise" not in r.text.lower() and "P1 real" not in r.text
    # P2 answers the inject with a sighting (feedback)
    _ok(
        client.post(
            "/misp/sightings/add",
            json={"uuid": inject_attr["uuid"], "type": "0"},
            headers={"Authorization": exercise["P2 ISP"]},
        )
    )
    drain()
    # P2 acknowledges the exercise notification of the inject (feedback)
    p2_key = {"Authorization": exercise["P2 ISP"]}
    tickets = _ok(client.get("/api/v1/notifications?via=me", headers=p2_key))["items"]
    [ticket] = [t["ticket"] for t in tickets if t.get("case") == i_uuid]
    _ok(
        client.post(
            f"/api/v1/notifications/{ticket}/feedback", json={"kind": "ack"}, headers=p2_key
        ),
        200,
        201,
    )

    exercise_needles = [
        eid,
        i_uuid,
        pushback["uuid"],
        inject_attr["uuid"],
        pushback_attr["uuid"],
        INJECT_IP,
        PUSHBACK_IP,
        "cwn:exercise",
        "EXERCISE: ",  # the title's mark (a notification's "exercise": null field is not one)
        "OEFENING",
        "Ransomware IOC",
        "Seen at our hospital",
    ]
    probes = [i_uuid, pushback["uuid"], hub_real["uuid"], p1_real["uuid"]]
    for name, key in real.items():
        found = leaks(harvest(client, key, probes, audit_size(maker)), exercise_needles)
        assert not found, f"exercise traffic reached the real key of {name}:\n" + "\n".join(
            found[:20]
        )
    real_needles = [hub_real["uuid"], p1_real["uuid"], REAL_IP, "198.51.100.78", "Real incident"]
    for name, key in exercise.items():
        texts = harvest(client, key, probes, audit_size(maker))
        found = leaks(texts, real_needles)
        assert not found, f"real traffic reached the exercise key of {name}:\n" + "\n".join(
            found[:20]
        )
        # every exercise item reaches every participant, marked on every channel
        for uuid in (i_uuid, pushback["uuid"]):
            doc = _ok(client.get(f"/api/v1/events/{uuid}", headers={"Authorization": key}))["Event"]
            assert doc["info"].startswith("EXERCISE: ")
            assert f'cwn:exercise="{eid}"' in [t["name"] for t in doc.get("Tag") or []]
            assert live_attributes(client, key, uuid)
            view = _ok(client.get(f"/misp/events/view/{uuid}", headers={"Authorization": key}))
            assert view["Event"]["info"].startswith("EXERCISE: ")
        index = _ok(client.post("/misp/events/index", json={}, headers={"Authorization": key}))
        assert {e["uuid"] for e in index} == {i_uuid, pushback["uuid"]}
        objects = _ok(
            client.get(
                "/taxii2/cwn/collections/",
                headers={"Authorization": key, "Accept": TAXII},
            )
        )["collections"]
        stix = []
        for coll in objects:
            body = client.get(
                f"/taxii2/cwn/collections/{coll['id']}/objects/?limit=500",
                headers={"Authorization": key, "Accept": TAXII},
            ).json()
            stix += body.get("objects") or []
        assert stix, "no STIX object of the exercise reached the participant"
        # every object but the standard TLP marking definitions (fixed, shared by all)
        stix = [o for o in stix if o["id"] not in tlp.KNOWN_MARKING_IDS]
        assert stix and all(o.get("x_cwn_exercise") == eid for o in stix)
        unlabelled = [
            o
            for o in stix
            if o["type"] != "marking-definition" and "exercise" not in (o.get("labels") or [])
        ]
        assert not unlabelled, unlabelled[:2]
    # the real key of a participant still gets real traffic (isolation is not blackout)
    assert any(
        e["uuid"] == hub_real["uuid"]
        for e in _ok(client.get("/api/v1/events", headers={"Authorization": real["P2 real"]}))[
            "items"
        ]
    )

    # the after-action report's receipts are the audit log's first deliveries
    report = _ok(client.get(f"/api/v1/admin/exercises/{eid}/report", headers=auth))
    by = {(x["event_uuid"], x["partner_uuid"]): x for x in report["lines"]}
    with session_scope(maker) as session:
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.actor.like(f"%, exercise {eid})"))
            .order_by(AuditEntry.seq)
        ).all()
        first: dict[tuple[str, str], datetime] = {}
        for entry in entries:
            for item in (entry.body.get("details") or {}).get("releases") or []:
                if item[2]:
                    first.setdefault((item[0], entry.recipient_uuid), entry.recorded_at)
            assert (entry.body.get("details") or {}).get("exercise") in (None, eid)
    for partner in (p1, p2):
        line = by[(i_uuid, partner.uuid)]
        assert line["status"] in ("received", "late")
        assert datetime.fromisoformat(line["first_receipt_at"]) == first[(i_uuid, partner.uuid)]
    assert by[(pushback["uuid"], p1.uuid)]["status"] == "source"
    assert by[(i_uuid, p2.uuid)]["first_feedback_at"] is not None
    assert by[(i_uuid, p1.uuid)]["first_feedback_at"] is None
    # acknowledgement: the time of the audit log's notify.feedback entry
    with session_scope(maker) as session:
        [acked] = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "notify.feedback",
                AuditEntry.object_ref == f"notification:{ticket}",
            )
        ).all()
        ack_at, ack_by = acked.recorded_at, acked.recipient_uuid
    assert ack_by == p2.uuid
    line = by[(i_uuid, p2.uuid)]
    assert datetime.fromisoformat(line["first_ack_at"]) == ack_at and line["ack_kind"] == "ack"
    sent = datetime.fromisoformat(line["sent_at"])
    assert line["ack_delay_seconds"] == (ack_at - sent).total_seconds()
    assert by[(i_uuid, p1.uuid)]["first_ack_at"] is None
    # what they passed on: P2's sighting, P1's own item after it had read the inject
    assert line["passed_on_sightings"] == 1 and line["passed_on_items"] == []
    assert by[(i_uuid, p1.uuid)]["passed_on_items"] == [pushback["uuid"]]
    # who did not receive, and why: P3 never had an exercise key nor connection
    missed = by[(i_uuid, p3.uuid)]
    assert missed["status"] == "not-received" and missed["first_receipt_at"] is None
    assert [w.split(":")[0] for w in missed["why"]] == ["no-key"]
    assert missed in report["not_received"]
    assert all(by[(i_uuid, p.uuid)]["why"] == [] for p in (p1, p2))
    assert n.uuid not in {x["partner_uuid"] for x in report["lines"]}
    csv = client.get(f"/api/v1/admin/exercises/{eid}/report?format=csv", headers=auth)
    assert csv.status_code == 200 and csv.text.startswith("event_uuid,")
    header = csv.text.splitlines()[0].split(",")
    assert {"first_ack_at", "ack_delay_seconds", "passed_on_items", "why"} <= set(header)
    assert i_uuid in csv.text and "no-key: " in csv.text

    # closing freezes the exercise, withdraws its items (their deletions go to whoever had
    # them: test_push) and revokes its exercise keys, audited
    _ok(client.post(f"/api/v1/admin/exercises/{eid}/close", json={}, headers=auth))
    drain()
    with session_scope(maker) as session:
        revoked = session.scalars(
            select(ApiKey.uuid).where(ApiKey.exercise_id == eid, ApiKey.revoked_at.is_not(None))
        ).all()
        audited = session.scalars(
            select(AuditEntry.object_ref).where(AuditEntry.action == "key.revoke")
        ).all()
        live = session.scalars(
            select(Attribute.uuid)
            .join(Event, Event.id == Attribute.event_id)
            .where(Event.exercise_id == eid, Attribute.deleted.is_(False))
        ).all()
    assert len(revoked) == 2 and sorted(audited) == sorted(f"key:{u}" for u in revoked)
    assert live == []
    # a closed exercise's key gets the 401 of any key that does not work
    unknown = {"Authorization": "x" * 40}
    for key in exercise.values():
        for url in ("/api/v1/events", "/api/v1/notifications", f"/api/v1/events/{i_uuid}"):
            r = client.get(url, headers={"Authorization": key})
            other = client.get(url, headers=unknown)
            assert (r.status_code, r.json()["error"], r.json()["detail"]) == (
                401,
                other.json()["error"],
                other.json()["detail"],
            ), (url, r.text)
        r = client.post("/misp/events/index", json={}, headers={"Authorization": key})
        assert (
            r.status_code
            == 401
            == client.post("/misp/events/index", json={}, headers=unknown).status_code
        )
    late = event("after the end", attributes=[attr("192.0.2.55")])
    r = client.post("/api/v1/events", json=late, headers={"Authorization": exercise["P1 CSIRT"]})
    assert r.status_code == 401, r.text
    # and still nothing of it reaches anyone else (the withdrawals included)
    for name, key in real.items():
        found = leaks(harvest(client, key, probes, audit_size(maker)), exercise_needles)
        assert not found, f"after closing, exercise traffic reached {name}:\n" + "\n".join(
            found[:20]
        )
    # the audit log keeps it
    report = _ok(client.get(f"/api/v1/admin/exercises/{eid}/report", headers=auth))
    assert report["status"] == "closed" and any(x["event_uuid"] == i_uuid for x in report["lines"])


def test_exercise_key_needs_an_open_exercise_and_a_participant(client, factory, auth):
    p = factory.partner("P")
    ex = _ok(client.post("/api/v1/admin/exercises", json={"name": "x"}, headers=auth), 201)
    r = client.post(
        f"/api/v1/admin/exercises/{ex['uuid']}/keys", json={"partner": p.uuid}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "partner"
    _ok(
        client.post(
            f"/api/v1/admin/exercises/{ex['uuid']}/participants",
            json={"partner": p.uuid},
            headers=auth,
        )
    )
    _ok(client.post(f"/api/v1/admin/exercises/{ex['uuid']}/close", json={}, headers=auth))
    r = client.post(
        f"/api/v1/admin/exercises/{ex['uuid']}/keys", json={"partner": p.uuid}, headers=auth
    )
    assert r.status_code == 409
    assert (
        client.get(f"/api/v1/admin/exercises/{uuid_mod.uuid4()}", headers=auth).status_code == 404
    )
