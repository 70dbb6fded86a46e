"""Real PyMISP (the PyPI package) against the app served by uvicorn on a loopback port.

Two scenarios, one server each: a partner's scripts doing the calls of the issue with its own
events (every fixture of tests/fixtures/misp/events), and a partner that may see less
receiving less, each element checked against the TLP oracle in conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pymisp import MISPEvent, MISPSighting, PyMISP

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import (
    NOT_NEWER,
    RANK,
    Who,
    expected,
    grid,
    make_people,
    may_receive,
    tlp_of,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "misp" / "events"
EVENT_FILES = sorted(p for p in FIXTURES.glob("*.json") if "search_index" not in p.name)


def connect(url: str, key: str) -> PyMISP:
    return PyMISP(url, key, ssl=False, timeout=30)


def own_copy(path: Path) -> dict[str, Any]:
    """A fixture as the partner's own event: PyMISP scripts add what their organisation made."""
    doc = json.loads(path.read_text())
    if "response" in doc:  # a saved search answer holding one event
        doc = doc["response"][0]
    inner = doc.get("Event", doc)
    for key in ("Orgc", "Org", "orgc_id", "org_id"):
        inner.pop(key, None)
    return inner  # type: ignore[no-any-return]


def comes_back(doc: dict[str, Any]) -> bool:
    """Whether the source gets its own event back over MISP: not RED, and something left that
    is not deleted (DESIGN.md §3: RED never over MISP sync; an empty event is not delivered)."""
    if tlp_of(doc) == "red":
        return False
    live = [a for a in doc.get("Attribute") or [] if not a.get("deleted")]
    live += [o for o in doc.get("Object") or [] if not o.get("deleted")]
    return bool(live or doc.get("EventReport"))


def test_pymisp_calls_against_the_hub(misp_url: str, factory) -> None:
    partner = factory.partner("Z-CERT", type="sectoral-csirt")
    misp = connect(misp_url, factory.key(Role.PARTNER, partner))
    assert misp.misp_instance_version["version"].startswith("2.5.")
    user = misp.get_user()
    assert user["Organisation"]["uuid"] == partner.uuid and user["Role"]["perm_sync"] is False
    assert "ip-dst" in misp.describe_types_remote["types"]

    stored = {}
    for path in EVENT_FILES:
        ev = MISPEvent()
        ev.from_dict(**own_copy(path))
        r = misp.add_event(ev)
        if ev.uuid in stored:  # two mispguard fixtures share a uuid: MISP's "already exists"
            assert r["errors"][0] == 404 and "already exists" in r["errors"][1]["message"]
            continue
        assert "errors" not in r, (path.name, r)
        assert r["Event"]["uuid"]
        if r["Event"]["id"] != "0":  # "0": held in quarantine (unreadable marking)
            stored[r["Event"]["uuid"]] = path.name
    assert len(stored) >= len(EVENT_FILES) - 2
    for uuid in stored:
        got = misp.get_event(uuid, pythonify=True)
        if not comes_back(own_copy(FIXTURES / stored[uuid])):
            # Nothing live in it: its creator still sees its own event, empty (as in MISP).
            assert isinstance(got, MISPEvent), (stored[uuid], got)
            assert not got.attributes and not got.objects
            continue
        assert isinstance(got, MISPEvent), (stored[uuid], got)
        assert got.uuid == uuid and got.Orgc.uuid == partner.uuid
        for a in got.attributes:
            assert [
                t.name
                for t in a.tags
                if t.name.startswith("tlp:") and not t.name.startswith("tlp:ex:")
            ]

    # a fixture as it came (another organisation's event): relaying needs a permission
    raw = json.loads((FIXTURES / "pymisp-mainly_objects_1.json").read_text())
    raw["Event"]["uuid"] = "4b7f0d1a-8f0a-4c9e-9b7d-2a1d3c4e5f60"
    raw["Event"]["Orgc"] = {"uuid": "55f6ea5e-2c60-40e5-964f-47a8950d210f", "name": "CIRCL"}
    refused = misp.add_event(raw)
    assert refused["errors"][0] == 403 and "relay permission" in refused["errors"][1]["errors"]

    # update: PyMISP drops the timestamp of what it changed, the hub sets now; stale is refused
    mine = MISPEvent()
    mine.from_dict(**event("scripted", tlp="green", distribution=3)["Event"])
    made = misp.add_event(mine, pythonify=True)
    assert isinstance(made, MISPEvent)
    made.info = "scripted, revised"
    made.add_attribute("domain", "evil.example")
    updated = misp.update_event(made, pythonify=True)
    assert isinstance(updated, MISPEvent) and updated.info == "scripted, revised"
    assert int(updated.timestamp.timestamp()) > int(mine.timestamp.timestamp())
    assert "evil.example" in {a.value for a in updated.attributes}
    stale = event("stale", tlp="green", distribution=3, uuid=made.uuid, timestamp=1_600_000_000)
    answer = misp.update_event(stale["Event"])
    assert answer["errors"][0] == 403 and answer["errors"][1]["errors"] == NOT_NEWER

    index = misp.search_index(published=True, pythonify=True)
    assert made.uuid in {e.uuid for e in index}
    assert {e.uuid for e in misp.search_index(eventinfo="revised", pythonify=True)} == {made.uuid}
    found = misp.search(
        controller="events", tags=["tlp:green"], eventinfo="revised", pythonify=True
    )
    assert [e.uuid for e in found] == [made.uuid]
    attrs = misp.search(controller="attributes", value="evil.example", pythonify=True)
    assert [a.value for a in attrs] == ["evil.example"]
    assert misp.search(controller="attributes", type_attribute="domain", limit=1, page=1)[
        "Attribute"
    ]

    sighting = misp.add_sighting({"value": "evil.example", "source": "dns"}, pythonify=True)
    assert isinstance(sighting, MISPSighting) and sighting.attribute_uuid == attrs[0].uuid
    on_attr = misp.add_sighting(MISPSighting(), attrs[0], pythonify=True)
    assert isinstance(on_attr, MISPSighting)
    seen = misp.search_sightings(context="event", context_id=made.uuid)
    assert len(seen) == 2
    assert misp.event_exists(made.uuid) and not misp.event_exists(
        "00000000-0000-4000-8000-000000000000"
    )


