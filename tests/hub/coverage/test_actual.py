"""Actual coverage and the monthly trend: counted from what the hub did (releases, event
versions, notification feedback, connection runs), not from what partners declared."""

from __future__ import annotations

from datetime import date, timedelta

from hub.audit import releases as release_index
from hub.coverage.actual import month_ends
from hub.db import session_scope
from hub.models import Connection, ConnectionJob
from hub.models.base import utcnow
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.notifications.conftest import desk  # noqa: F401 - the DSN job runner

URL = "/api/v1/admin/coverage"
IS, TVN = "information-sharing", "target-victim-notification"


def _world(client, factory, desk, auth, maker):  # noqa: F811
    """A source shares an event; a town is notified directly and acknowledges; an ISP passes
    a notification on to its constituency; a sync partner's connection finishes a run; one
    partner does nothing."""
    source = factory.partner("Source CSIRT", sectors=["health"], functions=[IS])
    isp = factory.partner(
        "ISP",
        sectors=["digital-infrastructure"],
        functions=[IS],
        constituency={"ip_prefixes": ["10.0.0.0/8"], "asns": [64500], "domains": ["isp.nl"]},
    )
    town = factory.partner(
        "Town",
        type="government",
        tier="connection",
        sectors=["public-administration"],
        functions=[TVN],
        region="bonaire",
    )
    idle = factory.partner(
        "Idle",
        sectors=["health"],
        functions=[IS],
        constituency={
            "ip_prefixes": ["10.2.0.0/16", "192.0.2.0/24", "2001:db8::/32"],
            "asns": [64500, 64501],
            "domains": ["isp.nl", "idle.nl"],
            "sectors": ["digital-infrastructure"],
        },
    )
    syncer = factory.partner("Syncer", sectors=["energy"], functions=[IS])
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"domains": ["town.example.nl"]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    desk.ingest(
        source,
        event(
            tlp="green", attributes=[attr("10.1.1.1"), attr("www.town.example.nl", type="hostname")]
        ),
    )
    desk.drain()
    town_key = {"Authorization": factory.key(Role.PARTNER, town)}
    isp_key = {"Authorization": factory.key(Role.PARTNER, isp)}
    [mine] = client.get("/api/v1/notifications", headers=town_key).json()["items"]
    [passon] = client.get("/api/v1/notifications?via=me", headers=isp_key).json()["items"]
    r = client.post(
        f"/api/v1/notifications/{mine['ticket']}/feedback", json={"kind": "ack"}, headers=town_key
    )
    assert r.status_code == 201, r.text
    with session_scope(maker) as session:
        connection = Connection(
            name="Syncer MISP",
            kind="misp-pull",
            url="https://misp.example.nl",
            partner_id=syncer.id,
            secret=b"-",
        )
        session.add(connection)
        session.flush()
        session.add(
            ConnectionJob(
                connection_id=connection.id, trigger="manual", state="done", finished_at=utcnow()
            )
        )
        release_index.catch_up(session)
    return source, isp, town, idle, syncer


