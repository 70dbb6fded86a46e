"""Partners, keys and a TLP oracle for the MISP API tests.

The oracle is written from DESIGN.md §3 for the ``misp-sync`` channel, independently of
``tlp/`` (as tests/hub/intel/test_release.py does for REST): RED never goes over MISP sync,
not even back to its source; otherwise the source receives its own; then tier ceilings, the
TLP agreement and addressing decide.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from hub.vocabulary import Role
from tests.builders import attr, event

RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
CEILING = {"core": 4, "ecosystem": 2, "connection": 1}
LABELS = list(RANK)
NOT_NEWER = "Event could not be saved: Event in the request not newer than the local copy."
MISP_HEADERS = {
    "Accept": "application/json",
    "Content-Type": "application/json",
    "User-Agent": "MISP 2.5.1 - #bb0909a37a7bd727d35f7a60ee9a6ff10bc99852",
}


@dataclass
class Who:
    name: str
    tier: str
    tlp: bool
    uuid: str = ""
    key: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {**MISP_HEADERS, "Authorization": self.key}


def may_receive(who: Who, *, label: str, distribution: int, members: set[str], source: str) -> bool:
    """May ``who`` receive an element with this label and addressing over MISP sync?"""
    rank = RANK[label]
    if rank == RANK["red"]:
        return False
    if who.uuid == source:
        return True
    if rank > CEILING[who.tier] or (not who.tlp and rank > 0):
        return False
    if distribution == 0:
        return False
    if distribution in (1, 2, 3):
        return rank <= RANK["amber"]
    return who.uuid in members


def tlp_of(element: dict[str, Any]) -> str | None:
    names = [t["name"] for t in element.get("Tag") or [] if t["name"].startswith("tlp:")]
    names = [n for n in names if not n.startswith("tlp:ex:")]
    return max((n[4:] for n in names), key=RANK.get) if names else None


def expected(who: Who, ev: dict[str, Any], members: set[str], source: str) -> set[str]:
    """The attribute uuids of ``ev`` (built by tests.hub.intel.conftest.event) ``who`` gets."""
    inner = ev["Event"]
    ev_label = tlp_of(inner) or "amber+strict"
    dist = int(inner["distribution"])
    if not may_receive(who, label=ev_label, distribution=dist, members=members, source=source):
        return set()
    out = set()
    for a in inner["Attribute"]:
        label = max(tlp_of(a) or ev_label, ev_label, key=RANK.get)
        if a.get("deleted"):
            continue
        if may_receive(who, label=label, distribution=dist, members=members, source=source):
            out.add(a["uuid"])
    return out


PEOPLE = [
    Who("core", "core", True),
    Who("eco", "ecosystem", True),
    Who("conn", "connection", True),
    Who("core-no-tlp", "core", False),
]


@dataclass
class World:
    source: Who
    people: dict[str, Who]
    events: list[dict[str, Any]]
    members: set[str]


def make_people(factory: Any, role: Role = Role.SYNC) -> tuple[Who, dict[str, Who]]:
    partner = factory.partner("Source CSIRT", type="sectoral-csirt")
    source = Who("source", "core", True, partner.uuid, factory.key(role, partner))
    people = {}
    for who in PEOPLE:
        p = factory.partner(f"P-{who.name}", tier=who.tier, tlp=who.tlp)
        people[who.name] = Who(who.name, who.tier, who.tlp, p.uuid, factory.key(role, p))
    return source, people


def grid(members: list[str]) -> list[dict[str, Any]]:
    """One event per (event label, distribution), each with an attribute per label."""
    events = []
    for ev_label, dist in itertools.product(LABELS, (0, 1, 3, 4)):
        attrs = [
            attr(f"10.{RANK[ev_label]}.{dist}.{i}", a_label)
            for i, a_label in enumerate([None, *LABELS])
        ]
        events.append(
            event(
                f"{ev_label} d{dist}",
                tlp=ev_label,
                distribution=dist,
                attributes=attrs,
                members=members if dist == 4 else None,
            )
        )
    return events


@pytest.fixture
def world(client: Any, factory: Any) -> World:
    """The source CSIRT pushed the grid through /misp (its MISP's push); four partners."""
    source, people = make_people(factory)
    members = [people["eco"].uuid, people["conn"].uuid, people["core-no-tlp"].uuid]
    events = grid(members)
    for ev in events:
        r = client.post("/misp/events/add/metadata:1", json=ev, headers=source.headers)
        assert r.status_code == 200, r.text
    return World(source, people, events, set(members))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def misp_url(app: Any) -> Iterator[str]:
    """The app on a loopback port (one per test: each test starts from an empty database)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    # PyMISP joins paths with urljoin: the base URL needs its trailing slash
    yield f"http://127.0.0.1:{config.port}/misp/"
    server.should_exit = True
    thread.join(10)
