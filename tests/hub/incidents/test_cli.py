"""`hub incidents`: the support registry and the obligation table from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.settings import get_settings

runner = CliRunner()


@pytest.fixture
def hub(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_SECRET_KEY", settings.secret_key.get_secret_value())
    get_settings.cache_clear()
    yield lambda *args: runner.invoke(cli, list(args))
    get_settings.cache_clear()


def test_support_set_show_and_a_bad_file(hub: Any, factory: Any, tmp_path: Path) -> None:
    partner = factory.partner("Z-CERT")
    entry = {
        "services": ["triage"],
        "audience": ["sector"],
        "sectors": ["health"],
        "availability": "24x7",
        "contact": {"name": "Duty", "email": "duty@z-cert.example", "phone": "+31 88 000 0000"},
    }
    path = tmp_path / "support.json"
    path.write_text(json.dumps(entry))
    result = hub("incidents", "support-set", "Z-CERT", "--file", str(path))
    assert result.exit_code == 0, result.output
    shown = hub("incidents", "support-show", partner.uuid)
    assert json.loads(shown.output)["sectors"] == ["health"]
    path.write_text(json.dumps({**entry, "availability": "sometimes"}))
    bad = hub("incidents", "support-set", "Z-CERT", "--file", str(path))
    assert bad.exit_code == 2 and "availability" in bad.output
    path.write_text(json.dumps({**entry, "sectors": []}))
    bad = hub("incidents", "support-set", "Z-CERT", "--file", str(path))
    assert bad.exit_code == 1 and "field sectors" in bad.output


def test_obligations_list_and_replace(hub: Any, tmp_path: Path) -> None:
    listed = json.loads(hub("incidents", "obligations", "--sector", "health").output)
    assert [o["deadline"] for o in listed] == ["24 hours", "72 hours", "one month"]
    path = tmp_path / "obligations.json"
    path.write_text(json.dumps({"obligations": [listed[0] | {"deadline": "24 uur"}]}))
    # the listing's read-only fields are no input: refused, naming the field
    bad = hub("incidents", "obligations-set", "health", "--file", str(path))
    assert bad.exit_code == 2 and "sector" in bad.output
    step = {k: v for k, v in listed[0].items() if k not in ("sector", "updated_at", "updated_by")}
    path.write_text(json.dumps({"obligations": [step | {"deadline": "24 uur"}]}))
    result = hub("incidents", "obligations-set", "health", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["deadline"] == "24 uur"