def test_acts_are_counted_per_cell_and_period(client, factory, desk, auth, maker) -> None:  # noqa: F811
    _world(client, factory, desk, auth, maker)
    r = client.get(f"{URL}/actual", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    cells = {(c["function"], c["sector"], c["region"]): c for c in body["cells"]}
    health = cells[(IS, "health", "nl")]  # Source and Idle
    assert health["registered"] == 2
    assert health["active"]["30"] == {
        "received": 0,  # nothing went out to Source or Idle in this world
        "shared": 1,
        "acknowledged": 0,
        "synced": 0,
        "any": 1,
    }
    assert health["active"]["30"]["shared"] == 1 and health["active"]["30"]["any"] == 1
    assert health["active"]["90"] == health["active"]["30"]
    town = cells[(TVN, "public-administration", "bonaire")]
    assert town["registered"] == 1
    assert town["active"]["30"]["received"] == 1 and town["active"]["30"]["acknowledged"] == 1
    assert town["active"]["30"]["shared"] == 0 and town["active"]["30"]["any"] == 1
    # the ISP's cell: the ISP received (its pass-on), Idle counts here through its constituency
    isp = cells[(IS, "digital-infrastructure", "nl")]
    assert isp["registered"] == 2 and isp["active"]["30"]["received"] == 1
    assert isp["active"]["30"]["acknowledged"] == 0 and isp["active"]["30"]["any"] == 1
    energy = cells[(IS, "energy", "nl")]
    assert energy["active"]["30"] == {
        "received": 0,
        "shared": 0,
        "acknowledged": 0,
        "synced": 1,
        "any": 1,
    }
    counted = body["counted"]
    assert set(counted["sources"]) == {"received", "shared", "acknowledged", "synced"}
    assert set(counted["periods"]) == {"30", "90"}


def test_notification_and_constituency_reach(client, factory, desk, auth, maker) -> None:  # noqa: F811
    _world(client, factory, desk, auth, maker)
    body = client.get(f"{URL}/actual", headers=auth).json()
    by_sector = {r["key"]: r for r in body["notification_reach_by_sector"]}
    by_region = {r["key"]: r for r in body["notification_reach_by_region"]}
    town = by_sector["public-administration"]
    assert town["notifications"] == 1 and town["delivered"] == 1 and town["acknowledged"] == 1
    assert town["median_seconds_to_acknowledge"] is not None
    assert town["median_seconds_to_acknowledge"] >= 0
    isp = by_sector["digital-infrastructure"]  # the pass-on, not answered
    assert isp["notifications"] == 1 and isp["acknowledged"] == 0
    assert isp["median_seconds_to_acknowledge"] is None
    assert by_sector["energy"]["notifications"] == 0
    assert by_region["bonaire"]["notifications"] == 1 and by_region["nl"]["notifications"] == 1
    reach = {r["sector"]: r for r in body["constituency_reach"]}
    digital = reach["digital-infrastructure"]  # ISP's own, Idle's through its constituency
    assert digital["partners"] == 2
    assert digital["ipv4_addresses"] == 2**24 + 256  # 10.2.0.0/16 lies inside 10.0.0.0/8
    assert digital["ipv6_48_blocks"] == 2**16
    assert digital["asns"] == 2 and digital["domains"] == 2
    assert reach["health"]["ipv4_addresses"] == 2**16 + 256  # Idle only
    assert reach["energy"]["ipv4_addresses"] == 0 and reach["energy"]["partners"] == 1


def test_before_anything_happened(client, factory, desk, auth, maker) -> None:  # noqa: F811
    _world(client, factory, desk, auth, maker)
    yesterday = (date.today() - timedelta(days=1)).isoformat()
    body = client.get(f"{URL}/actual", params={"as_of": yesterday}, headers=auth).json()
    assert body["cells"] == []  # nobody was registered yet
    assert all(r["notifications"] == 0 for r in body["notification_reach_by_sector"])
    assert (
        client.get(f"{URL}/actual", params={"as_of": "x"}, headers=auth).json()["field"] == "as_of"
    )
    partner = {"Authorization": factory.key(Role.PARTNER)}
    assert client.get(f"{URL}/actual", headers=partner).status_code == 403
    assert client.get(f"{URL}/trend", headers=partner).status_code == 403


def test_month_ends() -> None:
    assert month_ends(date(2026, 3, 15), 3) == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 15),
    ]
    assert month_ends(date(2026, 1, 31), 2) == [date(2025, 12, 31), date(2026, 1, 31)]
    assert month_ends(date(2024, 3, 1), 2) == [date(2024, 2, 29), date(2024, 3, 1)]


def test_monthly_trend_from_the_history(client, auth, timeline) -> None:
    a = timeline.active_since("2026-01-05", "A", sectors=["health"], functions=[IS])
    timeline.active_since("2026-02-10", "B", sectors=["energy"], functions=[IS, TVN], region="saba")
    timeline.status("2026-03-03", a, "suspended")
    r = client.get(f"{URL}/trend", params={"as_of": "2026-03-15", "months": 4}, headers=auth)
    assert r.status_code == 200, r.text
    points = r.json()["points"]
    assert [p["as_of"] for p in points] == ["2025-12-31", "2026-01-31", "2026-02-28", "2026-03-15"]
    assert [p["active_partners"] for p in points] == [0, 1, 2, 1]
    assert [p["cells"] for p in points] == [0, 1, 3, 2]
    assert [p["function_sectors_covered"] for p in points] == [0, 1, 3, 2]
    assert [p["function_regions_covered"] for p in points] == [0, 1, 3, 2]
    assert [p["gaps"] for p in points] == [5 * 26, 5 * 26 - 2, 5 * 26 - 6, 5 * 26 - 4]
    assert [p["partners_acting_30_days"] for p in points] == [0, 0, 0, 0]
    for p in points:  # the same figures as registered coverage on that day
        reg = client.get(URL, params={"as_of": p["as_of"]}, headers=auth).json()
        assert len(reg["cells"]) == p["cells"] and len(reg["gaps"]) == p["gaps"]
    r = client.get(f"{URL}/trend", params={"months": 0}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "months"
