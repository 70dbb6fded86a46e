"""A partner's own audit entries say nothing of versions it could not see (DESIGN.md §3,
"What leaves the hub": the same answer whether hidden data exists or not).

Found by a black-box attack: each delivery entry a partner reads (the one its answer names
in ``X-Hub-Audit-Seq``, and so each row of ``/api/v1/me/releases``) listed the event's
internal version number, which also counts changes the partner could not see: receiving
versions 1 and 3 told it that a version 2 existed, hidden from it. Each test failed before
the internal version became the operators' and auditors' (``hub.audit.addressing``).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from hub.audit import addressing
from hub.vocabulary import Role
from tests.builders import attr, event


def _leaf(client: Any, key: str, seq: int) -> dict[str, Any]:
    r = client.get(f"/api/v1/audit/entries/{seq}", headers={"Authorization": key})
    assert r.status_code == 200, r.text
    return orjson.loads(base64.b64decode(r.json()["leaf"]))


def _receive(client: Any, key: str, uuid: str) -> list[dict[str, Any]]:
    """The partner fetches the event (view and list) and reads the entries that recorded
    both deliveries: (event returned, entry) per channel."""
    h = {"Authorization": key}
    out = []
    for path in (f"/api/v1/events/{uuid}", "/api/v1/events?limit=100"):
        r = client.get(path, headers=h)
        assert r.status_code == 200, r.text
        out.append(
            {"answer": r.json(), "entry": _leaf(client, key, int(r.headers["X-Hub-Audit-Seq"]))}
        )
    return out


def _seen(delivery: dict[str, Any]) -> list[Any]:
    """What the partner's entry says of the event, without what differs in every entry."""
    details = dict(delivery["entry"]["details"])
    details.pop("sealed", None)  # a fresh commitment in every entry
    return [delivery["entry"]["action"], details]


def test_a_hidden_version_leaves_no_trace_in_the_partners_entries(client, factory, auth) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    partner = factory.partner("ISP", tier="connection", tlp=True)
    src = {"Authorization": factory.key(Role.PARTNER, source)}
    key = factory.key(Role.PARTNER, partner)
    green = attr("198.51.100.10", "green", timestamp="1700000001")
    ev = event("versions", tlp="green", distribution=3, attributes=[green], timestamp=1_700_000_001)
    uuid = ev["Event"]["uuid"]
    assert client.post("/api/v1/events", json=ev, headers=src).status_code == 201
    first = _receive(client, key, uuid)

    red = attr("192.0.2.99", "red", timestamp="1700000002")  # v2: hidden from the partner
    ev["Event"]["Attribute"].append(red)
    ev["Event"]["timestamp"] = "1700000002"
    r = client.post("/api/v1/events", json=ev, headers=src)
    assert r.status_code in (200, 201), r.text
    second = _receive(client, key, uuid)
    # The partner's copy did not change, and neither does what its entries say.
    assert [d["answer"] for d in second] == [d["answer"] for d in first]
    assert [_seen(d) for d in second] == [_seen(d) for d in first]

    more = attr("198.51.100.11", "green", timestamp="1700000003")  # v3: seen by the partner
    ev["Event"]["Attribute"].append(more)
    ev["Event"]["timestamp"] = "1700000003"
    r = client.post("/api/v1/events", json=ev, headers=src)
    assert r.status_code in (200, 201), r.text
    third = _receive(client, key, uuid)
    for delivery in first + second + third:
        text = orjson.dumps(delivery["entry"]).decode()
        for row in delivery["entry"]["details"]["releases"]:
            if row[0] == uuid:
                assert row[1] is None, text  # no version number, internal or otherwise
        assert "event_version" not in text and '"versions"' not in text, text

    # /me/releases: the same deliveries, naming the same entries, and no version.
    mine = client.get("/api/v1/me/releases", headers={"Authorization": key})
    assert mine.status_code == 200, mine.text
    rows = [i for i in mine.json()["items"] if i["event_uuid"] == uuid]
    assert len(rows) == 6 and all(
        set(i) == {"released_at", "channel", "event_uuid", "tlp", "audit_seq"} for i in rows
    )

    # Operators and auditors still trace exactly which internal version went to whom.
    r = client.get(f"/api/v1/admin/events/{uuid}/releases", headers=auth)
    assert r.status_code == 200, r.text
    got = [i["event_version"] for i in r.json()["items"] if i["recipient"] == partner.uuid]
    assert sorted(got) == [1, 1, 2, 2, 3, 3], r.json()


def test_an_entry_with_a_version_is_not_its_recipients() -> None:
    """The rule itself: a delivery's rows go out without the version, which the entry's
    internal part keeps; an entry that still names one is not readable by its recipient."""
    page = {"policy_version": "1", "releases": [["e1", 3, True, "listed", "green", 0]]}
    public, internal = addressing.versions_apart(page)
    assert public == {"policy_version": "1", "releases": [["e1", None, True, "listed", "green", 0]]}
    assert internal == {"versions": [3]}
    assert addressing.readable_by_recipient("allow", public)
    assert not addressing.readable_by_recipient("allow", page)
    note = {"kind": "retract", "attributes": ["a1"], "event_version": 4}
    public, internal = addressing.versions_apart(note)
    assert public == {"kind": "retract", "attributes": ["a1"]} and internal == {"event_version": 4}
    assert addressing.readable_by_recipient(None, public)
    assert not addressing.readable_by_recipient(None, note)
    assert addressing.versions_apart({"kind": "feedback"}) == ({"kind": "feedback"}, None)


def test_the_internal_part_is_sealed_into_the_entry(client, factory, auth, maker) -> None:
    """The internal part is outside the bytes the partner reads, but the entry commits to it:
    changing it is caught by ``hub audit verify``."""
    from sqlalchemy import select

    from hub.audit import service as audit
    from hub.db import session_scope
    from hub.models import AuditEntry

    test_a_hidden_version_leaves_no_trace_in_the_partners_entries(client, factory, auth)
    with session_scope(maker) as session:
        assert audit.verify(session).ok
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.internal.is_not(None)).order_by(AuditEntry.seq)
        ).first()
        assert entry is not None and entry.body["details"]["sealed"]
        assert entry.internal is not None and entry.internal["versions"] == [1]
        session.expunge(entry)
        entry.internal = {**entry.internal, "versions": [2]}
        assert audit.check_entry(entry, expected_seq=entry.seq, prev=entry.prev_hash) is not None
