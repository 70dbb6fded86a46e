"""The answer to a ``/misp`` write is the element as its creator stored it, below RED.

The source always receives its own items back (DESIGN.md §3), and RED never travels in MISP
sync: a PyMISP script that writes an AMBER+STRICT element of its own event gets it back in
full; a RED one is stored (the source reads it over REST) and its ``/misp`` answer names only
its uuid. A partner that sights someone else's element receives only its sighting.
"""

from __future__ import annotations

from typing import Any

import httpx
from pymisp import MISPAttribute, MISPEvent, MISPEventReport, MISPObject, PyMISP
from sqlalchemy import select

from hub.db import session_scope
from hub.models import AuditEntry
from hub.vocabulary import Role


def connect(url: str, key: str) -> PyMISP:
    return PyMISP(url, key, ssl=False, timeout=30)


def tlp_tags(element: Any) -> set[str]:
    return {t.name for t in element.tags if t.name.startswith("tlp:")}


def own_green_event(misp: PyMISP) -> MISPEvent:
    ev = MISPEvent()
    ev.info = "own event"
    ev.distribution = 1
    ev.add_tag("tlp:green")
    ev.add_attribute("ip-dst", "198.51.100.7")
    made = misp.add_event(ev, pythonify=True)
    assert isinstance(made, MISPEvent), made
    return made


def red_attribute(value: str) -> MISPAttribute:
    attr = MISPAttribute()
    attr.from_dict(type="domain", value=value, comment="red by its source")
    attr.add_tag("tlp:red")
    return attr


def test_the_creator_s_red_write_is_stored_and_its_misp_answer_carries_none_of_it(
    client, misp_url: str, factory, maker
) -> None:
    """RED never travels in MISP sync, not even back to its source (DESIGN.md §3): the write
    is stored and the source reads it over REST; the ``/misp`` answer names only the uuid
    and says, in its headers, that it released nothing (recorded as a write answer)."""
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, source)
    made = own_green_event(connect(misp_url, key))
    r = httpx.post(
        f"{misp_url}attributes/add/{made.uuid}",
        headers={"Authorization": key, "Accept": "application/json"},
        json={"type": "domain", "value": "red.example", "Tag": [{"name": "tlp:red"}]},
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["Attribute"]) == {"uuid", "event_id"}
    assert "red.example" not in r.text
    assert r.headers["X-Hub-TLP"] == "TLP:CLEAR"
    # it delivered nothing: it names no entry, and the refusal is the operators' (recorded)
    assert "X-Hub-Audit-Seq" not in r.headers
    with session_scope(maker) as session:
        entry = session.scalar(
            select(AuditEntry)
            .where(AuditEntry.recipient_uuid == source.uuid, AuditEntry.decision == "deny")
            .order_by(AuditEntry.seq.desc())
            .limit(1)
        )
        assert entry is not None
        assert entry.channel == "misp-sync"
        assert entry.body["details"]["answer"] == "write"
    rest = client.get(f"/api/v1/events/{made.uuid}", headers={"Authorization": key})
    assert rest.status_code == 200 and "red.example" in rest.text
    misp = connect(misp_url, key)
    assert misp.get_attribute(r.json()["Attribute"]["uuid"]).get("errors"), "RED over /misp"
    assert [a.value for a in misp.get_event(made.uuid, pythonify=True).attributes] == [
        "198.51.100.7"
    ]


def test_the_creator_gets_its_amber_strict_attribute_object_report_and_event_back(
    misp_url: str, factory, maker
) -> None:
    """Below RED the source receives its own items back over ``/misp`` too: every write answer
    is the element as stored, labelled and recorded as a write answer."""
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, source)
    misp = connect(misp_url, key)
    made = own_green_event(misp)

    attr = MISPAttribute()
    attr.from_dict(type="domain", value="strict.example", comment="named only")
    attr.add_tag("tlp:amber+strict")
    added = misp.add_attribute(made, attr, pythonify=True)
    assert isinstance(added, MISPAttribute), added
    assert (added.value, added.comment) == ("strict.example", "named only")
    assert tlp_tags(added) == {"tlp:amber+strict"}
    added.comment = "still named only"
    updated = misp.update_attribute(added, pythonify=True)
    assert isinstance(updated, MISPAttribute), updated
    assert (updated.uuid, updated.comment) == (added.uuid, "still named only")
    r = httpx.post(
        f"{misp_url}attributes/add/{made.uuid}",
        headers={"Authorization": key, "Accept": "application/json"},
        json={"type": "domain", "value": "s2.example", "Tag": [{"name": "tlp:amber+strict"}]},
    )
    assert r.json()["Attribute"]["value"] == "s2.example"
    assert r.headers["X-Hub-TLP"] == "TLP:AMBER+STRICT"

    obj = MISPObject("domain-ip")
    obj.add_attribute("domain", value="evil.example")
    obj.add_attribute("ip", value="203.0.113.9").add_tag("tlp:amber+strict")
    added_obj = misp.add_object(made, obj, pythonify=True)
    assert isinstance(added_obj, MISPObject), added_obj
    assert sorted(a.value for a in added_obj.attributes) == ["203.0.113.9", "evil.example"]
    # The object goes whole under its highest label, on each of its attributes.
    assert all(tlp_tags(a) == {"tlp:amber+strict"} for a in added_obj.attributes)

    strict = MISPEvent()
    strict.info = "strict event"
    strict.distribution = 0
    strict.add_tag("tlp:amber+strict")
    strict.add_attribute("ip-dst", "192.0.2.66")
    got = misp.add_event(strict, pythonify=True)
    assert isinstance(got, MISPEvent), got
    assert got.info == "strict event" and [a.value for a in got.attributes] == ["192.0.2.66"]

    report = MISPEventReport()
    report.name = "strict report"
    report.content = "only for us"
    written = misp.add_event_report(got, report, pythonify=True)
    assert isinstance(written, MISPEventReport), written
    assert (written.name, written.content) == ("strict report", "only for us")


def test_a_sighting_on_another_source_s_element_releases_only_the_sighting(
    misp_url: str, factory
) -> None:
    """A partner writing about someone else's element is an ordinary recipient: its answer
    carries its sighting and nothing of an element it may not receive."""
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    other = factory.partner("Other CERT", type="sectoral-csirt")
    mine = connect(misp_url, factory.key(Role.PARTNER, source))
    made = own_green_event(mine)
    red = mine.add_attribute(made, red_attribute("red.example"))["Attribute"]
    theirs = connect(misp_url, factory.key(Role.PARTNER, other))
    answer = theirs.add_sighting({"value": "red.example"})
    assert "red by its source" not in str(answer)
    assert theirs.get_attribute(red["uuid"]).get("errors")
