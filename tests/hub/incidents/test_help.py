""" "Who helps me now": ordering and reasons in and outside a designated sector, in the
European Netherlands and the Caribbean parts; the reporting duties; the advisories through
the release path (the public route: TLP:CLEAR only, never probing the constituencies); the
public route's rate limit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.incidents import service
from hub.incidents.schemas import IncidentSupportBody
from hub.main import create_app
from hub.models import AuditEntry, Partner
from hub.vocabulary import Role
from tests.builders import event

PUBLIC = "/public/incident-help"
HELP = "/api/v1/incidents/help"
CONTACT = {"name": "Duty", "email": "duty@example.nl", "phone": "+31 70 000 0000"}


def support(maker: sessionmaker[Session], partner: Partner, **fields: Any) -> None:
    body = IncidentSupportBody(
        **{"services": ["triage"], "availability": "office-hours", "contact": CONTACT, **fields}
    )
    with session_scope(maker) as session:
        owner = session.get(Partner, partner.id)
        assert owner is not None
        service.put_support(session, partner=owner, body=body, actor="test")


@pytest.fixture
def network(factory: Any, maker: sessionmaker[Session], hub_org: Partner) -> dict[str, Partner]:
    handling = ["incident-handling"]
    p: dict[str, Partner] = {}
    p["zcert"] = factory.partner(
        "Z-CERT",
        type="sectoral-csirt",
        legal_status="designated-csirt",
        sectors=["health"],
        functions=handling,
    )
    support(
        maker, p["zcert"], audience=["sector"], sectors=["health"], availability="24x7", public=True
    )
    p["isp"] = factory.partner(
        "Example ISP",
        functions=handling,
        constituency={"ip_prefixes": ["192.0.2.0/24"], "asns": [64500], "domains": ["isp.example"]},
    )
    support(maker, p["isp"], audience=["constituency"], availability="24x7", public=True)
    p["isac"] = factory.partner(
        "Care ISAC", type="isac", functions=handling, constituency={"domains": ["ziekenhuis.nl"]}
    )
    support(maker, p["isac"], audience=["members-only"], public=True)
    p["msp"] = factory.partner("Island MSP", type="msp", region="curacao", functions=handling)
    support(maker, p["msp"], audience=["region"], regions=["curacao", "bonaire"], public=True)
    p["alpha"] = factory.partner("Alpha helpdesk", functions=handling)
    support(maker, p["alpha"], audience=["any-organisation"], public=True)
    p["zulu"] = factory.partner("Zulu response", type="mssp", functions=handling)
    support(maker, p["zulu"], audience=["any-organisation"], availability="24x7", public=True)
    p["quiet"] = factory.partner("Quiet partner", functions=handling)
    support(maker, p["quiet"], audience=["any-organisation"], public=False)
    p["suspended"] = factory.partner("Suspended CERT", functions=handling, status="suspended")
    support(maker, p["suspended"], audience=["any-organisation"], public=True)
    p["no-function"] = factory.partner("Sharing only", functions=["information-sharing"])
    support(maker, p["no-function"], audience=["any-organisation"], public=True)
    return p


def ask_public(client: TestClient, **params: str) -> Any:
    query = {"sector": "health", "region": "nl", "type": "company", "size": "medium", **params}
    return client.get(PUBLIC, params=query)


def names(body: dict) -> list[str]:
    return [o["name"] for o in body["organisations"]]


def codes(body: dict, name: str) -> list[str]:
    return [r["code"] for o in body["organisations"] if o["name"] == name for r in o["reasons"]]


def test_partner_route_orders_designated_csirt_then_closest_match(
    client: TestClient, factory: Any, network: dict
) -> None:
    key = {"Authorization": factory.key(Role.PARTNER, network["alpha"])}
    body = {
        "sector": "health",
        "region": "nl",
        "type": "company",
        "size": "large",
        "ip_addresses": ["192.0.2.10"],
        "domains": ["www.ziekenhuis.nl"],
    }
    r = client.post(HELP, json=body, headers=key)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert names(answer) == [
        "Z-CERT",
        "Example ISP",
        "Care ISAC",
        "Zulu response",
        "Alpha helpdesk",
        "Quiet partner",
    ]
    assert answer["organisations"][0]["designated_csirt"] is True
    assert codes(answer, "Z-CERT") == ["designated-csirt", "sector"]
    assert codes(answer, "Example ISP") == ["constituency-match"]
    isp = next(o for o in answer["organisations"] if o["name"] == "Example ISP")
    assert "prefix 192.0.2.0/24" in isp["reasons"][0]["text"]
    assert isp["contact"]["email"] == "duty@example.nl" and isp["availability"] == "24x7"
    assert codes(answer, "Care ISAC") == ["members-match"]
    assert "NCSC-NL" not in names(answer)


def test_members_only_and_constituency_need_a_network_match(
    client: TestClient, factory: Any, network: dict
) -> None:
    key = {"Authorization": factory.key(Role.PARTNER)}
    body = {"sector": "health", "region": "nl", "type": "company", "size": "large", "asns": [64501]}
    listed = names(client.post(HELP, json=body, headers=key).json())
    assert "Care ISAC" not in listed and "Example ISP" not in listed
    body["asns"] = [64500]
    assert "Example ISP" in names(client.post(HELP, json=body, headers=key).json())


def test_public_route_lists_only_public_entries_and_cannot_probe_constituencies(
    client: TestClient, network: dict
) -> None:
    answer = ask_public(client).json()
    assert names(answer) == ["Z-CERT", "Zulu response", "Alpha helpdesk"]
    assert all("uuid" not in o for o in answer["organisations"])
    probe = ask_public(client, ip_addresses="192.0.2.10", domains="www.ziekenhuis.nl").json()
    assert names(probe) == names(answer)


def test_outside_a_designated_sector_the_national_csirt_comes_first(
    client: TestClient, network: dict
) -> None:
    answer = ask_public(client, sector="energy").json()
    assert names(answer) == ["NCSC-NL", "Zulu response", "Alpha helpdesk"]
    assert codes(answer, "NCSC-NL") == ["national-csirt"]
    assert answer["organisations"][0]["contact"] is None  # no public support entry
    steps = answer["reporting_obligations"]["steps"]
    assert steps[0]["report_to"][0] == {"role": "sector-csirt", "organisations": ["NCSC-NL"]}


def test_non_vital_gets_no_csirt_and_no_reporting_duty(client: TestClient, network: dict) -> None:
    answer = ask_public(client, sector="non-vital").json()
    assert names(answer) == ["Zulu response", "Alpha helpdesk"]
    assert answer["reporting_obligations"]["applies"] is False
    assert answer["reporting_obligations"]["steps"] == []


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("curacao", ["Z-CERT", "Island MSP", "Zulu response", "Alpha helpdesk"]),
        ("bonaire", ["Z-CERT", "Island MSP", "Zulu response", "Alpha helpdesk"]),
        ("sint-eustatius", ["Z-CERT", "Zulu response", "Alpha helpdesk"]),
        ("saba", ["Z-CERT", "Zulu response", "Alpha helpdesk"]),
        ("aruba", ["Z-CERT", "Zulu response", "Alpha helpdesk"]),
        ("sint-maarten", ["Z-CERT", "Zulu response", "Alpha helpdesk"]),
    ],
)
def test_caribbean_regions_have_no_designation_and_no_nis2_duty(
    client: TestClient, network: dict, region: str, expected: list[str]
) -> None:
    answer = ask_public(client, region=region).json()
    assert names(answer) == expected
    zcert = answer["organisations"][0]
    assert zcert["designated_csirt"] is False
    assert [r["code"] for r in zcert["reasons"]] == ["sector"]
    duties = answer["reporting_obligations"]
    assert duties["applies"] is False and region in duties["note"] and duties["steps"] == []


def test_reporting_duties_of_a_designated_sector(client: TestClient, network: dict) -> None:
    duties = ask_public(client, size="small").json()["reporting_obligations"]
    assert duties["applies"] is True
    assert [s["deadline"] for s in duties["steps"]] == ["24 hours", "72 hours", "one month"]
    assert duties["steps"][0]["report_to"] == [
        {"role": "sector-csirt", "organisations": ["Z-CERT"]},
        {"role": "supervisory-authority", "organisations": []},
    ]
    assert "art. 2(2)" in duties["note"]


def submit(
    client: TestClient, auth: dict, info: str, tlp: str, distribution: int, **kw: Any
) -> str:
    doc = event(info, tlp=tlp, distribution=distribution, timestamp=int(time.time()), **kw)
    doc["Event"]["Tag"].append({"name": kw.pop("sector_tag", 'cwn:sector="health"')})
    r = client.post("/api/v1/events", json=doc, headers=auth)
    assert r.status_code == 201, r.text
    return str(doc["Event"]["uuid"])


@pytest.fixture
def advisories(client: TestClient, auth: dict, factory: Any) -> dict[str, str]:
    member = factory.partner("Named member")
    return {
        "clear-all": submit(client, auth, "CLEAR to all communities", "clear", 3),
        "clear-community": submit(client, auth, "CLEAR to the community", "clear", 1),
        "green": submit(client, auth, "GREEN advisory", "green", 1),
        "green-all": submit(client, auth, "GREEN to all communities", "green", 3),
        "amber": submit(client, auth, "AMBER advisory", "amber", 1),
        "amber-all": submit(client, auth, "AMBER to all communities", "amber", 3),
        "red": submit(client, auth, "RED advisory", "red", 4, members=[member.uuid]),
        "hub-only": submit(client, auth, "CLEAR for the hub alone", "clear", 0),
    }


def test_public_route_gives_nothing_but_clear(
    client: TestClient, network: dict, advisories: dict, maker: sessionmaker[Session]
) -> None:
    r = ask_public(client)
    assert r.status_code == 200
    assert [a["uuid"] for a in r.json()["advisories"]] == [advisories["clear-all"]]
    assert r.json()["advisories"][0]["tlp"] == "clear"
    assert r.headers["X-Hub-TLP"] == "TLP:CLEAR"
    for name, uuid_ in advisories.items():
        if name != "clear-all":
            assert uuid_ not in r.text, name
    for word in ("GREEN", "AMBER", "RED", "community", "hub alone"):
        assert word not in r.text, word
    with maker() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.seq == int(r.headers["X-Hub-Audit-Seq"]))
        ).one()
    assert entry.channel == "feed" and entry.recipient_uuid == "public:incident-help"


def test_partner_route_adds_green_the_partner_may_see_never_amber(
    client: TestClient, factory: Any, network: dict, advisories: dict
) -> None:
    key = {"Authorization": factory.key(Role.PARTNER, network["alpha"])}
    body = {"sector": "health", "region": "nl", "type": "company", "size": "large"}
    r = client.post(HELP, json=body, headers=key)
    got = {a["uuid"] for a in r.json()["advisories"]}
    assert got == {advisories[n] for n in ("clear-all", "clear-community", "green", "green-all")}
    assert r.headers["X-Hub-TLP"] == "TLP:GREEN"
    no_agreement = factory.partner("No agreement", tlp=False)
    key = {"Authorization": factory.key(Role.PARTNER, no_agreement)}
    got = {a["uuid"] for a in client.post(HELP, json=body, headers=key).json()["advisories"]}
    assert got == {advisories["clear-all"], advisories["clear-community"]}


def test_advisories_of_another_sector_are_not_listed(
    client: TestClient, auth: dict, network: dict
) -> None:
    submit(client, auth, "energy advisory", "clear", 3, sector_tag='cwn:sector="energy"')
    assert ask_public(client).json()["advisories"] == []
    assert len(ask_public(client, sector="energy").json()["advisories"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sector": "hospitals"}, "sector"),
        ({"region": "amsterdam"}, "region"),
        ({"type": "startup"}, "type"),
        ({"size": "huge"}, "size"),
    ],
)
def test_public_route_names_the_bad_parameter(client: TestClient, params: dict, field: str) -> None:
    r = ask_public(client, **params)
    assert r.status_code == 422 and r.json()["field"] == field


def test_partner_route_names_a_bad_identifier(client: TestClient, factory: Any) -> None:
    key = {"Authorization": factory.key(Role.PARTNER)}
    base = {"sector": "health", "region": "nl", "type": "company", "size": "large"}
    r = client.post(HELP, json={**base, "ip_addresses": ["192.0.2.1", "nope"]}, headers=key)
    assert r.status_code == 422 and r.json()["field"] == "ip_addresses.1"
    r = client.post(HELP, json={**base, "domains": ["bad domain"]}, headers=key)
    assert r.status_code == 422 and r.json()["field"] == "domains.0"
    assert client.post(HELP, json=base).status_code == 401


def test_public_route_is_rate_limited_per_address(settings: Any, engine: Any) -> None:
    limited = settings.model_copy(update={"public_help_limit": 3})
    with TestClient(create_app(limited, engine=engine)) as c:
        for _ in range(3):
            assert ask_public(c).status_code == 200
        r = ask_public(c)
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) >= 1
        assert r.json()["error"] == "too_many_requests"
