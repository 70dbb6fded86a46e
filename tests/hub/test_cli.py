"""The `hub` command line against a real database (the same URL the app uses)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.models import Partner, PartnerChange
from hub.settings import get_settings

runner = CliRunner()


@pytest.fixture
def hub(settings, monkeypatch: pytest.MonkeyPatch):
    """Run `hub ...` in-process with the test database and secret."""
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_SECRET_KEY", settings.secret_key.get_secret_value())
    get_settings.cache_clear()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(cli, list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output, result.exception)
        return result

    yield run
    get_settings.cache_clear()


def partners_in(maker: sessionmaker[Session]) -> int:
    with maker() as s:
        return s.scalar(select(func.count(Partner.id))) or 0


def test_init_prints_one_operator_key_once(hub, app) -> None:
    first = hub("init").output
    match = re.search(r"^operator key: ([A-Za-z0-9]{40})$", first, re.M)
    assert match, first
    second = hub("init").output
    assert "operator key:" not in second and "exists" in second
    with TestClient(app) as client:
        me = client.get("/api/v1/me", headers={"Authorization": match.group(1)}).json()
    assert me["role"] == "operator" and me["organisation"]["name"] == "NCSC-NL"
    assert me["organisation"]["type"] == "national-csirt" and me["organisation"]["hub_organisation"]


def test_partner_add_key_create_and_set_status(hub, app) -> None:
    hub("init")
    out = hub(
        "partner",
        "add",
        "--name",
        "Z-CERT",
        "--type",
        "sectoral-csirt",
        "--tier",
        "core",
        "--region",
        "nl",
        "--sector",
        "health",
        "--function",
        "incident-handling",
        "--tlp-accepted",
    ).output.strip()
    assert re.fullmatch(r"[0-9a-f-]{36}", out)
    shown = json.loads(hub("partner", "show", "Z-CERT").output)
    assert shown["uuid"] == out and shown["sectors"] == ["health"] and shown["tlp_accepted_at"]
    hub("partner", "set-status", out, "onboarding")
    hub("partner", "set-status", "z-cert", "active")
    bad = hub("partner", "set-status", out, "prospect", ok=False)
    assert bad.exit_code == 1 and "cannot go from active to prospect" in bad.output
    no_reason = hub("partner", "set-status", out, "suspended", ok=False)
    assert no_reason.exit_code == 1 and "reason" in no_reason.output
    key = hub("key", "create", "--partner", "Z-CERT", "--role", "sync").stdout
    assert re.fullmatch(r"[A-Za-z0-9]{40}\n", key)
    with TestClient(app) as client:
        assert (
            client.get("/api/v1/me", headers={"Authorization": key.strip()}).json()["role"]
            == "sync"
        )
    listed = hub("partner", "list", "--status", "active").output
    assert "Z-CERT" in listed and "NCSC-NL" in listed


def test_partner_add_refuses_bad_values(hub) -> None:
    r = hub(
        "partner",
        "add",
        "--name",
        "X",
        "--type",
        "bank",
        "--tier",
        "core",
        "--region",
        "nl",
        ok=False,
    )
    assert r.exit_code == 2 and "bank" in r.output
    r = hub("key", "create", "--partner", "nobody", "--role", "partner", ok=False)
    assert r.exit_code == 1 and "no partner" in r.output


def test_key_revoke(hub, app) -> None:
    hub("init")
    hub("partner", "add", "--name", "ISP", "--type", "isp", "--tier", "ecosystem", "--region", "nl")
    key = hub("key", "create", "--partner", "ISP", "--role", "partner").stdout.strip()
    key_uuid = hub("key", "list", "--partner", "ISP").output.split()[0]
    hub("key", "revoke", key_uuid)
    with TestClient(app) as client:
        assert client.get("/api/v1/me", headers={"Authorization": key}).status_code == 401


CSV_GOOD = """name,type,tier,region,sectors,ip_prefixes,asns,domains,contact_name,contact_email,status
Z-CERT,sectoral-csirt,core,nl,health,192.0.2.0/24;198.51.100.0/24,1136,z-cert.nl,Desk,desk@z-cert.nl,active
IBD,government,ecosystem,nl,public-administration,,,,,,
Aruba CERT,national-csirt,connection,aruba,,,,,,,onboarding
"""


def test_import_csv_then_reimport_is_idempotent(hub, tmp_path: Path, maker) -> None:
    file = tmp_path / "partners.csv"
    file.write_text(CSV_GOOD)
    out = hub("partner", "import", str(file)).output
    assert "created 3, updated 0, unchanged 0" in out
    again = hub("partner", "import", str(file)).output
    assert "created 0, updated 0, unchanged 3" in again
    shown = json.loads(hub("partner", "show", "Z-CERT").output)
    assert shown["status"] == "active"
    assert shown["constituency"]["ip_prefixes"] == ["192.0.2.0/24", "198.51.100.0/24"]
    assert shown["contacts"][0]["email"] == "desk@z-cert.nl"
    file.write_text(CSV_GOOD.replace("IBD,government,ecosystem", "IBD,government,core"))
    assert "created 0, updated 1, unchanged 2" in hub("partner", "import", str(file)).output
    with maker() as s:
        actions = s.scalars(
            select(PartnerChange.action).join(Partner).where(Partner.name == "IBD")
        ).all()
    assert actions == ["import", "import"]


def test_import_with_a_bad_row_writes_nothing_and_names_line_and_field(
    hub, tmp_path, maker
) -> None:
    bad = CSV_GOOD + "Bad ISP,isp,core,nl,,10.0.0.1/8,,,,,\nWorse,isp,diamond,nl,,,,,,,\n"
    file = tmp_path / "partners.csv"
    file.write_text(bad)
    r = hub("partner", "import", str(file), ok=False)
    assert r.exit_code == 1
    assert "line 5, field ip_prefixes" in r.output
    assert "line 6, field tier" in r.output
    assert "nothing was imported" in r.output
    assert partners_in(maker) == 0
    r = hub("partner", "import", str(file), "--skip-invalid")
    assert "created 3" in r.output and "skipped 2" in r.output
    assert partners_in(maker) == 3


def test_import_json_and_file_level_errors(hub, tmp_path, maker) -> None:
    file = tmp_path / "partners.json"
    file.write_text(
        json.dumps(
            {
                "partners": [
                    {
                        "name": "KPN",
                        "type": "isp",
                        "tier": "core",
                        "region": "nl",
                        "constituency": {"asns": [1136]},
                    },
                    {"name": "kpn", "type": "isp", "tier": "core", "region": "nl"},
                ]
            }
        )
    )
    r = hub("partner", "import", str(file), ok=False)
    assert "line 2, field name: same name as line 1" in r.output
    assert partners_in(maker) == 0
    file.write_text("name,colour\nX,blue\n")
    file = file.rename(tmp_path / "p.csv")
    r = hub("partner", "import", str(file), ok=False)
    assert "unknown column(s): colour" in r.output


def test_cli_runs_from_any_directory_with_the_installed_migrations(tmp_path: Path) -> None:
    """`hub db upgrade` finds its migrations through the package, not the working directory."""
    env = {"HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'elsewhere.db'}", "PATH": ""}
    hub_cmd = [sys.executable, "-m", "hub.cli"]
    done = subprocess.run(
        [*hub_cmd, "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "database at revision" in done.stdout
    init = subprocess.run(
        [*hub_cmd, "init"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert re.search(r"^operator key: [A-Za-z0-9]{40}$", init.stdout, re.M), init.stderr


def test_worker_once_renders_what_ingest_deferred(hub, maker, tmp_path: Path) -> None:
    from hub.bench.dataset import make_event
    from hub.intel.projection import MAX_RENDER_AT_INGEST
    from hub.models import StixObject, StixRendering

    hub("init")
    file = tmp_path / "big.json"
    file.write_text(json.dumps(make_event(MAX_RENDER_AT_INGEST + 10, attribute_labels=False)))
    hub("ingest", str(file))
    with maker() as s:
        assert s.scalar(select(StixRendering.status)) == "pending"
        assert s.scalar(select(func.count(StixObject.id))) == 0
    out = hub("worker", "--once").output
    assert re.search(r"stix-render 1\b", out), out
    with maker() as s:
        assert s.scalar(select(StixRendering.status)) == "rendered"
        assert (s.scalar(select(func.count(StixObject.id))) or 0) > MAX_RENDER_AT_INGEST
    assert re.search(r"stix-render 0\b", hub("worker", "--once").output)
