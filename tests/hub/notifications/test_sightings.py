"""MISP sightings as feedback: a partner's sighting (PyMISP against the hub under uvicorn, or
a MISP server's sighting push) on an attribute that went out in a notification to it, or
through it to its constituents, is feedback on that notification — type 0 (seen) an
acknowledgement, type 1 a false positive — forwarded to the source as "via hub"."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

from pymisp import PyMISP
from sqlalchemy import select

from hub.db import session_scope
from hub.models import Notification, NotificationFeedback
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import MISP_HEADERS


def _world(client, factory, desk, auth):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    town = factory.partner("Town", type="government")
    other = factory.partner("Other")
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"ip_prefixes": ["12.0.0.0/8"]},
        headers=auth,
    )
    assert r.status_code == 200
    attrs = {v: attr(v) for v in ("10.1.1.1", "10.1.1.2", "12.1.1.1", "198.51.100.7")}
    ev = event(tlp="green", attributes=list(attrs.values()))
    desk.ingest(source, ev)
    desk.drain()
    keys = {
        name: factory.key(Role.PARTNER, p)
        for name, p in {"source": source, "isp": isp, "town": town, "other": other}.items()
    }
    return ev["Event"]["uuid"], {v: a["uuid"] for v, a in attrs.items()}, keys


def _status(maker: Any, name_part: str) -> str:
    with session_scope(maker) as s:
        return str(
            s.scalars(
                select(Notification.status).where(Notification.recipient_name.contains(name_part))
            ).one()
        )


def _feedback(client: Any, key: str) -> list[tuple[str, Any]]:
    items = client.get("/api/v1/feedback", headers={"Authorization": key}).json()["items"]
    return [(f["kind"], f["from"]) for f in items]


def test_pymisp_sightings_become_feedback_on_delivered_notifications(
    client, factory, desk, maker, auth, misp_url
):
    _, uuids, keys = _world(client, factory, desk, auth)
    isp = PyMISP(misp_url, keys["isp"], ssl=False, timeout=30)
    town = PyMISP(misp_url, keys["town"], ssl=False, timeout=30)
    other = PyMISP(misp_url, keys["other"], ssl=False, timeout=30)

    # not delivered yet: a sighting is not feedback on a notification nobody received
    isp.add_sighting({"type": "0", "source": "ids"}, attribute=uuids["10.1.1.1"])
    assert _feedback(client, keys["source"]) == []
    for who in ("isp", "town"):
        via = "?via=me" if who == "isp" else ""
        r = client.get(f"/api/v1/notifications{via}", headers={"Authorization": keys[who]})
        assert len(r.json()["items"]) == 1

    seen = isp.add_sighting({"type": "0", "source": "ids"}, attribute=uuids["10.1.1.1"])
    assert "errors" not in seen, seen
    assert _status(maker, "ISP") == "acknowledged"
    fp = town.add_sighting({"type": "1", "source": "soc"}, attribute=uuids["12.1.1.1"])
    assert "errors" not in fp, fp
    assert _status(maker, "Town") == "false-positive"
    # a later "seen" does not undo the false-positive verdict
    town.add_sighting({"type": "0"}, attribute=uuids["12.1.1.1"])
    assert _status(maker, "Town") == "false-positive"
    # not theirs: another partner, a value in someone else's notification, an expiration
    other.add_sighting({"type": "1"}, attribute=uuids["10.1.1.2"])
    isp.add_sighting({"type": "1"}, attribute=uuids["12.1.1.1"])
    isp.add_sighting({"type": "2"}, attribute=uuids["10.1.1.2"])
    isp.add_sighting({"type": "0"}, attribute=uuids["198.51.100.7"])
    assert _status(maker, "ISP") == "acknowledged"

    assert _feedback(client, keys["source"]) == [
        ("ack", "via hub"),
        ("false-positive", "via hub"),
        ("ack", "via hub"),
    ]
    with session_scope(maker) as s:
        rows = s.scalars(select(NotificationFeedback).order_by(NotificationFeedback.id)).all()
    assert all(uuids[v] in rows[i].text for i, v in enumerate(["10.1.1.1", "12.1.1.1"]))
    assert {r.forward for r in rows} == {"anonymised"}


def test_pushed_sightings_from_a_partners_misp_are_feedback(client, factory, desk, maker, auth):
    event_uuid, uuids, keys = _world(client, factory, desk, auth)
    headers = {**MISP_HEADERS, "Authorization": keys["isp"]}
    client.get("/api/v1/notifications?via=me", headers={"Authorization": keys["isp"]})
    pushed = [
        {
            "uuid": str(uuid_mod.uuid4()),
            "attribute_uuid": uuids[value],
            "type": kind,
            "source": "partner MISP",
            "date_sighting": "1700000000",
        }
        for value, kind in (("10.1.1.1", "0"), ("10.1.1.2", "1"))
    ]
    r = client.post(f"/misp/sightings/bulkSaveSightings/{event_uuid}", json=pushed, headers=headers)
    assert r.status_code == 200 and r.json()["success"] == "2 sightings added."
    assert _status(maker, "ISP") == "false-positive"
    assert _feedback(client, keys["source"]) == [("false-positive", "via hub")]
