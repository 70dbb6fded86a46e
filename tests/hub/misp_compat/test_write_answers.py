"""The answer to a ``/misp`` write is the element as its creator stored it, whatever its label.

The source always receives its own items back (DESIGN.md §3): a PyMISP script that adds or
changes a RED (or otherwise restricted) element of its own event gets that element back in
full, not a stub that PyMISP cannot use. Only the answer to the writer changes: RED still
never goes out over MISP sync (pull, search, view), to its source or anyone else, and a
partner that sights someone else's element receives only its sighting.
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


def test_the_creator_gets_its_red_attribute_back_in_full(misp_url: str, factory) -> None:
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    misp = connect(misp_url, factory.key(Role.PARTNER, source))
    made = own_green_event(misp)

    added = misp.add_attribute(made, red_attribute("red.example"), pythonify=True)
    assert isinstance(added, MISPAttribute), added
    assert (added.type, added.value, added.comment) == (
        "domain",
        "red.example",
        "red by its source",
    )
    assert tlp_tags(added) == {"tlp:red"}
    assert added.event_id == made.id and added.id not in (None, "0")

    added.comment = "still red"
    updated = misp.update_attribute(added, pythonify=True)
    assert isinstance(updated, MISPAttribute), updated
    assert (updated.uuid, updated.value, updated.comment) == (
        added.uuid,
        "red.example",
        "still red",
    )
    assert tlp_tags(updated) == {"tlp:red"}

    # A list add answers every attribute in full too.
    listed = misp.add_attribute(
        made, [red_attribute("one.red.example"), red_attribute("two.red.example")], pythonify=True
    )
    values = sorted(a.value for a in listed["attributes"])
    assert values == ["one.red.example", "two.red.example"]

    # Only the answer to the writer changed: RED is never served over MISP sync.
    assert misp.get_attribute(added.uuid).get("errors"), "RED pulled over /misp"
    pulled = misp.get_event(made.uuid, pythonify=True)
    assert [a.value for a in pulled.attributes] == ["198.51.100.7"]


def test_answers_carry_the_red_label_in_x_hub_tlp(misp_url: str, factory, maker) -> None:
    """The answer is labelled and recorded as what it is: RED, over ``/misp``, to the writer
    as the answer to its write."""
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, source)
    made = own_green_event(connect(misp_url, key))
    r = httpx.post(
        f"{misp_url}attributes/add/{made.uuid}",
        headers={"Authorization": key, "Accept": "application/json"},
        json={"type": "domain", "value": "red.example", "Tag": [{"name": "tlp:red"}]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["Attribute"]["value"] == "red.example"
    assert r.headers["X-Hub-TLP"] == "TLP:RED"
    with session_scope(maker) as session:
        entry = session.scalar(
            select(AuditEntry).where(AuditEntry.seq == int(r.headers["X-Hub-Audit-Seq"]))
        )
        assert entry is not None
        assert (entry.channel, entry.recipient_uuid) == ("misp-sync", source.uuid)
        assert entry.body["details"]["answer"] == "write"


def test_the_creator_gets_its_red_object_report_and_event_back(misp_url: str, factory) -> None:
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    misp = connect(misp_url, factory.key(Role.PARTNER, source))
    made = own_green_event(misp)

    obj = MISPObject("domain-ip")
    obj.add_attribute("domain", value="evil.example")
    obj.add_attribute("ip", value="203.0.113.9").add_tag("tlp:red")
    added = misp.add_object(made, obj, pythonify=True)
    assert isinstance(added, MISPObject), added
    assert sorted(a.value for a in added.attributes) == ["203.0.113.9", "evil.example"]
    # The object goes whole under its highest label, on each of its attributes.
    assert all(tlp_tags(a) == {"tlp:red"} for a in added.attributes)
    added.comment = "edited"
    edited = misp.update_object(added, pythonify=True)
    assert isinstance(edited, MISPObject), edited
    assert edited.comment == "edited" and len(edited.attributes) == 2

    red = MISPEvent()
    red.info = "red event"
    red.distribution = 0
    red.add_tag("tlp:red")
    red.add_attribute("ip-dst", "192.0.2.66")
    got = misp.add_event(red, pythonify=True)
    assert isinstance(got, MISPEvent), got
    assert got.info == "red event" and [a.value for a in got.attributes] == ["192.0.2.66"]
    got.info = "red event, revised"
    revised = misp.update_event(got, pythonify=True)
    assert isinstance(revised, MISPEvent), revised
    assert revised.info == "red event, revised" and len(revised.attributes) == 1

    report = MISPEventReport()
    report.name = "red report"
    report.content = "only for us"
    written = misp.add_event_report(got, report, pythonify=True)
    assert isinstance(written, MISPEventReport), written
    assert (written.name, written.content) == ("red report", "only for us")


def test_a_sighting_on_another_source_s_element_releases_only_the_sighting(
    misp_url: str, factory
) -> None:
    """A partner writing about someone else's element is an ordinary recipient: its answer
    carries its sighting and nothing of an element it may not receive."""
    source = factory.partner("Z-CERT", type="sectoral-csirt")
    other = factory.partner("Other CERT", type="sectoral-csirt")
    mine = connect(misp_url, factory.key(Role.PARTNER, source))
    made = own_green_event(mine)
    red = mine.add_attribute(made, red_attribute("red.example"), pythonify=True)
    theirs = connect(misp_url, factory.key(Role.PARTNER, other))
    answer = theirs.add_sighting({"value": "red.example"})
    assert "red by its source" not in str(answer)
    assert theirs.get_attribute(red.uuid).get("errors")
