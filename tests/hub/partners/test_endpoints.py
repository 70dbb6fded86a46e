"""Partner registry over REST: create, read, update, list, filter, lifecycle, history."""

from __future__ import annotations

import itertools
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import ConstituencyEntry, Partner, PartnerChange
from hub.partners.service import TRANSITIONS
from hub.vocabulary import PartnerStatus

BASE = "/api/v1/admin/partners"
MINIMAL = {"name": "Z-CERT", "type": "sectoral-csirt", "tier": "core", "region": "nl"}
FULL = {
    "name": "KPN CERT",
    "type": "isp",
    "tier": "core",
    "region": "nl",
    "legal_status": "oktt",
    "sectors": ["digital-infrastructure", "ict-service-management"],
    "functions": ["information-sharing", "target-victim-notification"],
    "tlp_accepted_at": "2026-03-01",
    "constituency": {
        "ip_prefixes": ["192.0.2.0/24", "2001:DB8::/32"],
        "asns": [1136, 286],
        "domains": ["Example.NL.", "kpn.com"],
        "sectors": ["health"],
    },
    "contacts": [
        {
            "name": "Duty officer",
            "email": "cert@example.nl",
            "role": "24/7",
            "pgp_key": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n...",
        }
    ],
}


def count(maker: sessionmaker[Session], model: type) -> int:
    with maker() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


class TestCreate:
    def test_minimal_body_gets_the_contract_defaults(self, client: TestClient, auth: dict) -> None:
        r = client.post(BASE, json=MINIMAL, headers=auth)
        assert r.status_code == 201, r.text
        body = r.json()
        uuid.UUID(body["uuid"])
        assert body["status"] == "prospect"
        assert body["legal_status"] == "none"
        assert body["sectors"] == [] and body["functions"] == [] and body["contacts"] == []
        assert body["tlp_accepted_at"] is None
        assert body["constituency"] == {"ip_prefixes": [], "asns": [], "domains": [], "sectors": []}

    def test_full_body_is_stored_canonically(self, client: TestClient, auth: dict) -> None:
        r = client.post(BASE, json=FULL, headers=auth)
        assert r.status_code == 201, r.text
        got = client.get(f"{BASE}/{r.json()['uuid']}", headers=auth).json()
        assert got["constituency"] == {
            "ip_prefixes": ["192.0.2.0/24", "2001:db8::/32"],
            "asns": [1136, 286],
            "domains": ["example.nl", "kpn.com"],
            "sectors": ["health"],
        }
        assert got["tlp_accepted_at"].startswith("2026-03-01T00:00:00")
        assert sorted(got["sectors"]) == FULL["sectors"]
        assert got["contacts"][0]["email"] == "cert@example.nl"

    def test_prefixes_are_stored_as_ranges_for_matching(
        self, client: TestClient, auth: dict, maker: sessionmaker[Session]
    ) -> None:
        client.post(BASE, json=FULL, headers=auth)
        with maker() as s:
            rows = {e.value: e for e in s.scalars(select(ConstituencyEntry))}
        v4 = rows["192.0.2.0/24"]
        assert (v4.family, v4.prefix_len) == (4, 24)
        assert int(v4.net_start, 16) == 0xC0000200 and int(v4.net_end, 16) == 0xC00002FF
        assert rows["2001:db8::/32"].family == 6
        assert rows["1136"].asn == 1136

    def test_given_uuid_is_kept(self, client: TestClient, auth: dict) -> None:
        wanted = str(uuid.uuid4())
        r = client.post(BASE, json={**MINIMAL, "uuid": wanted}, headers=auth)
        assert r.json()["uuid"] == wanted
        again = client.post(BASE, json={**MINIMAL, "name": "Other", "uuid": wanted}, headers=auth)
        assert again.status_code == 409 and again.json()["field"] == "uuid"

    def test_names_are_unique_regardless_of_case(self, client: TestClient, auth: dict) -> None:
        assert client.post(BASE, json=MINIMAL, headers=auth).status_code == 201
        r = client.post(BASE, json={**MINIMAL, "name": "z-cert"}, headers=auth)
        assert r.status_code == 409
        assert r.json()["error"] == "conflict" and r.json()["field"] == "name"


