"""Matching: IPv4/IPv6 longest prefix, overlapping constituencies, ASNs, domains and
subdomains, sectors, direct targets; every match keeps its evidence."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.db import session_scope
from hub.models import Directive, Observation, Partner
from hub.notifications import matching
from hub.vocabulary import Role
from tests.builders import attr, event


def _matches(maker) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
    """(field, value) → {(partner name, route, matched entry)}."""
    out: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    with session_scope(maker) as session:
        owner = func.coalesce(Directive.via_partner_id, Directive.recipient_partner_id)
        rows = session.execute(
            select(Directive, Partner.name).join(Partner, Partner.id == owner)
        ).all()
        for d, name in rows:
            out.setdefault((d.field, d.value), set()).add((name, d.route, d.entry_value))
            assert d.rule_version == matching.RULE_VERSION
            assert d.entry_id > 0 and d.entry_table in ("constituency", "target")
    return out


def test_values_of_attribute_types():
    assert matching.values_of("ip-dst|port", "10.0.0.1|443") == [matching.Value("ip", "10.0.0.1")]
    assert matching.values_of("domain|ip", "A.Example.NL|2001:db8::1") == [
        matching.Value("domain", "a.example.nl"),
        matching.Value("ip", "2001:db8::1"),
    ]
    assert matching.values_of("url", "https://x.example.nl:8443/a?b") == [
        matching.Value("domain", "x.example.nl")
    ]
    assert matching.values_of("url", "http://198.51.100.9/x") == [
        matching.Value("ip", "198.51.100.9")
    ]
    assert matching.values_of("AS", "AS64500") == [matching.Value("asn", "64500")]
    assert matching.values_of("email-src", "a@mail.example.nl") == [
        matching.Value("domain", "mail.example.nl")
    ]
    assert matching.values_of("md5", "d41d8cd98f00b204e9800998ecf8427e") == []


def test_longest_prefix_domains_asns_sectors_and_direct_targets(client, factory, desk, maker, auth):
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    factory.partner(
        "ISP",
        constituency={
            "ip_prefixes": ["10.0.0.0/8", "2001:db8::/32"],
            "asns": [64500],
            "domains": ["example.nl"],
            "sectors": ["health"],
        },
    )
    factory.partner(
        "Z-CERT",
        type="sectoral-csirt",
        constituency={
            "ip_prefixes": ["10.1.0.0/16", "2001:db8:1::/48"],
            "domains": ["zorg.example.nl"],
        },
    )
    factory.partner("Other ISP", constituency={"ip_prefixes": ["10.1.0.0/16"]})  # overlaps exactly
    town = factory.partner("Gemeente", type="government", tier="connection")
    r = client.put(
        f"/api/v1/admin/notifications/targets/{town.uuid}",
        json={"ip_prefixes": ["10.9.9.0/24"], "domains": ["gemeente.example.nl"]},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert (
        client.put(
            f"/api/v1/admin/notifications/targets/{town.uuid}",
            json={},
            headers={"Authorization": factory.key(Role.PARTNER)},
        ).status_code
        == 403
    )
    ev = event(
        tlp=None,
        Tag=[{"name": "tlp:green"}, {"name": 'cwn:sector="health"'}],
        attributes=[
            attr("10.1.2.3"),
            attr("10.2.3.4", type="ip-src"),
            attr("2001:db8:1::5"),
            attr("2001:db8:ffff::5"),
            attr("10.9.9.9"),
            attr("AS64500", type="AS"),
            attr("a.b.zorg.example.nl", type="hostname"),
            attr("www.example.nl", type="domain"),
            attr("www.gemeente.example.nl", type="domain"),
            attr("192.0.2.1"),
            attr("notexample.nl", type="domain"),
        ],
    )
    desk.ingest(source, ev)
    desk.drain()
    got = _matches(maker)
    assert got[("ip", "10.1.2.3")] == {
        ("Z-CERT", "via", "10.1.0.0/16"),
        ("Other ISP", "via", "10.1.0.0/16"),
    }
    assert got[("ip", "10.2.3.4")] == {("ISP", "via", "10.0.0.0/8")}
    assert got[("ip", "2001:db8:1::5")] == {("Z-CERT", "via", "2001:db8:1::/48")}
    assert got[("ip", "2001:db8:ffff::5")] == {("ISP", "via", "2001:db8::/32")}
    assert got[("ip", "10.9.9.9")] == {("Gemeente", "direct", "10.9.9.0/24")}  # registered: direct
    assert got[("asn", "64500")] == {("ISP", "via", "64500")}
    assert got[("domain", "a.b.zorg.example.nl")] == {("Z-CERT", "via", "zorg.example.nl")}
    assert got[("domain", "www.example.nl")] == {("ISP", "via", "example.nl")}
    assert got[("domain", "www.gemeente.example.nl")] == {
        ("Gemeente", "direct", "gemeente.example.nl")
    }
    assert got[("sector", "health")] == {("ISP", "via", "health")}
    assert ("ip", "192.0.2.1") not in got and ("domain", "notexample.nl") not in got
    with session_scope(maker) as session:
        kinds = set(session.scalars(select(Observation.kind)))
    assert kinds == {"target"}


def test_victim_kind_from_tags(factory, desk, maker):
    source = factory.partner("Source")
    factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    ev = event(
        tlp=None,
        Tag=[{"name": "tlp:green"}, {"name": 'cwn:kind="victim"'}],
        attributes=[
            attr("10.0.0.1"),
            attr("10.0.0.2", Tag=[{"name": "tlp:green"}, {"name": 'cwn:kind="target"'}]),
        ],
    )
    desk.ingest(source, ev)
    desk.drain()
    with session_scope(maker) as session:
        kinds = dict(session.execute(select(Observation.value, Observation.kind)).all())
    assert kinds == {"10.0.0.1": "victim", "10.0.0.2": "target"}
