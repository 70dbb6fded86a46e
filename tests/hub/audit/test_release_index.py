"""The releases index is derived from the audit log in batches: complete, in order, once."""

from __future__ import annotations

from sqlalchemy import select

from hub.audit import releases
from hub.audit import service as audit
from hub.db import session_scope
from hub.models import Release
from hub.vocabulary import Role

ALICE = "00000000-0000-4000-8000-00000000000a"


def deliver(maker, items: list[list], recipient: str = ALICE) -> int:
    with session_scope(maker) as s:
        return audit.append(
            s,
            [
                audit.Record(
                    action="release.page",
                    actor="test",
                    recipient_uuid=recipient,
                    channel="rest",
                    details={"releases": items},
                )
            ],
        )[0]


def indexed(maker) -> list[tuple]:
    with maker() as s:
        return [
            (r.audit_seq, r.event_uuid, r.event_version, r.allowed, r.reason, r.tlp, r.removed)
            for r in s.scalars(select(Release).order_by(Release.id))
        ]


def test_catch_up_indexes_every_item_once_in_log_order(maker) -> None:
    first = deliver(
        maker, [["e1", 1, True, "listed", "TLP:GREEN", 0], ["e2", None, False, "x", None, 0]]
    )
    with session_scope(maker) as s:
        assert releases.catch_up(s) == 1
    second = deliver(maker, [["e3", 4, True, "delivered", "TLP:AMBER", 2]])
    deliver(maker, [])  # an entry without items indexes nothing but is passed over
    assert len(indexed(maker)) == 2  # not yet indexed: readers must catch up first
    with session_scope(maker) as s:
        assert releases.catch_up(s) == 2
        assert releases.catch_up(s) == 0  # nothing twice
    assert indexed(maker) == [
        (first, "e1", 1, True, "listed", "TLP:GREEN", 0),
        (first, "e2", None, False, "x", None, 0),
        (second, "e3", 4, True, "delivered", "TLP:AMBER", 2),
    ]


def test_readers_see_a_delivery_at_once(client, maker, factory, auth) -> None:
    """The operator and partner views catch up before they read: no delivery is missing."""
    partner = factory.partner()
    key = factory.key(Role.PARTNER, partner)
    seq = deliver(maker, [["e9", 1, True, "delivered", "TLP:CLEAR", 0]], recipient=partner.uuid)
    seen = client.get(f"/api/v1/admin/partners/{partner.uuid}/releases", headers=auth).json()
    assert [(r["event_uuid"], r["audit_seq"]) for r in seen["items"]] == [("e9", seq)]
    mine = client.get("/api/v1/me/releases", headers={"Authorization": key}).json()
    assert [(r["event_uuid"], r["audit_seq"]) for r in mine["items"]] == [("e9", seq)]