def test_a_partner_that_may_see_less_receives_less(misp_url: str, factory) -> None:
    source, people = make_people(factory, Role.PARTNER)
    members = [people["eco"].uuid, people["conn"].uuid]
    events = grid(members)
    # one event with an object, so objects are checked too
    obj_event = event("with object", tlp="green", distribution=3)
    obj_event["Event"]["Object"] = [
        {
            "name": "domain-ip",
            "meta-category": "network",
            "uuid": "3f2c4c32-9b3c-4a55-8d3e-0e4c52b1c001",
            "distribution": "5",
            "Attribute": [
                {**attr("ok.example", type="domain"), "object_relation": "domain"},
                {**attr("203.0.113.5", "amber"), "object_relation": "ip"},
            ],
        }
    ]
    events.append(obj_event)
    writer = connect(misp_url, source.key)
    for ev in events:
        assert "errors" not in writer.add_event(ev["Event"]), ev["Event"]["info"]

    by_uuid = {ev["Event"]["uuid"]: ev for ev in events}
    for name in ("conn", "eco", "core-no-tlp"):
        who: Who = people[name]
        misp = connect(misp_url, who.key)
        wanted = {u: expected(who, ev, set(members), source.uuid) for u, ev in by_uuid.items()}
        listed = {e["uuid"] for e in misp.search_index(minimal=True)}
        visible = {u for u, attrs in wanted.items() if attrs}
        obj_ok = may_receive(
            who, label="amber", distribution=3, members=set(members), source=source.uuid
        )
        if obj_ok:
            visible.add(obj_event["Event"]["uuid"])
        assert listed == visible, name
        for uuid, attrs in wanted.items():
            got = misp.get_event(uuid)
            if uuid not in visible:
                assert got["errors"][0] == 404, (name, uuid)
                continue
            ev = got["Event"]
            assert {a["uuid"] for a in ev["Attribute"]} == attrs, (name, ev["info"])
            if uuid == obj_event["Event"]["uuid"]:
                assert len(ev["Object"]) == (1 if obj_ok else 0)
        for ev in misp.search(controller="events", pythonify=True):
            assert ev.uuid in visible
            assert {a.uuid for a in ev.attributes} == wanted[ev.uuid] | (
                {a["uuid"] for a in obj_event["Event"]["Attribute"]}
                if ev.uuid == obj_event["Event"]["uuid"]
                else set()
            )
        got_attrs = misp.search(controller="attributes")["Attribute"]
        assert got_attrs
        for a in got_attrs:
            origin = by_uuid[a["event_uuid"]]["Event"]
            label = tlp_of(a)
            assert label is not None and RANK[label] >= RANK[tlp_of(origin) or "amber+strict"]
            assert may_receive(
                who,
                label=label,
                distribution=int(origin["distribution"]),
                members=set(members),
                source=source.uuid,
            ), (name, a["value"])
