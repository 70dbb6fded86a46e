"""Registered coverage (DESIGN §2): cells and gaps at any past date, rebuilt from the partner
history; the REST route (JSON and CSV), its checks, and `hub coverage`."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.settings import get_settings
from hub.vocabulary import NetworkFunction, Region, Role, Sector

URL = "/api/v1/admin/coverage"
IS, TVN, IH, KE, TE = (f.value for f in NetworkFunction)
ALL_FUNCTIONS = [f.value for f in NetworkFunction]
ALL_SECTORS = [s.value for s in Sector]


def get(client: TestClient, auth: dict, as_of: str | None = None, **headers: str) -> dict:
    r = client.get(URL, params={"as_of": as_of} if as_of else None, headers={**auth, **headers})
    assert r.status_code == 200, r.text
    return r.json()


def cells(body: dict) -> dict[tuple[str, str, str], int]:
    return {(c["function"], c["sector"], c["region"]): c["partners"] for c in body["cells"]}


def counted_names(body: dict) -> set[str]:
    return {p["name"] for p in body["counted"]["partners"]}


class TestHistory:
    """Coverage at a date is what the history says was true then, not what is true now."""

    def test_lifecycle_over_time(self, client, auth, timeline) -> None:
        z = timeline.create("2026-01-10", "Z-CERT", sectors=["health"], functions=[IS])
        timeline.status("2026-01-15", z, "onboarding")
        timeline.status("2026-02-01", z, "active")
        timeline.status("2026-03-01", z, "suspended")
        timeline.status("2026-04-01", z, "active")
        timeline.status("2026-05-01", z, "withdrawn")
        cell = (IS, "health", "nl")
        expected = {
            "2026-01-09": False,  # did not exist yet
            "2026-01-12": False,  # prospect
            "2026-01-31": False,  # onboarding
            "2026-02-01": True,  # active from noon that day: counted at its end
            "2026-02-28": True,
            "2026-03-01": False,  # suspended
            "2026-03-31": False,
            "2026-04-15": True,  # active again
            "2026-05-01": False,  # withdrawn
        }
        for day, covered in expected.items():
            body = get(client, auth, day)
            assert body["as_of"] == day
            assert (cells(body).get(cell) == 1) is covered, day
            assert ({"function": IS, "sector": "health"} not in body["gaps"]) is covered, day
            assert ("Z-CERT" in counted_names(body)) is covered, day
        assert cell not in cells(get(client, auth))  # today: withdrawn
        statuses = get(client, auth, "2026-03-15")["counted"]["statuses"]
        assert statuses["suspended"] == 1 and statuses["active"] == 0
        assert get(client, auth, "2026-01-09")["counted"]["statuses"]["suspended"] == 0

    def test_the_days_end_in_utc_is_the_moment_counted(self, client, auth, timeline) -> None:
        p = timeline.create("2026-02-01", "Late", sectors=["energy"], functions=[IH])
        timeline.status("2026-02-01", p, "onboarding", "active", hour=23)
        timeline.status("2026-02-02", p, "suspended", hour=0)
        assert cells(get(client, auth, "2026-02-01")) == {(IH, "energy", "nl"): 1}
        assert cells(get(client, auth, "2026-02-02")) == {}

    def test_fields_as_they_were_not_as_they_are(self, client, auth, timeline) -> None:
        b = timeline.active_since("2026-01-05", "Grid ISAC", sectors=["energy"], functions=[KE])
        timeline.update(
            "2026-03-01",
            b,
            sectors=["transport"],
            constituency={"sectors": ["health"]},
            region="curacao",
            functions=[KE, TE],
        )
        before = cells(get(client, auth, "2026-02-15"))
        assert before == {(KE, "energy", "nl"): 1}
        after = cells(get(client, auth, "2026-03-02"))
        assert after == {(f, s, "curacao"): 1 for f in (KE, TE) for s in ("transport", "health")}
        now = timeline.current(b)
        assert now.region == "curacao"  # the registry moved on; February still says nl
        partner = get(client, auth, "2026-02-15")["counted"]["partners"][0]
        assert partner["region"] == "nl" and partner["sectors"] == ["energy"]
        assert partner["constituency_sectors"] == [] and partner["cells"] == 1

    def test_renamed_partner_is_named_as_it_was(self, client, auth, timeline) -> None:
        p = timeline.active_since("2026-01-05", "Old name", sectors=["food"], functions=[IS])
        timeline.update("2026-02-01", p, name="New name")
        assert counted_names(get(client, auth, "2026-01-20")) == {"Old name"}
        assert counted_names(get(client, auth, "2026-02-20")) == {"New name"}

    def test_today_equals_the_current_registry(self, client, auth, timeline, factory) -> None:
        """Replaying the whole history lands exactly on the registry as it stands."""
        timeline.active_since(
            "2026-01-05", "A", sectors=["banking"], functions=[IS, IH], region="aruba"
        )
        b = timeline.active_since("2026-01-06", "B", sectors=["space"], functions=[TE])
        timeline.update("2026-02-01", b, constituency={"sectors": ["research"]})
        factory.partner("C", sectors=["chemicals"], functions=[TVN], region="saba")
        factory.partner("D", sectors=["chemicals"], functions=[TVN], status="suspended")
        expected: dict[tuple[str, str, str], int] = {}
        listed = client.get(
            "/api/v1/admin/partners", params={"status": "active", "limit": 500}, headers=auth
        ).json()["items"]
        for p in listed:
            for f in p["functions"]:
                for s in {*p["sectors"], *p["constituency"]["sectors"]}:
                    key = (f, s, p["region"])
                    expected[key] = expected.get(key, 0) + 1
        assert cells(get(client, auth)) == expected
        assert len(expected) == 2 + 2 + 1


class TestGaps:
    def test_every_gap_rule(self, client, auth, factory) -> None:
        # one partner fills two functions × two sectors (one only through its constituency)
        factory.partner(
            "X",
            functions=[IS, IH],
            sectors=["health"],
            constituency={"sectors": ["energy", "health"]},
            region="saba",
        )
        factory.partner("Y", functions=[IS], sectors=["health"], region="saba")
        # a partner with functions but no sector is in no cell and fills no gap
        factory.partner("No sector", functions=ALL_FUNCTIONS, region="bonaire")
        # partners that are not active fill nothing
        for status in ("prospect", "onboarding", "suspended", "withdrawn"):
            factory.partner(status, status=status, functions=ALL_FUNCTIONS, sectors=ALL_SECTORS)
        body = get(client, auth)
        assert body["cells"] == [
            {"function": IS, "sector": "energy", "region": "saba", "partners": 1},
            {"function": IS, "sector": "health", "region": "saba", "partners": 2},
            {"function": IH, "sector": "energy", "region": "saba", "partners": 1},
            {"function": IH, "sector": "health", "region": "saba", "partners": 1},
        ]
        gaps = body["gaps"]
        sector_gaps = [g for g in gaps if "sector" in g]
        region_gaps = [g for g in gaps if "region" in g]
        assert all(set(g) in ({"function", "sector"}, {"function", "region"}) for g in gaps)
        assert len(sector_gaps) == 5 * 19 - 4 and len(region_gaps) == 5 * 7 - 2
        assert gaps == sector_gaps + region_gaps  # sector gaps first
        assert {"function": IS, "sector": "health"} not in gaps
        assert {"function": IH, "sector": "energy"} not in gaps
        assert {"function": TE, "sector": "health"} in gaps
        assert {"function": IS, "sector": "banking"} in gaps
        assert {"function": IS, "region": "saba"} not in gaps
        assert {"function": IH, "region": "saba"} not in gaps
        assert {"function": KE, "region": "saba"} in gaps
        assert {"function": IS, "region": "bonaire"} in gaps  # "No sector" fills nothing
        assert {"function": IS, "region": "nl"} in gaps  # the others are not active
        # NIS2 sectors first (annex I, annex II), non-vital last; functions in order
        assert sector_gaps[0] == {"function": TVN, "sector": "energy"}
        order = [g["sector"] for g in sector_gaps]
        assert order == sorted(order, key=ALL_SECTORS.index)
        assert [g["sector"] for g in sector_gaps[-5:]] == ["non-vital"] * 5
        assert [g["function"] for g in sector_gaps[-5:]] == ALL_FUNCTIONS
        assert [g["region"] for g in region_gaps[:5]] == ["nl"] * 5
        assert region_gaps[-1] == {"function": TE, "region": "sint-maarten"}

    def test_no_active_partner_everything_is_a_gap(self, client, auth) -> None:
        body = get(client, auth)
        assert body["cells"] == []
        assert len(body["gaps"]) == 5 * 19 + 5 * 7
        # the hub's own organisation is active, with every function but no sector: no cell
        (hub,) = body["counted"]["partners"]
        assert hub["name"] == "NCSC-NL" and hub["cells"] == 0 and hub["sectors"] == []

    def test_one_partner_everywhere_in_one_region(self, client, auth, factory) -> None:
        factory.partner("Everywhere", functions=ALL_FUNCTIONS, sectors=ALL_SECTORS)
        body = get(client, auth)
        assert len(body["cells"]) == 5 * 19
        assert all(c["partners"] == 1 and c["region"] == "nl" for c in body["cells"])
        assert body["gaps"] == [
            {"function": f, "region": r.value}
            for r in Region
            if r is not Region.NL
            for f in ALL_FUNCTIONS
        ]
        counted = {p["name"]: p["cells"] for p in body["counted"]["partners"]}
        assert counted == {"Everywhere": 95, "NCSC-NL": 0}


class TestCounting:
    def test_the_answer_says_how_it_was_counted(self, client, auth, timeline) -> None:
        timeline.active_since("2026-01-05", "Z-CERT", sectors=["health"], functions=[IS])
        body = get(client, auth, "2026-01-31")
        counted = body["counted"]
        assert counted["until"].startswith("2026-02-01T00:00:00")
        assert "history" in counted["source"] and "active" in counted["rule"]
        assert "NIS2" in counted["gap_order"]
        (partner,) = [p for p in counted["partners"] if p["cells"]]
        assert partner["name"] == "Z-CERT" and partner["cells"] == 1
        assert partner["functions"] == [IS] and partner["tier"] == "core"

    def test_one_tier_or_another_status(self, client, auth, factory) -> None:
        factory.partner("Core", tier="core", sectors=["health"], functions=[IS])
        factory.partner("Eco", tier="ecosystem", sectors=["health"], functions=[IS])
        factory.partner("Pipeline", status="onboarding", sectors=["space"], functions=[TE])
        assert cells(get(client, auth)) == {(IS, "health", "nl"): 2}
        r = client.get(URL, params={"tier": "ecosystem"}, headers=auth)
        assert cells(r.json()) == {(IS, "health", "nl"): 1}
        assert r.json()["counted"]["tier"] == "ecosystem"
        assert "in the ecosystem tier" in r.json()["counted"]["rule"]
        assert [p["name"] for p in r.json()["counted"]["partners"]] == ["Eco"]
        r = client.get(URL, params={"status": "onboarding"}, headers=auth)
        body = r.json()
        assert cells(body) == {(TE, "space", "nl"): 1}
        assert (
            body["counted"]["status"] == "onboarding"
            and "was onboarding" in body["counted"]["rule"]
        )
        assert {"function": TE, "sector": "space"} not in body["gaps"]
        r = client.get(f"{URL}/partners", params={"sector": "health", "tier": "core"}, headers=auth)
        assert [p["name"] for p in r.json()["partners"]] == ["Core"]
        for bad in ({"tier": "gold"}, {"status": "dormant"}):
            r = client.get(URL, params=bad, headers=auth)
            assert r.status_code == 422 and r.json()["field"] == next(iter(bad))

    def test_drill_down_to_the_partners_of_a_cell(self, client, auth, timeline) -> None:
        timeline.active_since("2026-01-05", "A", sectors=["health"], functions=[IS, IH])
        b = timeline.active_since("2026-01-05", "B", sectors=["energy"], functions=[IS])
        timeline.status("2026-03-01", b, "suspended")
        r = client.get(
            f"{URL}/partners",
            params={"function": IS, "region": "nl", "as_of": "2026-02-01"},
            headers=auth,
        )
        assert r.status_code == 200, r.text
        assert [p["name"] for p in r.json()["partners"]] == ["A", "B"]
        r = client.get(f"{URL}/partners", params={"function": IS, "sector": "energy"}, headers=auth)
        assert r.json()["partners"] == []  # B is suspended now
        r = client.get(f"{URL}/partners", params={"sector": "banking"}, headers=auth)
        assert r.status_code == 200 and r.json()["partners"] == []
        r = client.get(f"{URL}/partners", params={"sector": "nope"}, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "sector"


class TestRoute:
    def test_who_may_ask(self, client, factory) -> None:
        assert client.get(URL).status_code == 401
        assert client.get(URL, headers={"Authorization": "x" * 40}).status_code == 401
        for role in (Role.PARTNER, Role.SYNC):
            r = client.get(URL, headers={"Authorization": factory.key(role)})
            assert r.status_code == 403, role
            r = client.get(f"{URL}/partners", headers={"Authorization": factory.key(role)})
            assert r.status_code == 403, role
        for role in (Role.OPERATOR, Role.AUDITOR):
            r = client.get(URL, headers={"Authorization": factory.key(role)})
            assert r.status_code == 200, role

    @pytest.mark.parametrize(
        "value",
        ["yesterday", "2026-13-01", "2026-02-30", "2026-1-1", "20260101", "2026-01-01T00:00", " "],
    )
    def test_malformed_as_of_is_refused_naming_it(self, client, auth, value) -> None:
        r = client.get(URL, params={"as_of": value}, headers=auth)
        assert r.status_code == 422, (value, r.text)
        assert r.json()["field"] == "as_of"

    def test_the_future_is_refused_tomorrow_is_not(self, client, auth) -> None:
        far = (date.today() + timedelta(days=30)).isoformat()
        r = client.get(URL, params={"as_of": far}, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "as_of"
        tomorrow = (date.today() + timedelta(days=1)).isoformat()
        assert client.get(URL, params={"as_of": tomorrow}, headers=auth).status_code == 200

    def test_checks_come_in_order(self, client, factory) -> None:
        partner = {"Authorization": factory.key(Role.PARTNER)}
        assert client.get(URL, params={"as_of": "bad"}).status_code == 401
        assert client.get(URL, params={"as_of": "bad"}, headers=partner).status_code == 403

    def test_csv_has_the_same_figures(self, client, auth, factory) -> None:
        x = factory.partner("X", functions=[IS], sectors=["health"], region="saba")
        y = factory.partner("Y", functions=[IS, TE], sectors=["health"], region="saba")
        body = get(client, auth)
        r = client.get(URL, headers={**auth, "Accept": "text/csv"})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(r.text)))
        cell_rows = [row for row in rows if row["kind"] == "cell"]
        gap_rows = [row for row in rows if row["kind"] == "gap"]
        assert [
            {
                "function": c["function"],
                "sector": c["sector"],
                "region": c["region"],
                "partners": int(c["partners"]),
            }
            for c in cell_rows
        ] == body["cells"]
        assert [
            {k: v for k, v in row.items() if k in ("function", "sector", "region") and v}
            for row in gap_rows
        ] == body["gaps"]
        assert all(row["as_of"] == body["as_of"] for row in rows)
        both = next(c for c in cell_rows if c["function"] == IS)
        assert set(both["partner_uuids"].split(";")) == {x.uuid, y.uuid}

    def test_content_negotiation(self, client, auth) -> None:
        for accept in ("application/json", "*/*", "text/csv;q=0.5, application/json"):
            r = client.get(URL, headers={**auth, "Accept": accept})
            assert r.status_code == 200 and r.headers["content-type"].startswith(
                "application/json"
            ), accept
        for accept in ("text/csv", "application/json;q=0.5, text/csv"):
            r = client.get(URL, headers={**auth, "Accept": accept})
            assert r.headers["content-type"].startswith("text/csv"), accept
        r = client.get(URL, headers={**auth, "Accept": "application/xml"})
        assert r.status_code == 406


class TestCli:
    def test_hub_coverage_json_and_csv(self, settings, monkeypatch, timeline) -> None:
        monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
        monkeypatch.setenv("HUB_SECRET_KEY", settings.secret_key.get_secret_value())
        get_settings.cache_clear()
        try:
            z = timeline.active_since("2026-01-05", "Z-CERT", sectors=["health"], functions=[IS])
            timeline.status("2026-03-01", z, "suspended")
            runner = CliRunner()
            result = runner.invoke(cli, ["coverage", "--as-of", "2026-02-01"])
            assert result.exit_code == 0, result.output
            body = json.loads(result.output)
            assert body["as_of"] == "2026-02-01"
            assert body["cells"] == [
                {"function": IS, "sector": "health", "region": "nl", "partners": 1}
            ]
            result = runner.invoke(cli, ["coverage", "--format", "csv"])
            assert result.exit_code == 0, result.output
            rows = list(csv.DictReader(io.StringIO(result.output)))
            assert not [r for r in rows if r["kind"] == "cell"]  # suspended today
            assert len(rows) == 5 * 19 + 5 * 7
            result = runner.invoke(cli, ["coverage", "--as-of", "2026-02-31"])
            assert result.exit_code == 1 and "as_of" in result.output
            result = runner.invoke(cli, ["coverage", "--as-of", "2026-02-28", "--trend", "2"])
            assert result.exit_code == 0, result.output
            points = json.loads(result.output)["points"]
            assert [(p["as_of"], p["active_partners"]) for p in points] == [
                ("2026-01-31", 1),
                ("2026-02-28", 1),
            ]
            result = runner.invoke(cli, ["coverage", "--actual", "--as-of", "2026-02-01"])
            assert result.exit_code == 0, result.output
            (cell,) = json.loads(result.output)["cells"]
            assert cell["registered"] == 1 and cell["active"]["30"]["any"] == 0
            result = runner.invoke(cli, ["coverage", "--actual", "--format", "csv"])
            assert result.exit_code == 2
        finally:
            get_settings.cache_clear()