BAD_BODIES = [
    ({**MINIMAL, "type": "bank"}, "type"),
    ({**MINIMAL, "tier": "gold"}, "tier"),
    ({**MINIMAL, "region": "belgium"}, "region"),
    ({**MINIMAL, "sectors": ["health", "casino"]}, "sectors.1"),
    ({**MINIMAL, "functions": ["espionage"]}, "functions.0"),
    ({**MINIMAL, "legal_status": "royal"}, "legal_status"),
    ({**MINIMAL, "name": "x" * 201}, "name"),
    ({**MINIMAL, "name": ""}, "name"),
    ({**MINIMAL, "name": "bad\x00name"}, "name"),
    ({"type": "isp", "tier": "core", "region": "nl"}, "name"),
    ({**MINIMAL, "constituency": {"ip_prefixes": ["10.0.0.1/8"]}}, "constituency.ip_prefixes.0"),
    ({**MINIMAL, "constituency": {"ip_prefixes": ["999.1.1.0/24"]}}, "constituency.ip_prefixes.0"),
    ({**MINIMAL, "constituency": {"ip_prefixes": ["10.0.0.0/33"]}}, "constituency.ip_prefixes.0"),
    ({**MINIMAL, "constituency": {"asns": [-5]}}, "constituency.asns.0"),
    ({**MINIMAL, "constituency": {"asns": [4294967296]}}, "constituency.asns.0"),
    ({**MINIMAL, "constituency": {"asns": ["sixty"]}}, "constituency.asns.0"),
    ({**MINIMAL, "constituency": {"asns": [True]}}, "constituency.asns.0"),
    ({**MINIMAL, "constituency": {"domains": ["-bad-.nl"]}}, "constituency.domains.0"),
    ({**MINIMAL, "constituency": {"domains": ["localhost"]}}, "constituency.domains.0"),
    ({**MINIMAL, "constituency": {"domains": ["a" * 64 + ".nl"]}}, "constituency.domains.0"),
    ({**MINIMAL, "constituency": {"sectors": ["nope"]}}, "constituency.sectors.0"),
    ({**MINIMAL, "constituency": {"colour": []}}, "constituency.colour"),
    ({**MINIMAL, "contacts": [{"name": "A", "email": "not-an-email"}]}, "contacts.0.email"),
    ({**MINIMAL, "contacts": [{"name": "A"}]}, "contacts.0.email"),
    ({**MINIMAL, "tlp_accepted_at": "yesterday"}, "tlp_accepted_at"),
    ({**MINIMAL, "status": "active"}, "status"),
    ({**MINIMAL, "uuid": "not-a-uuid"}, "uuid"),
]


