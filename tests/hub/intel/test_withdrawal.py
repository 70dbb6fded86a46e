"""Operator withdrawals: a false-positive verdict on an attribute and the deletion of a whole
event are new versions with soft deletes, which retract downstream; bad requests change nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from hub.db import session_scope
from hub.intel.snapshots import current_state
from hub.models import AuditEntry, Event, EventVersion, Notification, StixObject
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.notifications.conftest import desk  # noqa: F401

FIXTURE = Path(__file__).parents[2] / "fixtures" / "misp" / "events" / "pymisp-existing_event.json"


def _verdict_url(event_uuid: str, attribute_uuid: str) -> str:
    return f"/api/v1/admin/events/{event_uuid}/attributes/{attribute_uuid}/verdict"


def _versions(maker: Any) -> int:
    with session_scope(maker, write=False) as session:
        return session.scalar(select(func.count()).select_from(EventVersion)) or 0


def _state(maker: Any, uuid: str) -> dict[str, Any]:
    with session_scope(maker, write=False) as session:
        return current_state(session, session.scalar(select(Event).where(Event.uuid == uuid)))


@pytest.fixture
def stored(factory, desk):  # noqa: F811
    """An event from a source, matched into a notification to the ISP for both addresses."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    fp = attr("10.2.0.2", to_ids=True, timestamp="1700000001")
    kept = attr("10.2.0.1", to_ids=True, timestamp="1700000001")
    ev = event("two IPs", attributes=[kept, fp], timestamp=1_700_000_001)
    desk.ingest(source, ev)
    desk.drain()
    return {"uuid": ev["Event"]["uuid"], "fp": fp, "kept": kept, "isp": isp, "source": source}


def test_false_positive_verdict_withdraws_and_retracts(client, auth, maker, desk, stored) -> None:  # noqa: F811
    uuid, fp = stored["uuid"], stored["fp"]
    r = client.post(
        _verdict_url(uuid, fp["uuid"]),
        json={"verdict": "false_positive", "reason": "sinkhole, not a C2"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "uuid": uuid,
        "status": "updated",
        "version": 2,
        "attribute": fp["uuid"],
        "knowledge_flagged": [],  # no knowledge product was built on it (tests/hub/knowledge)
    }
    state = _state(maker, uuid)
    flags = {a["uuid"]: bool(a.get("deleted")) for a in state["Attribute"]}
    assert flags == {fp["uuid"]: True, stored["kept"]["uuid"]: False}
    versions = client.get(f"/api/v1/admin/events/{uuid}/versions", headers=auth).json()["items"]
    assert [(v["version"], v["channel"]) for v in versions][-1] == (2, "admin-verdict")
    assert versions[-1]["source"] == stored["source"].uuid  # made on the source's behalf
    with session_scope(maker, write=False) as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "admin.verdict"))
        assert entry.body["details"]["reason"] == "sinkhole, not a C2"
        assert entry.body["details"]["attribute"] == fp["uuid"]
        revoked = set(
            session.scalars(select(StixObject.stix_id).where(StixObject.revoked.is_(True)))
        )
        assert f"indicator--{fp['uuid']}" in revoked
        assert not any(stored["kept"]["uuid"] in i for i in revoked)
    desk.drain()  # the notification job meets version 2
    with session_scope(maker, write=False) as session:
        note = session.scalar(select(Notification))
        assert note.status != "retracted" and "false positive" in note.correction
        assert fp["uuid"] in note.correction and stored["kept"]["uuid"] not in note.correction
    # The same verdict again: nothing left to withdraw, and nothing written.
    again = client.post(
        _verdict_url(uuid, fp["uuid"]),
        json={"verdict": "false_positive", "reason": "x"},
        headers=auth,
    )
    assert again.status_code == 409 and fp["uuid"] in again.json()["detail"]
    assert _versions(maker) == 2


