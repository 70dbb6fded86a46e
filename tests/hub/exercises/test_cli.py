"""`hub exercise`: an operator runs an exercise from a scenario file with three partners,
on the same hub as real traffic; the injects reach exactly the participants' exercise keys."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.settings import get_settings
from hub.vocabulary import Role
from tests.builders import attr, event

runner = CliRunner()


@pytest.fixture
def hub(settings, monkeypatch: pytest.MonkeyPatch):
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


def test_scenario_file_three_partners(hub, client, factory, auth, tmp_path: Path) -> None:
    names = ["Z-CERT", "IBD", "Water ISAC"]
    for name in names:
        factory.partner(name, type="sectoral-csirt")
    outsider = factory.key(Role.PARTNER, factory.partner("Outsider"))
    (tmp_path / "injects").mkdir()
    first = event("Phishing wave", attributes=[attr("203.0.113.21")])
    (tmp_path / "injects" / "first.json").write_text(json.dumps(first))
    second = event("Ransom note", attributes=[attr("203.0.113.22")])
    scenario = {
        "name": "Crisis day",
        "participants": names,
        "injects": [
            {"name": "first", "event": "injects/first.json", "send_at": "2020-01-01T09:00:00Z"},
            {"name": "by hand", "event": second},
        ],
    }
    (tmp_path / "scenario.json").write_text(json.dumps(scenario))
    eid = hub("exercise", "load", str(tmp_path / "scenario.json")).output.strip()
    assert hub("exercise", "send-due").output.strip() == "1"
    assert hub("exercise", "send-due").output.strip() == "0"
    sent = client.get(f"/api/v1/admin/exercises/{eid}", headers=auth).json()
    assert sent["status"] == "running" and len(sent["participants"]) == 3
    manual = hub("exercise", "inject", eid, "--id", "2").output.strip()
    assert manual == second["Event"]["uuid"]
    keys = [hub("exercise", "key", eid, name).output.strip() for name in names]
    for key in keys:
        listed = client.get("/api/v1/events", headers={"Authorization": key}).json()["items"]
        assert {e["uuid"] for e in listed} == {first["Event"]["uuid"], manual}
        assert all(e["info"].startswith("EXERCISE: ") for e in listed)
    assert client.get("/api/v1/events", headers={"Authorization": outsider}).json()["items"] == []
    report = json.loads(hub("exercise", "report", eid).output)
    assert {x["status"] for x in report["lines"]} == {"received"}
    assert len(report["lines"]) == 6
    assert "withdrawn" in hub("exercise", "close", eid).output
    assert hub("exercise", "inject", eid, "--id", "1", ok=False).exit_code != 0


def test_scenario_targets_from_a_file(hub, factory, maker, tmp_path: Path) -> None:
    """A scenario's fictional constituents are stored for its participant; a malformed one
    is refused naming where it is, before anything is created."""
    from sqlalchemy import func, select

    from hub.db import session_scope
    from hub.models import Exercise, ExerciseTarget

    p = factory.partner("Z-CERT", type="sectoral-csirt")
    scenario = {
        "name": "Hospital X",
        "participants": ["Z-CERT"],
        "targets": {"Z-CERT": {"ip_prefixes": ["192.0.2.0/24"], "domains": ["hospital-x.example"]}},
    }
    (tmp_path / "ok.json").write_text(json.dumps(scenario))
    hub("exercise", "load", str(tmp_path / "ok.json"))
    with session_scope(maker) as session:
        rows = session.execute(select(ExerciseTarget.partner_id, ExerciseTarget.kind)).all()
    assert sorted(rows) == [(p.id, "domain"), (p.id, "prefix")]
    scenario["targets"] = {"Z-CERT": {"ip_prefixes": ["not a prefix"]}}
    (tmp_path / "bad.json").write_text(json.dumps(scenario))
    result = hub("exercise", "load", str(tmp_path / "bad.json"), ok=False)
    assert result.exit_code == 2 and "targets.Z-CERT" in result.output, result.output
    with session_scope(maker) as session:
        assert session.scalar(select(func.count(Exercise.id))) == 1