class TestBadInput:
    @pytest.mark.parametrize(("body", "field"), BAD_BODIES)
    def test_names_the_field_and_writes_nothing(
        self, client: TestClient, auth: dict, maker: sessionmaker[Session], body: dict, field: str
    ) -> None:
        before = count(maker, Partner), count(maker, PartnerChange)
        r = client.post(BASE, json=body, headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["error"] == "invalid_field"
        assert r.json()["field"] == field
        assert field.split(".")[0] in r.json()["detail"]
        assert (count(maker, Partner), count(maker, PartnerChange)) == before

    def test_malformed_json_is_a_400_and_writes_nothing(
        self, client: TestClient, auth: dict, maker: sessionmaker[Session]
    ) -> None:
        before = count(maker, Partner)
        r = client.post(
            BASE,
            content=b'{"name": "X", "type": ',
            headers={**auth, "Content-Type": "application/json"},
        )
        assert r.status_code == 400
        assert "not valid JSON" in r.json()["detail"]
        assert count(maker, Partner) == before

    def test_a_body_that_is_not_an_object(self, client: TestClient, auth: dict) -> None:
        r = client.post(BASE, json=["not", "an", "object"], headers=auth)
        assert r.status_code == 422

    def test_over_size_body_is_413(self, client: TestClient, auth: dict) -> None:
        big = {
            **MINIMAL,
            "contacts": [{"name": "A", "email": "a@example.nl", "pgp_key": "k" * 90_000}] * 50,
        }
        r = client.post(BASE, json=big, headers=auth)
        assert r.status_code == 413
        assert r.json()["error"] == "payload_too_large"


class TestReadAndUpdate:
    def test_unknown_partner_is_404(self, client: TestClient, auth: dict) -> None:
        r = client.get(f"{BASE}/{uuid.uuid4()}", headers=auth)
        assert r.status_code == 404 and r.json()["error"] == "not_found"

    def test_patch_changes_only_given_fields_and_keeps_history(
        self, client: TestClient, auth: dict
    ) -> None:
        created = client.post(BASE, json=FULL, headers=auth).json()
        r = client.patch(
            f"{BASE}/{created['uuid']}",
            headers=auth,
            json={"tier": "ecosystem", "constituency": {"asns": [3265]}},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["tier"] == "ecosystem"
        assert body["name"] == FULL["name"] and body["sectors"] == created["sectors"]
        assert body["constituency"]["asns"] == [3265]
        history = client.get(f"{BASE}/{created['uuid']}/history", headers=auth).json()["items"]
        assert [h["action"] for h in history] == ["create", "update"]
        change = history[1]["changes"]
        assert change["tier"] == {"old": "core", "new": "ecosystem"}
        assert change["constituency"]["old"]["asns"] == [1136, 286]
        assert change["constituency"]["new"]["asns"] == [3265]
        assert set(change) == {"tier", "constituency"}
        assert history[1]["actor"].startswith("key:")

    def test_patch_without_changes_records_nothing(self, client: TestClient, auth: dict) -> None:
        created = client.post(BASE, json=MINIMAL, headers=auth).json()
        client.patch(f"{BASE}/{created['uuid']}", json={"tier": "core"}, headers=auth)
        history = client.get(f"{BASE}/{created['uuid']}/history", headers=auth).json()["items"]
        assert len(history) == 1

    def test_patch_can_clear_the_tlp_agreement(self, client: TestClient, auth: dict) -> None:
        created = client.post(BASE, json=FULL, headers=auth).json()
        r = client.patch(f"{BASE}/{created['uuid']}", json={"tlp_accepted_at": None}, headers=auth)
        assert r.json()["tlp_accepted_at"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": None}, "name"),
            ({"status": "active"}, "status"),
            ({"uuid": str(uuid.uuid4())}, "uuid"),
            ({"tier": "platinum"}, "tier"),
        ],
    )
    def test_bad_patch(self, client: TestClient, auth: dict, body: dict, field: str) -> None:
        created = client.post(BASE, json=MINIMAL, headers=auth).json()
        r = client.patch(f"{BASE}/{created['uuid']}", json=body, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == field
        assert client.get(f"{BASE}/{created['uuid']}", headers=auth).json() == created

    def test_rename_onto_another_partner_is_a_conflict(
        self, client: TestClient, auth: dict
    ) -> None:
        client.post(BASE, json=MINIMAL, headers=auth)
        other = client.post(BASE, json={**MINIMAL, "name": "IBD"}, headers=auth).json()
        r = client.patch(f"{BASE}/{other['uuid']}", json={"name": "Z-CERT"}, headers=auth)
        assert r.status_code == 409


class TestList:
    @pytest.fixture
    def population(self, client: TestClient, auth: dict) -> list[dict]:
        rows = [
            {
                **MINIMAL,
                "name": "Z-CERT",
                "sectors": ["health"],
                "functions": ["incident-handling"],
            },
            {
                **MINIMAL,
                "name": "IBD",
                "type": "government",
                "tier": "ecosystem",
                "sectors": ["public-administration"],
            },
            {**MINIMAL, "name": "Aruba CERT", "region": "aruba", "tier": "connection"},
            {
                **MINIMAL,
                "name": "ISP One",
                "type": "isp",
                "sectors": ["digital-infrastructure"],
                "functions": ["target-victim-notification", "incident-handling"],
            },
        ]
        return [client.post(BASE, json=r, headers=auth).json() for r in rows]

    @pytest.mark.parametrize(
        ("query", "names"),
        [
            ("tier=core", {"NCSC-NL", "Z-CERT", "ISP One"}),
            ("type=isp", {"ISP One"}),
            ("sector=health", {"Z-CERT"}),
            ("function=incident-handling", {"Z-CERT", "ISP One", "NCSC-NL"}),
            ("region=aruba", {"Aruba CERT"}),
            ("status=active", {"NCSC-NL"}),
            ("status=prospect&tier=core", {"Z-CERT", "ISP One"}),
            ("sector=health&type=isp", set()),
        ],
    )
    def test_filters(
        self, client: TestClient, auth: dict, population: list, query: str, names: set
    ) -> None:
        r = client.get(f"{BASE}?{query}", headers=auth)
        assert r.status_code == 200
        assert {p["name"] for p in r.json()["items"]} == names

    def test_unknown_filter_value_is_422(self, client: TestClient, auth: dict) -> None:
        r = client.get(f"{BASE}?tier=gold", headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "tier"

    def test_keyset_pages_walk_everything_once(
        self, client: TestClient, auth: dict, population: list
    ) -> None:
        seen, cursor, pages = [], None, 0
        while True:
            url = f"{BASE}?limit=2" + (f"&cursor={cursor}" if cursor else "")
            body = client.get(url, headers=auth).json()
            seen += [p["name"] for p in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == 3
        assert sorted(seen) == sorted(["NCSC-NL", "Z-CERT", "IBD", "Aruba CERT", "ISP One"])

    @pytest.mark.parametrize("cursor", ["garbage!", "eyJ4IjoxfQ", "W10"])
    def test_foreign_cursor_is_422(self, client: TestClient, auth: dict, cursor: str) -> None:
        r = client.get(f"{BASE}?cursor={cursor}", headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "cursor"

    @pytest.mark.parametrize("limit", [0, 501, -1])
    def test_limit_bounds(self, client: TestClient, auth: dict, limit: int) -> None:
        assert client.get(f"{BASE}?limit={limit}", headers=auth).status_code == 422


STATUSES = list(PartnerStatus)


class TestLifecycle:
    @pytest.mark.parametrize(("start", "target"), list(itertools.product(STATUSES, STATUSES)))
    def test_every_transition(
        self, client: TestClient, auth: dict, factory, start: PartnerStatus, target: PartnerStatus
    ) -> None:
        partner = factory.partner(status=start)
        r = client.post(
            f"{BASE}/{partner.uuid}/status",
            headers=auth,
            json={"status": target.value, "reason": "contract review"},
        )
        if target in TRANSITIONS[start]:
            assert r.status_code == 200, r.text
            assert r.json()["status"] == target.value
        else:
            assert r.status_code == 409, r.text
            assert r.json()["error"] == "conflict"
            assert start.value in r.json()["detail"]
            after = client.get(f"{BASE}/{partner.uuid}", headers=auth).json()
            assert after["status"] == start.value

    @pytest.mark.parametrize("target", ["suspended", "withdrawn"])
    def test_suspension_and_withdrawal_need_a_reason(
        self, client: TestClient, auth: dict, factory, target: str
    ) -> None:
        partner = factory.partner(status=PartnerStatus.ACTIVE)
        r = client.post(f"{BASE}/{partner.uuid}/status", json={"status": target}, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "reason"

    def test_status_change_is_in_the_history(self, client: TestClient, auth: dict) -> None:
        created = client.post(BASE, json=MINIMAL, headers=auth).json()
        client.post(f"{BASE}/{created['uuid']}/status", json={"status": "onboarding"}, headers=auth)
        client.post(
            f"{BASE}/{created['uuid']}/status",
            json={"status": "withdrawn", "reason": "left the network"},
            headers=auth,
        )
        items = client.get(f"{BASE}/{created['uuid']}/history", headers=auth).json()["items"]
        assert [i["action"] for i in items] == ["create", "status", "status"]
        assert items[2]["changes"]["status"] == {"old": "onboarding", "new": "withdrawn"}
        assert items[2]["changes"]["status_reason"]["new"] == "left the network"

    def test_the_hub_organisation_cannot_be_suspended(
        self, client: TestClient, auth: dict, hub_org
    ) -> None:
        r = client.post(
            f"{BASE}/{hub_org.uuid}/status",
            headers=auth,
            json={"status": "suspended", "reason": "x"},
        )
        assert r.status_code == 409

    def test_unknown_status_value(self, client: TestClient, auth: dict, factory) -> None:
        partner = factory.partner()
        r = client.post(f"{BASE}/{partner.uuid}/status", json={"status": "paused"}, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "status"