def test_verdict_refuses_bad_requests_and_writes_nothing(
    client, auth, factory, maker, stored
) -> None:
    uuid, fp = stored["uuid"], stored["fp"]
    url = _verdict_url(uuid, fp["uuid"])
    body = {"verdict": "false_positive", "reason": "r"}
    assert client.post(url, json=body).status_code == 401
    partner = {"Authorization": factory.key(Role.PARTNER, stored["source"])}
    assert client.post(url, json=body, headers=partner).status_code == 403
    auditor = {"Authorization": factory.key(Role.AUDITOR)}
    assert client.post(url, json=body, headers=auditor).status_code == 403
    wrong = client.post(url, json={"verdict": "benign", "reason": "r"}, headers=auth)
    assert wrong.status_code == 422 and "verdict" in wrong.json()["field"]
    empty = client.post(url, json={"verdict": "false_positive", "reason": ""}, headers=auth)
    assert empty.status_code == 422 and "reason" in empty.json()["field"]
    other = attr("10.9.9.9")["uuid"]
    missing = client.post(_verdict_url(uuid, other), json=body, headers=auth)
    assert missing.status_code == 404 and other in missing.json()["detail"]
    nowhere = client.post(_verdict_url(other, fp["uuid"]), json=body, headers=auth)
    assert nowhere.status_code == 404
    assert _versions(maker) == 1
    assert not _state(maker, uuid)["Attribute"][1].get("deleted")


def test_deleting_an_event_withdraws_everything_and_keeps_the_trail(
    client,
    auth,
    factory,
    maker,
    desk,  # noqa: F811
) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    reader = factory.partner("Reader")
    raw = json.loads(FIXTURE.read_text())
    uuid = raw["uuid"]
    desk.ingest(source, raw)
    reader_key = {"Authorization": factory.key(Role.PARTNER, reader)}
    assert client.get(f"/api/v1/events/{uuid}", headers=reader_key).status_code == 200
    own = {a["uuid"] for a in raw["Attribute"]} | {o["uuid"] for o in raw["Object"]}
    asserted = {i for i, doc in _stix(maker) if "modified" in doc and i.split("--")[1] in own}
    assert len(asserted) > 40

    no_reason = client.delete(f"/api/v1/admin/events/{uuid}", headers=auth)
    assert no_reason.status_code == 422 and no_reason.json()["field"].endswith("reason")
    r = client.delete(
        f"/api/v1/admin/events/{uuid}", params={"reason": "posted by mistake"}, headers=auth
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    state = _state(maker, uuid)
    assert all(a["deleted"] for a in state["Attribute"])
    assert all(o["deleted"] for o in state["Object"])
    assert all(a["deleted"] for o in state["Object"] for a in o["Attribute"])
    assert client.get(f"/api/v1/events/{uuid}", headers=reader_key).status_code == 404
    left = _stix(maker)
    assert all(doc.get("revoked") is True for _i, doc in left)  # nothing live is served
    assert {i for i, _doc in left} >= asserted  # every object the event asserted is revoked
    with session_scope(maker, write=False) as session:
        assert session.scalar(select(func.count()).select_from(EventVersion)) == 2
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "admin.delete"))
        assert entry.body["details"]["reason"] == "posted by mistake"
    again = client.delete(f"/api/v1/admin/events/{uuid}", params={"reason": "again"}, headers=auth)
    assert again.status_code == 409
    assert _versions(maker) == 2


def _stix(maker: Any) -> list[tuple[str, dict[str, Any]]]:
    with session_scope(maker, write=False) as session:
        rows = session.execute(select(StixObject.stix_id, StixObject.doc)).all()
    return [(stix_id, json.loads(doc)) for stix_id, doc in rows]


def test_deleting_an_event_retracts_its_notifications(client, auth, maker, desk, stored) -> None:  # noqa: F811
    r = client.delete(
        f"/api/v1/admin/events/{stored['uuid']}", params={"reason": "hoax"}, headers=auth
    )
    assert r.status_code == 200, r.text
    desk.drain()
    with session_scope(maker, write=False) as session:
        note = session.scalar(select(Notification))
        assert note.status == "retracted" and "deleting the event" in note.correction
