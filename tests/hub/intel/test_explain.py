"""Explain a decision: per partner and channel, what would be released now, element by
element, and why every withheld element was withheld — and nothing recorded."""

from __future__ import annotations

from sqlalchemy import func, select

import tlp
from hub.db import session_scope
from hub.intel import service as intel
from hub.models import AuditEntry, Partner, Release
from hub.vocabulary import Role
from tests.builders import attr, event


def ingest(maker, source: Partner, payload: dict) -> None:
    with session_scope(maker) as session:
        intel.ingest_events(
            session,
            payloads=[payload],
            source=session.get(Partner, source.id),
            actor="test",
            channel="rest",
            policy=tlp.DEFAULT_POLICY,
        )


def recorded(maker) -> tuple[int, int]:
    with maker() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEntry)),
            s.scalar(select(func.count()).select_from(Release)),
        )


def by_channel(answer: dict) -> dict[str, dict]:
    return {c["channel"]: c for c in answer["channels"]}


def test_each_channel_element_by_element(client, auth, factory, maker) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    core = factory.partner("Core ISP", tier="core")
    connection = factory.partner("Town", tier="connection")
    no_tlp = factory.partner("No agreement", tlp=False)
    suspended = factory.partner("Suspended", status="suspended")
    green, amber, red = (
        attr("192.0.2.1", "green"),
        attr("192.0.2.2", "amber"),
        attr("192.0.2.3", "red"),
    )
    ev = event(tlp="green", attributes=[green, amber, red])
    ingest(maker, source, ev)
    before = recorded(maker)
    url = f"/api/v1/admin/events/{ev['Event']['uuid']}/explain"

    r = client.get(url, params={"partner": core.uuid}, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["event"] == ev["Event"]["uuid"] and body["version"] == 1
    (answer,) = body["partners"]
    channels = by_channel(answer)
    assert set(channels) == {"rest", "misp-pull", "misp-push", "taxii"}
    rest = channels["rest"]
    assert rest["released"] is True
    assert {e["uuid"] for e in rest["released_elements"]} == {green["uuid"], amber["uuid"]}
    assert rest["elements_released"] == 2
    (withheld,) = rest["withheld"]
    assert (
        withheld["uuid"] == red["uuid"] and withheld["reason"] == "hub-only"
    )  # RED named to nobody
    assert withheld["rule"]  # the sentence people read
    # RED never leaves over TAXII or MISP sync, whoever the recipient
    for name in ("taxii", "misp-pull", "misp-push"):
        gone = {w["uuid"]: w["reason"] for w in channels[name]["withheld"]}
        assert red["uuid"] in gone, name

    r = client.get(url, params={"partner": "Town"}, headers=auth)
    rest = by_channel(r.json()["partners"][0])["rest"]
    assert {e["uuid"] for e in rest["released_elements"]} == {green["uuid"]}
    assert {w["uuid"]: w["reason"] for w in rest["withheld"]}[amber["uuid"]] == "above-tier-ceiling"

    every = client.get(url, headers=auth).json()["partners"]
    named = {p["name"]: by_channel(p) for p in every}
    assert "Suspended" not in named  # default: every active partner
    assert named["No agreement"]["rest"]["released"] is False
    assert named["No agreement"]["rest"]["reason"] == "no-tlp-agreement"
    assert named["Source CSIRT"]["rest"]["elements_released"] == 3  # its own, all of it
    assert {"Core ISP", "Town", "NCSC-NL"} <= set(named)

    r = client.get(url, params={"partner": suspended.uuid}, headers=auth)
    rest = by_channel(r.json()["partners"][0])["rest"]
    assert rest["released"] is False and rest["reason"] == "recipient-not-active"
    assert rest["released_elements"] == [] and rest["withheld"][0]["kind"] == "event"

    assert recorded(maker) == before  # nothing left the hub, nothing was recorded
    assert connection and no_tlp


def test_who_may_ask_and_what_is_missing(client, auth, factory, maker) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    ev = event()
    ingest(maker, source, ev)
    url = f"/api/v1/admin/events/{ev['Event']['uuid']}/explain"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": factory.key(Role.PARTNER)}).status_code == 403
    assert client.get(url, headers={"Authorization": factory.key(Role.AUDITOR)}).status_code == 200
    missing = "/api/v1/admin/events/5f3c0ad2-0000-4000-8000-000000000000/explain"
    assert client.get(missing, headers=auth).status_code == 404
    assert client.get(url, params={"partner": "nobody"}, headers=auth).status_code == 404
