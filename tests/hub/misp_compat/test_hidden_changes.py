"""A change a partner cannot see leaves its copy of the event as it was, on every channel
(DESIGN.md §3, "What leaves the hub": the same answer whether hidden data exists or not).

Found by a black-box attack: adding, editing, tagging or deleting an element hidden from a
partner through the ``/misp`` write API turned the partner's copy unpublished and moved its
timestamp (and the STIX container's ``modified``), and deleting an element it never received
moved its timestamp too: an activity oracle on hidden content. The event's creator writes
with real PyMISP; the partner reads each channel with the TestClient. Each test failed
before the event's publication and timestamp were decided per recipient.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from pymisp import MISPAttribute, MISPEvent, PyMISP
from sqlalchemy import func, select

from hub.db import session_scope
from hub.models import Event, EventVersion, Partner
from hub.vocabulary import Role
from tests.hub.connections.conftest import (
    Remote,
    add_connection,
    remote,  # noqa: F401 - a second hub to push to
    run,
)
from tests.hub.misp_compat.conftest import MISP_HEADERS

TAXII = {"Accept": "application/taxii+json;version=2.1"}
RED_VALUE = "192.0.2.66"
RED_UUID = "5f0c2a1e-6d5b-4c1e-9a51-0b9d3c1a7e01"
STRICT_VALUE = "192.0.2.88"
LOCAL_VALUE = "192.0.2.77"


class Reader:
    """The partner's view of one event on one channel: the text it is served, and the
    event's timestamp, publication and publish time in it."""

    def __init__(self, client: Any, key: str, uuid: str) -> None:
        self.client = client
        self.key = key
        self.uuid = uuid

    @property
    def headers(self) -> dict[str, str]:
        return {**MISP_HEADERS, "Authorization": self.key}

    def get(self, path: str, **params: Any) -> Any:
        r = self.client.get(path, params=params, headers=self.headers)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = self.client.post(path, json=body, headers=self.headers)
        assert r.status_code == 200, (path, r.text)
        return r.json()

    def mine(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        [found] = [i for i in items if i.get("uuid") == self.uuid]
        return found

    # --- one method per channel: (served text, (timestamp, published, publish_timestamp))

    def rest_list(self) -> tuple[str, tuple[Any, ...]]:
        item = self.mine(self.get("/api/v1/events", limit="100")["items"])
        published = self.get("/api/v1/events", published="true")["items"]
        return _text(item, published), (int(item["timestamp"]), item["published"], None)

    def rest_view(self) -> tuple[str, tuple[Any, ...]]:
        body = self.get(f"/api/v1/events/{self.uuid}")
        ev = body["Event"]
        return _text(body), _fields(ev)

    def misp_index(self) -> tuple[str, tuple[Any, ...]]:
        row = self.mine(self.post("/misp/events/index", {}))
        published = self.post("/misp/events/index", {"published": 1})
        minimal = self.mine(self.post("/misp/events/index", {"minimal": 1}))
        return _text(row, published, minimal), _fields(row)

    def misp_view(self) -> tuple[str, tuple[Any, ...]]:
        body = self.get(f"/misp/events/view/{self.uuid}")
        return _text(body), _fields(body["Event"])

    def misp_rest_search(self) -> tuple[str, tuple[Any, ...]]:
        found = self.post("/misp/events/restSearch", {"uuid": self.uuid})["response"]
        published = self.post("/misp/events/restSearch", {"uuid": self.uuid, "published": 1})
        assert len(found) == 1
        return _text(found, published), _fields(found[0]["Event"])

    def misp_attribute_search(self) -> tuple[str, tuple[Any, ...]]:
        body = {"eventid": self.uuid, "includeContext": 1}
        found = self.post("/misp/attributes/restSearch", body)["response"]["Attribute"]
        published = self.post("/misp/attributes/restSearch", {**body, "published": 1})
        assert found
        return _text(found, published), _fields(found[0]["Event"])

    def taxii(self) -> tuple[str, tuple[Any, ...]]:
        r = self.client.get(
            "/taxii2/cwn/collections/all/objects/",
            headers={**TAXII, "Authorization": self.key},
        )
        assert r.status_code == 200, r.text
        # Compared as a set: the page order (``date_added``) is a known gap (README).
        objects = sorted(r.json()["objects"], key=lambda o: o["id"])
        [container] = [o for o in objects if o["type"] in ("report", "grouping")]
        return _text(objects), (container["modified"], None, None)


CHANNELS = [
    "rest_list",
    "rest_view",
    "misp_index",
    "misp_view",
    "misp_rest_search",
    "misp_attribute_search",
    "taxii",
]


def _text(*parts: Any) -> str:
    return json.dumps(parts, sort_keys=True)


def _fields(ev: dict[str, Any]) -> tuple[Any, ...]:
    return (int(ev["timestamp"]), ev["published"], int(ev["publish_timestamp"]))


def _labelled(value: str, label: str = "tlp:red", **fields: Any) -> MISPAttribute:
    a = MISPAttribute()
    a.from_dict(type="ip-dst", value=value, **fields)
    a.add_tag(label)
    return a


@pytest.fixture
def scene(misp_url: str, client: Any, factory: Any) -> tuple[PyMISP, MISPEvent, Any]:
    return _scene(misp_url, client, factory, factory.partner("Z-CERT", type="sectoral-csirt"))


def _scene(
    misp_url: str, client: Any, factory: Any, source: Partner
) -> tuple[PyMISP, MISPEvent, Any]:
    """A GREEN event for all communities, published by its creator with PyMISP: one
    attribute the partner (ecosystem tier: up to AMBER) receives, and a RED, an AMBER+STRICT
    and a "this community only" (distribution 0) one it does not."""
    partner = factory.partner("P-eco", tier="ecosystem", tlp=True)
    misp = PyMISP(misp_url, factory.key(Role.PARTNER, source), ssl=False, timeout=30)
    ev = MISPEvent()
    ev.info = "hidden changes"
    ev.distribution = 3
    ev.add_tag("tlp:green")
    ev.add_attribute("ip-dst", "198.51.100.7", to_ids=True)
    ev.add_attribute("ip-dst", RED_VALUE, uuid=RED_UUID, Tag=[{"name": "tlp:red"}])
    ev.add_attribute("ip-dst", STRICT_VALUE, Tag=[{"name": "tlp:amber+strict"}])
    ev.add_attribute("ip-dst", LOCAL_VALUE, distribution=0)
    ev.publish()
    made = misp.add_event(ev, pythonify=True)
    assert isinstance(made, MISPEvent) and made.published, made
    return misp, made, (client, factory.key(Role.PARTNER, partner), made.uuid)


def _hidden_changes(misp: PyMISP, made: MISPEvent, client: Any) -> list[Callable[[], Any]]:
    """Each change the partner cannot see, as the creator's scripts make them."""
    strict = next(a for a in made.attributes if a.value == STRICT_VALUE)
    local = next(a for a in made.attributes if a.value == LOCAL_VALUE)

    def rest_delete() -> Any:
        # A REST submission deleting an element the partner never received.
        gone = {"uuid": RED_UUID, "type": "ip-dst", "value": RED_VALUE, "deleted": True}
        body = {
            "uuid": made.uuid,
            "info": made.info,
            "distribution": 3,
            "published": True,
            "Tag": [{"name": "tlp:green"}],
            "Attribute": [{**gone, "Tag": [{"name": "tlp:red"}]}],
        }
        r = client.post("/api/v1/events", json={"Event": body}, headers={"Authorization": misp.key})
        assert r.status_code in (200, 201), r.text
        return r.json()

    return [
        lambda: misp.add_attribute(made, _labelled("192.0.2.200")),
        lambda: misp.add_attribute(made, _labelled("192.0.2.201", "tlp:amber+strict")),
        lambda: misp.add_attribute(
            made, {"type": "ip-dst", "value": "192.0.2.202", "distribution": 0}
        ),
        lambda: misp.update_attribute({"comment": "edited, still hidden"}, strict.uuid),
        lambda: misp.tag(strict.uuid, "kill-chain:delivery"),
        lambda: misp.delete_attribute(strict.uuid),
        lambda: misp.publish(made),  # publishing what the partner cannot see
        rest_delete,
        lambda: misp.delete_attribute(local.uuid),
    ]


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_hidden_change_leaves_the_partners_copy_as_it_was(scene: Any, channel: str) -> None:
    misp, made, (client, partner_key, uuid) = scene
    read = getattr(Reader(client, partner_key, uuid), channel)
    before, fields = read()
    if fields[1] is not None:
        assert fields[1] is True  # published for the partner
    for step, change in enumerate(_hidden_changes(misp, made, client)):
        answer = change()
        assert not (isinstance(answer, dict) and answer.get("errors")), (step, answer)
        after, _fields_after = read()
        assert after == before, f"step {step} changed the partner's {channel}"
    # The creator sees its event changed, unpublished by the last /misp delete, as MISP does.
    own = misp.get_event(uuid, pythonify=True)
    assert not own.published and own.timestamp.timestamp() > made.timestamp.timestamp()


def test_changes_the_partner_sees_unpublish_its_copy_and_move_its_timestamp(scene: Any) -> None:
    """The other side: hiding changes must not make visible ones look published."""
    misp, made, (client, partner_key, uuid) = scene
    reader = Reader(client, partner_key, uuid)
    first = {channel: getattr(reader, channel)() for channel in CHANNELS}
    misp.add_attribute(made, _labelled("192.0.2.203"))  # hidden: nothing moves
    misp.add_attribute(made, {"type": "domain", "value": "seen.example"})  # GREEN: seen
    for channel in CHANNELS:
        text, (stamp, published, _at) = getattr(reader, channel)()
        assert text != first[channel][0], channel
        if channel != "taxii":  # a STIX container's modified follows the event's own fields
            assert stamp > first[channel][1][0], channel
        if published is not None:
            assert published is False, channel
    misp.publish(made)
    for channel in CHANNELS:
        _stamp, published, at = getattr(reader, channel)()[1]
        if published is not None:
            assert published is True, channel
        if at is not None:
            assert at >= first[channel][1][2], channel
    # Deleting what the partner had received reaches it as a change.
    seen = reader.misp_view()[1]
    received = next(a for a in made.attributes if a.value == "198.51.100.7")
    misp.delete_attribute(received.uuid)
    stamp, published, _at = reader.misp_view()[1]
    assert stamp > seen[0] and published is False


def test_a_push_never_carries_a_change_the_partner_cannot_see(
    misp_url: str,
    client: Any,
    factory: Any,
    hub_org: Partner,
    maker: Any,
    remote: Remote,  # noqa: F811 - the fixture imported above
) -> None:
    """Push connections: a version whose only changes are hidden from the partner (and the
    publication of such changes) sends nothing; a visible change goes out as an edit. (The
    hub pushes its own organisation's events: a MISP relays no other's without a relay
    permission.)"""
    misp, made, (_client, _key, uuid) = _scene(misp_url, client, factory, hub_org)
    with session_scope(maker, write=False) as session:
        partner = session.scalar(select(Partner).where(Partner.name == "P-eco"))
    conn = add_connection(
        maker, name="eco", kind="misp-push", url=remote.misp_url, partner=partner, key=remote.key
    )
    first = run(maker, conn)
    assert first.stats.get("added") == 1, first.stats
    for change in _hidden_changes(misp, made, _client):
        change()
        job = run(maker, conn)
        assert not {"added", "edited", "not-newer"} & set(job.stats), job.stats
    assert _remote_versions(remote) == {uuid: 1}
    misp.add_attribute(made, {"type": "domain", "value": "seen.example"})
    misp.publish(made)
    job = run(maker, conn)
    assert job.stats.get("edited") == 1, job.stats
    assert _remote_versions(remote) == {uuid: 2}


def _remote_versions(other: Remote) -> dict[str, int]:
    with session_scope(other.maker, write=False) as session:
        return dict(
            session.execute(
                select(Event.uuid, func.count(EventVersion.id))
                .join(EventVersion, EventVersion.event_id == Event.id)
                .group_by(Event.uuid)
            ).all()
        )


@pytest.mark.parametrize("sort", ["timestamp", "publish_timestamp"])
def test_a_hidden_change_does_not_move_the_event_in_the_index_order(
    scene: Any, maker: Any, sort: str
) -> None:
    """The `/misp` index sorted by ``timestamp`` or ``publish_timestamp`` orders events by
    the partner's own values: a hidden change (and its publication) of an older event does
    not put it after a newer one, on a page or in the whole list."""
    misp, made, (client, partner_key, uuid) = scene
    time.sleep(1.1)
    newer = MISPEvent()
    newer.info = "newer"
    newer.distribution = 3
    newer.add_tag("tlp:green")
    newer.add_attribute("domain", "newer.example")
    newer.publish()
    later = misp.add_event(newer, pythonify=True)
    assert isinstance(later, MISPEvent), later
    reader = Reader(client, partner_key, uuid)

    def order(**extra: Any) -> list[str]:
        body = {"sort": sort, "direction": "asc", **extra}
        return [r["uuid"] for r in reader.post("/misp/events/index", body)]

    assert order() == [uuid, later.uuid]
    time.sleep(1.1)
    misp.add_attribute(made, _labelled("192.0.2.210"))  # RED: hidden from the partner
    misp.publish(made)
    with session_scope(maker, write=False) as session:
        stored = session.scalar(select(getattr(Event, sort)).where(Event.uuid == uuid))
        other = session.scalar(select(getattr(Event, sort)).where(Event.uuid == later.uuid))
    assert stored > other  # the stored order moved
    assert order() == [uuid, later.uuid]
    assert order(limit=1, page=1) == [uuid]
    assert order(limit=1, page=2) == [later.uuid]
    assert order(direction="desc", limit=1, page=1) == [later.uuid]


def test_the_change_feed_does_not_list_an_event_again_after_a_hidden_change(scene: Any) -> None:
    """The REST change feed (``GET /api/v1/events``, oldest change first, keyset cursor): an
    event the partner was shown comes back after its cursor only when the partner's copy
    changed. A hidden change moved the stored position, and before the fix the event came
    back, unchanged, after a newer one: an activity oracle on hidden content."""
    misp, made, (client, partner_key, uuid) = scene
    newer = MISPEvent()
    newer.info = "newer"
    newer.distribution = 3
    newer.add_tag("tlp:green")
    newer.add_attribute("domain", "newer.example")
    later = misp.add_event(newer, pythonify=True)
    assert isinstance(later, MISPEvent), later
    reader = Reader(client, partner_key, uuid)
    first = reader.get("/api/v1/events", limit="1")
    assert [i["uuid"] for i in first["items"]] == [uuid]
    cursor = first["next_cursor"]
    assert cursor

    def rest() -> list[str]:
        return [i["uuid"] for i in reader.get("/api/v1/events", cursor=cursor)["items"]]

    assert rest() == [later.uuid]
    misp.add_attribute(made, _labelled("192.0.2.211"))  # RED: hidden from the partner
    misp.publish(made)
    assert rest() == [later.uuid]
    # What the partner does see brings the event back, from the same cursor.
    misp.add_attribute(made, {"type": "domain", "value": "seen-again.example"})
    assert rest() == [later.uuid, uuid]
    # Paging on with a cursor issued after that change still reaches it, once.
    again = reader.get("/api/v1/events", limit="1", cursor=cursor)
    assert [i["uuid"] for i in again["items"]] == [later.uuid]
    tail = reader.get("/api/v1/events", cursor=again["next_cursor"])["items"]
    assert [i["uuid"] for i in tail] == [uuid]
    last = reader.get("/api/v1/events", limit="1", cursor=again["next_cursor"])
    assert last["next_cursor"] is None
