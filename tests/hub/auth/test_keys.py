"""API keys: the three header forms, and every way a key stops working."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.keys import generate_key, key_from_headers
from hub.auth.service import NOT_VALID
from hub.models import ApiKey
from hub.vocabulary import PartnerStatus, Role

ME = "/api/v1/me"
# Revoked, expired, suspended and unknown keys get the same words: nothing to tell apart.


def test_generated_keys_are_40_alphanumerics() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9]{40}", k) for k in keys)


@pytest.mark.parametrize(
    ("authorization", "misp", "expected"),
    [
        ("abc", None, "abc"),
        ("Bearer abc", None, "abc"),
        ("bearer  abc ", None, "abc"),
        (None, "abc", "abc"),
        (None, None, None),
        ("abc", "other", "abc"),
    ],
)
def test_header_forms(authorization: str | None, misp: str | None, expected: str | None) -> None:
    assert key_from_headers(authorization, misp) == expected


class TestHeaderForms:
    @pytest.mark.parametrize("form", ["plain", "bearer", "misp"])
    def test_each_form_identifies_the_caller(self, client: TestClient, factory, form: str) -> None:
        partner = factory.partner("Z-CERT", type="sectoral-csirt")
        key = factory.key(Role.SYNC, partner)
        headers = {
            "plain": {"Authorization": key},
            "bearer": {"Authorization": f"Bearer {key}"},
            "misp": {"X-MISP-AUTH": key},
        }[form]
        r = client.get(ME, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["role"] == "sync"
        assert body["organisation"]["name"] == "Z-CERT"
        assert body["organisation"]["uuid"] == partner.uuid
        assert body["organisation"]["tlp_accepted"] is True
        assert body["key"]["key_hint"] == key[-4:]
        assert "key" not in body["key"] or body["key"].get("key") is None


class TestRefusals:
    def test_missing_key(self, client: TestClient) -> None:
        r = client.get(ME)
        assert r.status_code == 401
        assert r.json()["error"] == "unauthenticated"

    @pytest.mark.parametrize("key", ["x" * 40, "short", "x" * 41, "!" * 40, "Bearer"])
    def test_unknown_or_malformed_key(self, client: TestClient, key: str) -> None:
        assert client.get(ME, headers={"Authorization": key}).status_code == 401

    def test_revoked_key(self, client: TestClient, factory, auth: dict) -> None:
        partner = factory.partner()
        key = factory.key(Role.PARTNER, partner)
        assert client.get(ME, headers={"Authorization": key}).status_code == 200
        key_uuid = client.get(ME, headers={"Authorization": key}).json()["key"]["uuid"]
        r = client.delete(f"/api/v1/admin/partners/{partner.uuid}/keys/{key_uuid}", headers=auth)
        assert r.status_code == 200 and r.json()["revoked_at"]
        r = client.get(ME, headers={"Authorization": key})
        assert r.status_code == 401 and r.json()["detail"] == NOT_VALID

    def test_expired_key(self, client: TestClient, factory, maker: sessionmaker[Session]) -> None:
        key = factory.key(Role.PARTNER, expires_at=datetime.now(UTC) + timedelta(hours=1))
        assert client.get(ME, headers={"Authorization": key}).status_code == 200
        with maker.begin() as s:
            s.execute(update(ApiKey).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        r = client.get(ME, headers={"Authorization": key})
        assert r.status_code == 401 and r.json()["detail"] == NOT_VALID

    @pytest.mark.parametrize("status", ["suspended", "withdrawn"])
    def test_suspended_or_withdrawn_partner_keys_stop_at_once(
        self, client: TestClient, factory, auth: dict, status: str
    ) -> None:
        partner = factory.partner(status=PartnerStatus.ACTIVE)
        key = factory.key(Role.PARTNER, partner)
        assert client.get(ME, headers={"Authorization": key}).status_code == 200
        r = client.post(
            f"/api/v1/admin/partners/{partner.uuid}/status",
            headers=auth,
            json={"status": status, "reason": "incident"},
        )
        assert r.status_code == 200
        r = client.get(ME, headers={"Authorization": key})
        assert r.status_code == 401 and r.json()["detail"] == NOT_VALID

    def test_reactivated_partner_keys_work_again(self, client: TestClient, factory, auth) -> None:
        partner = factory.partner(status=PartnerStatus.SUSPENDED)
        r = client.post(
            f"/api/v1/admin/partners/{partner.uuid}/keys", headers=auth, json={"role": "partner"}
        )
        assert r.status_code == 409  # no new keys while suspended
        client.post(
            f"/api/v1/admin/partners/{partner.uuid}/status", headers=auth, json={"status": "active"}
        )
        key = factory.key(Role.PARTNER, partner)
        assert client.get(ME, headers={"Authorization": key}).status_code == 200


class TestIssuing:
    def test_rest_issues_the_key_once_and_stores_only_a_hash(
        self, client: TestClient, factory, auth: dict, maker: sessionmaker[Session]
    ) -> None:
        partner = factory.partner()
        r = client.post(
            f"/api/v1/admin/partners/{partner.uuid}/keys",
            headers=auth,
            json={"role": "sync", "comment": "MISP of Z-CERT"},
        )
        assert r.status_code == 201, r.text
        key = r.json()["key"]
        assert re.fullmatch(r"[A-Za-z0-9]{40}", key)
        listed = client.get(f"/api/v1/admin/partners/{partner.uuid}/keys", headers=auth).json()
        assert key not in str(listed)
        assert listed["items"][0]["comment"] == "MISP of Z-CERT"
        with maker() as s:
            rows = s.execute(select(ApiKey.__table__)).all()
        assert all(key not in str(tuple(row)) for row in rows)
        me = client.get(ME, headers={"Authorization": key}).json()
        assert me["role"] == "sync"
        listed = client.get(f"/api/v1/admin/partners/{partner.uuid}/keys", headers=auth).json()
        used = [k for k in listed["items"] if k["uuid"] == me["key"]["uuid"]][0]
        assert used["last_used_at"] is not None

    @pytest.mark.parametrize("role", ["operator", "auditor"])
    def test_staff_roles_only_for_the_hub_organisation(
        self, client: TestClient, factory, auth: dict, role: str
    ) -> None:
        partner = factory.partner()
        r = client.post(
            f"/api/v1/admin/partners/{partner.uuid}/keys", headers=auth, json={"role": role}
        )
        assert r.status_code == 422 and r.json()["field"] == "role"

    def test_no_keys_for_a_withdrawn_partner(self, client: TestClient, factory, auth) -> None:
        partner = factory.partner(status=PartnerStatus.WITHDRAWN)
        r = client.post(
            f"/api/v1/admin/partners/{partner.uuid}/keys", headers=auth, json={"role": "partner"}
        )
        assert r.status_code == 409

    def test_expiry_in_the_past_is_refused(self, client: TestClient, factory, auth) -> None:
        partner = factory.partner()
        r = client.post(
            f"/api/v1/admin/partners/{partner.uuid}/keys",
            headers=auth,
            json={"role": "partner", "expires_at": "2020-01-01T00:00:00Z"},
        )
        assert r.status_code == 422 and r.json()["field"] == "expires_at"

    def test_revoking_a_key_of_another_partner_is_404(
        self, client: TestClient, factory, auth: dict
    ) -> None:
        a, b = factory.partner(), factory.partner()
        key = factory.key(Role.PARTNER, a)
        key_uuid = client.get(ME, headers={"Authorization": key}).json()["key"]["uuid"]
        r = client.delete(f"/api/v1/admin/partners/{b.uuid}/keys/{key_uuid}", headers=auth)
        assert r.status_code == 404
        assert client.get(ME, headers={"Authorization": key}).status_code == 200
