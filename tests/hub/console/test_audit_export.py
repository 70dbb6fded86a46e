"""The console's audit export is the auditor's export: recorded as ``audit.export`` by the
signed-in key, pinned to the latest signed checkpoint, and byte for byte what the REST
export answers for the same filters (SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from hub.audit.note import Signer
from hub.models import AuditEntry
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role
from hub.worker import run_due


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    key = tmp_path / "audit.key"
    key.write_text(str(Signer.generate("hub.test/audit")) + "\n")
    return settings.model_copy(
        update={"audit_signing_key_file": key, "checkpoint_interval_seconds": 0}
    )


@pytest.fixture
def signed(console, factory, maker, settings):
    """Two partners (their entries), then the worker builds the tree and signs it."""
    z = factory.partner("Z-CERT")
    factory.partner("Other")
    run_due(maker, Runtime(settings=settings))
    return z


def exports(maker) -> list[AuditEntry]:
    with maker() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "audit.export")).all())


def test_the_console_export_is_the_auditors_export(console, client, factory, maker, signed):
    query = {"item": signed.uuid, "action": "partner.create"}
    mine = console.get("/console/audit.csv", params=query)
    assert mine.status_code == 200 and mine.headers["content-type"].startswith("text/csv")
    assert "attachment" in mine.headers["content-disposition"]
    [entry] = exports(maker)
    assert entry.actor.endswith("operator)") and entry.body["details"] == {
        "filters": query,
        "format": "csv",
        "checkpoint_size": int(mine.headers["X-Hub-Audit-Checkpoint-Size"]),
    }
    rows = list(csv.DictReader(io.StringIO(mine.text)))
    assert [(r["action"], r["object_ref"]) for r in rows] == [
        ("partner.create", f"partner:{signed.uuid}")
    ]
    assert json.loads(base64.b64decode(rows[0]["leaf"]))["action"] == "partner.create"
    rest = client.get(
        "/api/v1/admin/audit/export",
        params={**query, "format": "csv"},
        headers={"Authorization": factory.key(Role.AUDITOR)},
    )
    assert rest.status_code == 200
    assert rest.content == mine.content
    for header in ("X-Hub-Audit-Checkpoint", "X-Hub-Audit-Checkpoint-Size"):
        assert rest.headers[header] == mine.headers[header]
    assert len(exports(maker)) == 2


def test_the_page_lists_what_the_export_exports(console, maker, signed) -> None:
    page = console.get("/console/audit", params={"item": signed.uuid})
    assert page.status_code == 200 and f"partner:{signed.uuid}" in page.text
    link = f"/console/audit.csv?item={signed.uuid}"
    assert link in page.text
    rows = list(csv.DictReader(io.StringIO(console.get(link).text)))
    assert rows and {r["object_ref"] for r in rows} == {f"partner:{signed.uuid}"}
    seqs = [int(r["seq"]) for r in rows]
    assert seqs == sorted(seqs)  # oldest first, as the REST export
    assert not exports(maker)[0].body["details"]["filters"].get("action")


def test_a_bad_filter_is_refused_naming_it_and_nothing_is_recorded(console, maker) -> None:
    for query, field in (({"decision": "maybe"}, "decision"), ({"since": "yesterday"}, "since")):
        r = console.get("/console/audit.csv", params=query)
        assert r.status_code == 422 and field in r.text
        assert console.get("/console/audit", params=query).status_code == 422
    assert exports(maker) == []


def test_signed_out_the_export_asks_to_sign_in_and_records_nothing(console, maker) -> None:
    console.cookies.clear()
    assert console.get("/console/audit.csv", follow_redirects=False).status_code == 303
    assert exports(maker) == []
