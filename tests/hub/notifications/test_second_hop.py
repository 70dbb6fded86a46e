"""`GET /api/v1/notifications?via=me` decides both hops again at fetch time with the partner
as it is now: NCSC → partner and partner → constituent. A partner that is the source of an
item gets its own items back (hop 1), but passing them on to its constituents (hop 2) is
under the TLP rules like anyone's; what either hop refuses now is removed and recorded.
Checked against an oracle written from DESIGN.md §3 (community addressing)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from hub.audit import addressing
from hub.db import session_scope
from hub.models import AuditEntry
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.notifications.test_routing import CEILING, RANK

VALUES = {"clear": "0.0.1", "green": "0.0.2", "amber": "0.0.3"}


def hop1(label: str, *, tier: str, accepted: bool, is_source: bool) -> str | None:
    """NCSC → partner for a community-addressed item; None = allowed, else the refusal."""
    if is_source:
        return None  # the source always receives its own items back
    return _community(label, tier=tier, accepted=accepted)


def hop2(label: str, *, tier: str, accepted: bool) -> str | None:
    """Partner → constituent: AMBER at most, and the partner's own limits; no exception for
    a partner that is the source."""
    if RANK[label] > RANK["amber"]:
        return "strict-no-forwarding"
    return _community(label, tier=tier, accepted=accepted)


def _community(label: str, *, tier: str, accepted: bool) -> str | None:
    if label != "clear" and not accepted:
        return "no-tlp-agreement"
    if RANK[label] > CEILING[tier]:
        return "above-tier-ceiling"
    return None


def _patch(client, auth, partner, tier, accepted):
    body = {"tier": tier, "tlp_accepted_at": "2026-01-01" if accepted else None}
    r = client.patch(f"/api/v1/admin/partners/{partner.uuid}", json=body, headers=auth)
    assert r.status_code == 200, r.text


def _last_release(maker, partner_uuid):
    """The last ``notify.release`` decision for the partner, whole: its delivery with what
    the refusal beside it (the operators' entry, ``hub.audit.addressing``) says was withheld."""
    with session_scope(maker) as s:
        rows = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "notify.release", AuditEntry.recipient_uuid == partner_uuid)
            .order_by(AuditEntry.seq.desc())
            .limit(2)
        ).all()
    last = rows[0]
    details = last.body["details"]
    if details.get("delivery") is not None:  # a refusal beside its delivery
        delivery = next(r for r in rows if r.seq == details["delivery"])
        return "allow", addressing.merged(delivery.body["details"], details)
    return last.decision, details


@pytest.mark.parametrize("is_source", [True, False], ids=["source-partner", "other-partner"])
def test_via_me_decides_both_hops_at_fetch_time(client, factory, desk, maker, auth, is_source):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    key = {"Authorization": factory.key(Role.PARTNER, isp)}
    made = {label: attr(f"10.{v}", label) for label, v in VALUES.items()}
    attrs = {a["uuid"]: label for label, a in made.items()}
    ev = event(tlp="clear", attributes=list(made.values()))
    desk.ingest(isp if is_source else source, ev)
    desk.drain()
    [first] = client.get("/api/v1/notifications?via=me", headers=key).json()["items"]
    assert len(first["observations"]) == 3  # routing let all of it through (core, agreed)

    for tier, accepted in itertools.product(("core", "ecosystem", "connection"), (True, False)):
        _patch(client, auth, isp, tier, accepted)
        r = client.get("/api/v1/notifications?via=me", headers=key)
        assert r.status_code == 200
        items = r.json()["items"]
        refusals = {}
        for uuid, label in attrs.items():
            refused = hop1(label, tier=tier, accepted=accepted, is_source=is_source)
            channel = "notify-partner"
            if refused is None:
                refused, channel = hop2(label, tier=tier, accepted=accepted), "notify-constituent"
            if refused is not None:
                refusals[uuid] = [channel, refused]
        expected = {u for u in attrs if u not in refusals}
        got = {o["attribute_uuid"] for item in items for o in item["observations"]}
        assert got == expected, (tier, accepted, is_source)
        for item in items:
            assert not any(f"10.{VALUES[attrs[u]]}" in item["text"] for u in refusals)
        decision, details = _last_release(maker, isp.uuid)
        removed = details["removed"].get(first["ticket"], [])
        assert {k: [c, why] for k, c, why in removed} == refusals, (tier, accepted)
        assert decision == ("allow" if expected else "deny")
