"""The reporting-obligation table: seeded by the migration with its sources, maintained by
operators, every change audited; non-vital organisations have no entry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from hub import migrate
from hub.models import AuditEntry, ReportingObligation
from hub.vocabulary import Role, Sector

BASE = "/api/v1/admin/reporting-obligations"
STEP = {
    "step": "early-warning",
    "deadline": "24 hours",
    "deadline_hours": 24,
    "report_to": ["sector-csirt", "supervisory-authority"],
    "content": "An early warning.",
    "legal_basis": "NIS2 art. 23(4)(a)",
    "source": "Directive (EU) 2022/2555",
}


def test_the_migration_seeds_the_table(engine: Engine) -> None:
    migrate.downgrade(engine, "e19c00000001")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(ReportingObligation))
    assert count == 3 * (len(Sector) - 1)


def test_every_nis2_sector_has_its_steps_and_non_vital_none(client: TestClient, auth: dict) -> None:
    rows = client.get(BASE, headers=auth).json()
    sectors = {r["sector"] for r in rows}
    assert sectors == {s.value for s in Sector} - {"non-vital"}
    assert len(rows) == 3 * len(sectors)
    health = client.get(BASE, params={"sector": "health"}, headers=auth).json()
    assert [(r["step"], r["deadline"]) for r in health] == [
        ("early-warning", "24 hours"),
        ("incident-notification", "72 hours"),
        ("final-report", "one month"),
    ]
    assert all("2022/2555" in r["source"] and "Cyberbeveiligingswet" in r["source"] for r in health)
    assert client.get(BASE, params={"sector": "non-vital"}, headers=auth).json() == []


def test_operator_replaces_a_sector_and_the_change_is_audited(
    client: TestClient, auth: dict, maker: sessionmaker[Session]
) -> None:
    r = client.put(f"{BASE}/energy", json={"obligations": [STEP]}, headers=auth)
    assert r.status_code == 200, r.text
    assert [o["step"] for o in r.json()] == ["early-warning"]
    assert len(client.get(BASE, params={"sector": "energy"}, headers=auth).json()) == 1
    with maker() as s:
        entry = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "incidents.obligations")
        ).one()
    assert entry.object_ref == "sector:energy"
    details = entry.body["details"]
    assert len(details["old"]) == 3 and len(details["new"]) == 1


def test_auditor_reads_but_may_not_change(client: TestClient, factory: Any) -> None:
    key = {"Authorization": factory.key(Role.AUDITOR)}
    assert client.get(BASE, headers=key).status_code == 200
    assert client.put(f"{BASE}/energy", json={"obligations": []}, headers=key).status_code == 403


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("non-vital", {"obligations": [STEP]}, "sector"),
        ("hospitals", {"obligations": [STEP]}, "sector"),
        ("energy", {"obligations": [STEP, STEP]}, "obligations"),
        (
            "energy",
            {"obligations": [{**STEP, "report_to": ["police"]}]},
            "obligations.0.report_to.0",
        ),
        ("energy", {"obligations": [{**STEP, "step": "tweet"}]}, "obligations.0.step"),
        (
            "energy",
            {"obligations": [{**STEP, "deadline_hours": 0}]},
            "obligations.0.deadline_hours",
        ),
    ],
)
def test_bad_input_names_the_field_and_changes_nothing(
    client: TestClient, auth: dict, path: str, body: dict, field: str
) -> None:
    r = client.put(f"{BASE}/{path}", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field
    assert len(client.get(BASE, params={"sector": "energy"}, headers=auth).json()) == 3
