"""The incident support registry: operators and the partner itself maintain it, every
change lands in the partner history and the audit log, bad input is a 4xx naming the field
with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.models import AuditEntry, IncidentSupport
from hub.vocabulary import Role

SUPPORT = {
    "services": ["triage", "forensics"],
    "audience": ["sector", "region"],
    "sectors": ["health"],
    "regions": ["nl", "bonaire"],
    "availability": "24x7",
    "contact": {"name": "Duty officer", "email": "cert@example.nl", "phone": "+31 70 123 4567"},
    "public": True,
}


def admin(uuid: str) -> str:
    return f"/api/v1/admin/partners/{uuid}/incident-support"


def rows(maker: sessionmaker[Session], model: type) -> int:
    with maker() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_operator_sets_support_and_history_and_audit_keep_it(
    client: TestClient, auth: dict, factory: Any, maker: sessionmaker[Session]
) -> None:
    partner = factory.partner("Z-CERT")
    r = client.put(admin(partner.uuid), json=SUPPORT, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["services"] == ["triage", "forensics"]
    assert r.json()["partner_name"] == "Z-CERT"
    assert client.get(admin(partner.uuid), headers=auth).json()["contact"]["phone"] == (
        "+31 70 123 4567"
    )
    changed = {**SUPPORT, "availability": "office-hours"}
    assert client.put(admin(partner.uuid), json=changed, headers=auth).status_code == 200
    history = client.get(f"/api/v1/admin/partners/{partner.uuid}/history", headers=auth).json()[
        "items"
    ]
    support = [h for h in history if h["action"] == "incident-support"]
    assert len(support) == 2
    assert support[0]["changes"]["incident_support"]["old"] is None
    assert support[1]["changes"]["incident_support"]["old"]["availability"] == "24x7"
    assert support[1]["changes"]["incident_support"]["new"]["availability"] == "office-hours"
    with maker() as s:
        audited = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(
                AuditEntry.action == "partner.incident-support",
                AuditEntry.object_ref == f"partner:{partner.uuid}",
            )
        )
    assert audited == 2


def test_an_unchanged_entry_records_nothing_new(
    client: TestClient, auth: dict, factory: Any
) -> None:
    partner = factory.partner()
    for _ in range(2):
        assert client.put(admin(partner.uuid), json=SUPPORT, headers=auth).status_code == 200
    history = client.get(f"/api/v1/admin/partners/{partner.uuid}/history", headers=auth).json()[
        "items"
    ]
    assert [h["action"] for h in history].count("incident-support") == 1


def test_the_partner_maintains_its_own_entry_and_a_sync_key_may_not(
    client: TestClient, factory: Any, auth: dict
) -> None:
    partner = factory.partner()
    key = factory.key(Role.PARTNER, partner)
    sync = factory.key(Role.SYNC, partner)
    mine = "/api/v1/me/incident-support"
    assert client.get(mine, headers={"Authorization": key}).status_code == 404
    r = client.put(mine, json=SUPPORT, headers={"Authorization": key})
    assert r.status_code == 200, r.text
    assert r.json()["partner_uuid"] == partner.uuid
    assert client.put(mine, json=SUPPORT, headers={"Authorization": sync}).status_code == 403
    assert client.get(mine, headers={"Authorization": sync}).json()["regions"] == ["nl", "bonaire"]
    history = client.get(f"/api/v1/admin/partners/{partner.uuid}/history", headers=auth).json()[
        "items"
    ]
    assert any(h["action"] == "incident-support" and "key:" in h["actor"] for h in history)


def test_operator_removes_an_entry_and_history_keeps_the_removal(
    client: TestClient, auth: dict, factory: Any
) -> None:
    partner = factory.partner()
    client.put(admin(partner.uuid), json=SUPPORT, headers=auth)
    assert client.delete(admin(partner.uuid), headers=auth).status_code == 204
    assert client.get(admin(partner.uuid), headers=auth).status_code == 404
    history = client.get(f"/api/v1/admin/partners/{partner.uuid}/history", headers=auth).json()[
        "items"
    ]
    assert history[-1]["changes"]["incident_support"]["new"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"services": ["triage", "hacking-back"]}, "services.1"),
        ({"services": []}, "services"),
        ({"audience": ["everyone"]}, "audience.0"),
        ({"audience": ["members-only", "sector"]}, "audience"),
        ({"audience": ["sector"], "sectors": [], "regions": []}, "sectors"),
        ({"audience": ["any-organisation"], "regions": []}, "sectors"),
        ({"audience": ["sector"], "regions": ["nl"]}, "regions"),
        ({"sectors": ["hospitals"]}, "sectors.0"),
        ({"regions": ["curaçao"]}, "regions.0"),
        ({"availability": "24/7"}, "availability"),
        (
            {"contact": {"name": "x", "email": "not-an-address", "phone": "+31 70 1"}},
            "contact.email",
        ),
        ({"contact": {"name": "x", "email": "a@example.nl", "phone": "call us"}}, "contact.phone"),
        ({"contact": {"name": "x", "email": "a@example.nl"}}, "contact.phone"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    client: TestClient,
    auth: dict,
    factory: Any,
    maker: sessionmaker[Session],
    change: dict,
    field: str,
) -> None:
    partner = factory.partner()
    r = client.put(admin(partner.uuid), json={**SUPPORT, **change}, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert rows(maker, IncidentSupport) == 0


def test_an_unknown_partner_is_404(client: TestClient, auth: dict) -> None:
    r = client.put(admin("5f2c1e4e-0000-4000-8000-000000000000"), json=SUPPORT, headers=auth)
    assert r.status_code == 404
