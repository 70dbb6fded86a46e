"""Regression (#13, F8): what a partner sees of its notifications carries no hub-wide
counter. Ticket references (REST, ``via=me``, e-mail) and the node ids of its lineage view
were sequential for the whole hub, so two tickets told a partner how many notifications
others got in between; its lineage view showed the event's version number, which moves with
edits it never received."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from hub.db import session_scope
from hub.models import EventVersion
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr, event
from tests.hub.notifications.test_mail import (  # noqa: F401 - fixtures
    contact,
    json_of,
    mailing,
    mid,
    sink,
    smtp_port,
)

# CWN-<year>-<code>-<code>, in Crockford's base32: nothing in it counts anything
TICKET = re.compile(r"CWN-\d{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def _three_notes(factory: Any, desk: Any, **partner: Any) -> tuple[Any, Any]:
    """A's notification, then B's (for an event A cannot see), then A's again."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    a = factory.partner("ISP A", constituency={"ip_prefixes": ["10.1.0.0/16"]}, **partner)
    b = factory.partner("ISP B", constituency={"ip_prefixes": ["10.2.0.0/16"]})
    for value in ("10.1.1.1", "10.2.2.2", "10.1.3.3"):
        desk.ingest(source, event(tlp="green", attributes=[attr(value)]))
        desk.drain()
    return a, b


def _ids(graph: dict[str, Any]) -> set[str]:
    ids = {a["id"] for a in graph["artifacts"]} | {a["id"] for a in graph["activities"]}
    ids |= {a["generated_by"] for a in graph["artifacts"] if a["generated_by"]}
    ids |= {x for d in graph["derivations"] for x in (d["derived"], d["source"], d["activity"])}
    return ids | {x for u in graph["uses"] for x in (u["activity"], u["artifact"])}


def test_tickets_and_lineage_ids_give_no_sign_of_others(client, factory, desk, maker, auth):
    a, b = _three_notes(factory, desk)
    key_a = {"Authorization": factory.key(Role.PARTNER, a)}
    key_b = {"Authorization": factory.key(Role.PARTNER, b)}
    mine = client.get("/api/v1/notifications?via=me", headers=key_a).json()["items"]
    [theirs] = client.get("/api/v1/notifications?via=me", headers=key_b).json()["items"]
    assert len(mine) == 2
    for item in [*mine, theirs]:
        assert TICKET.fullmatch(item["ticket"]), item["ticket"]
        assert item["text"].startswith(f"[{item['ticket']}]")
        one = client.get(f"/api/v1/notifications/{item['ticket']}", headers=key_a)
        assert one.status_code == (200 if item in mine else 404)
    assert len({i["ticket"] for i in [*mine, theirs]}) == 3
    graphs = {}
    for who, key, item in ((a, key_a, mine[1]), (b, key_b, theirs)):
        for fmt in ("json", "prov-json"):
            r = client.get(
                f"/api/v1/notifications/{item['ticket']}/lineage?format={fmt}", headers=key
            )
            assert r.status_code == 200
            assert not re.search(r"(artifact|activity)[:_]\d+\b", r.text), r.text
        graphs[who.uuid] = r = client.get(
            f"/api/v1/notifications/{item['ticket']}/lineage", headers=key
        ).json()["graph"]
        ids = _ids(r)
        assert all(re.fullmatch(r"(artifact|activity):[0-9a-f]{24}", i) for i in ids)
    # scoped to the caller and the ticket: nothing to match between two partners' views
    assert not _ids(graphs[a.uuid]) & _ids(graphs[b.uuid])
    # stable: the same view again has the same ids
    again = client.get(f"/api/v1/notifications/{mine[1]['ticket']}/lineage", headers=key_a)
    assert {x["id"] for x in again.json()["graph"]["artifacts"]} == {
        x["id"] for x in graphs[a.uuid]["artifacts"]
    }
    # the operator still sees the stored ids
    op = client.get(f"/api/v1/admin/lineage/notifications/{mine[1]['ticket']}", headers=auth)
    assert all(re.fullmatch(r"artifact:\d+", x["id"]) for x in op.json()["graph"]["artifacts"])


def test_mail_names_only_the_opaque_ticket(client, factory, desk, maker, sink, mailing):  # noqa: F811
    a, _ = _three_notes(factory, desk, contacts=[contact("cert@isp-a.example")])
    run_due(maker, mailing)
    mails = [m for to, m in sink.received if to == ["cert@isp-a.example"]]
    assert len(mails) == 2
    for msg in mails:
        ticket = str(msg["X-CWN-Ticket"])
        assert TICKET.fullmatch(ticket)
        assert f"[{ticket}]" in str(msg["Subject"])
        assert mid(msg).startswith(f"<{ticket}.")
        assert json_of(msg)["ticket"] == ticket
        assert not re.search(r"CWN-\d{8}-\d+", msg.as_string())


def test_lineage_version_moves_only_with_what_the_partner_received(
    client, factory, desk, maker, auth
):
    """Version 1 of the event holds only an AMBER observation, hidden from a partner of the
    connection tier; version 2 adds a GREEN one it is notified of. Its lineage view shows
    the event as its first version (what it received), the operator's the stored 2."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", tier="connection", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    key = {"Authorization": factory.key(Role.PARTNER, isp)}
    hidden = attr("10.9.9.9", "amber")
    ev = event(tlp="green", attributes=[hidden])
    uuid = ev["Event"]["uuid"]
    desk.ingest(source, ev)
    desk.drain()
    assert client.get("/api/v1/notifications?via=me", headers=key).json()["items"] == []
    desk.ingest(source, event(tlp="green", uuid=uuid, attributes=[hidden, attr("10.1.1.1")]))
    desk.drain()
    with session_scope(maker) as s:
        assert max(s.scalars(select(EventVersion.version))) == 2
    [note] = client.get("/api/v1/notifications?via=me", headers=key).json()["items"]
    assert [o["value"] for o in note["observations"]] == ["10.1.1.1"]
    path = f"/api/v1/notifications/{note['ticket']}/lineage"
    graph = client.get(path, headers=key).json()["graph"]
    events = [x for x in graph["artifacts"] if x["kind"] == "event"]
    assert [(x["external_id"], x["version"]) for x in events] == [(uuid, 1)]
    prov = client.get(f"{path}?format=prov-json", headers=key).json()
    entities = [e for v in prov["entity"].values() for e in (v if isinstance(v, list) else [v])]
    versions = [e["cwn:version"]["$"] for e in entities if e.get("cwn:kind") == "event"]
    assert versions == ["1"]
    op = client.get(f"/api/v1/admin/lineage/notifications/{note['ticket']}", headers=auth).json()
    assert max(x["version"] for x in op["graph"]["artifacts"] if x["kind"] == "event") == 2
