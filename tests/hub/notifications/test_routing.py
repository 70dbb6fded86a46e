"""Two-hop routing under every TLP label and addressing, checked against an oracle written
from DESIGN.md §3, independently of `tlp/`; denials are audited with their reason."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from hub.db import session_scope
from hub.models import AuditEntry, Directive, Observation
from tests.builders import attr, event

RANK = {"clear": 0, "green": 1, "amber": 2, "amber+strict": 3, "red": 4}
CEILING = {"core": 4, "ecosystem": 2, "connection": 1}


def to_partner(label: str, tier: str, named: bool, distribution: int) -> bool:
    """Hop 1 (NCSC → partner, or to a directly registered target)."""
    rank = RANK[label]
    if rank > CEILING[tier]:
        return False
    if distribution == 4:
        return named
    return rank <= RANK["amber"]  # AMBER+STRICT and RED need naming


def to_constituent(label: str, tier: str, named: bool, distribution: int) -> bool:
    """Hop 2 (partner → its constituent): AMBER at most, never AMBER+STRICT or RED."""
    return RANK[label] <= RANK["amber"] and to_partner(label, tier, named, distribution)


def test_two_hop_routing_matches_the_oracle(client, factory, desk, maker, auth):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    isp = factory.partner("ISP", tier="core", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    eco = factory.partner("ECO", tier="ecosystem", constituency={"ip_prefixes": ["11.0.0.0/8"]})
    town = factory.partner("Town", type="government", tier="connection")
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"ip_prefixes": ["12.0.0.0/8"]},
        headers=auth,
    )
    assert r.status_code == 200
    who = {
        "10": ("ISP", "core", isp.uuid),
        "11": ("ECO", "ecosystem", eco.uuid),
        "12": ("Town", "connection", town.uuid),
    }
    cases = {}
    for i, (label, dist, named) in enumerate(itertools.product(RANK, (1, 4), (True, False))):
        if dist == 1 and not named:
            continue
        members = [source.uuid] + ([isp.uuid, eco.uuid, town.uuid] if named else [])
        attrs = [attr(f"{net}.0.0.{i}", label) for net in who]
        ev = event(
            f"{label} d{dist}", tlp="clear", distribution=dist, members=members, attributes=attrs
        )
        desk.ingest(source, ev)
        for net in who:
            cases[f"{net}.0.0.{i}"] = (label, dist, named)
    desk.drain()
    with session_scope(maker) as session:
        rows = session.execute(
            select(Directive, Observation.value).join(
                Observation, Observation.id == Directive.observation_id
            )
        ).all()
        denials = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "notify.deny")
        ).all()
        denied_reasons = {(e.channel, e.body["details"]["reason"]) for e in denials}
    assert len(rows) == len(cases)
    for d, value in rows:
        label, dist, named = cases[value]
        name, tier, _ = who[value.split(".")[0]]
        hop1 = to_partner(label, tier, named, dist)
        if name == "Town":
            assert d.route == "direct" and len(d.hops) == 1
            assert d.hops[0]["channel"] == "notify-partner"
            assert d.allowed is hop1, (value, label, dist, named, d.hops)
        else:
            assert d.route == "via" and [h["channel"] for h in d.hops] == [
                "notify-partner",
                "notify-constituent",
            ]
            assert d.hops[0]["allowed"] is hop1, (value, label, d.hops)
            hop2 = to_constituent(label, tier, named, dist)
            assert d.hops[1]["allowed"] is hop2, (value, label, dist, named, d.hops)
            assert d.allowed is (hop1 and hop2)
            if label == "amber+strict" and hop1:
                assert d.hops[1]["reason"] == "strict-no-forwarding"
            if label == "red":
                assert d.hops[1]["reason"] == "red-channel-forbidden"
        assert d.state == ("notified" if d.allowed else "denied")
        for hop in d.hops:
            if not hop["allowed"]:
                assert (hop["channel"], hop["reason"]) in denied_reasons
    assert ("notify-constituent", "strict-no-forwarding") in denied_reasons
    assert ("notify-constituent", "red-channel-forbidden") in denied_reasons
    assert ("notify-partner", "above-tier-ceiling") in denied_reasons
