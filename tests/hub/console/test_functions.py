"""The console's incident, knowledge and exercise pages (SQLite and PostgreSQL): who opens
each page and form, that a partner's page shows only what the services release to it (an
AMBER product to a CLEAR-only partner, a TLP:EX:CHR source's name: never), that reads the
release path records are recorded, and a case's lessons learned becoming a knowledge product
(console, REST, CLI) that then goes through review and publication."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from hub.lineage import service as lineage
from hub.models import AuditEntry, IncidentSupport
from hub.settings import get_settings
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.console.conftest import csrf_of, sign_in
from tests.hub.incidents.conftest import seeded_obligations  # noqa: F401 - the seeded table

SECRET_SOURCE = "Secretive Source CSIRT"


@contextmanager
def console_as(app: Any, key: str) -> Iterator[TestClient]:
    """A browser of its own, signed in with ``key``."""
    with TestClient(app) as c:
        r = sign_in(c, key)
        assert r.status_code == 303, r.text
        yield c


def post(c: TestClient, page: str, action: str, data: dict[str, Any]) -> Any:
    """A form of ``page`` posted with the page's CSRF token (no redirect followed)."""
    shown = c.get(page)
    assert shown.status_code == 200, shown.text[:500]
    return c.post(action, data={**data, "csrf": csrf_of(shown.text)}, follow_redirects=False)


def api(key: str) -> dict[str, str]:
    return {"Authorization": key}


def submitted(client: TestClient, key: str, ev: dict[str, Any]) -> str:
    r = client.post("/api/v1/events", json=ev, headers=api(key))
    assert r.status_code == 201, r.text
    return str(ev["Event"]["uuid"])


def main_of(html: str) -> str:
    """The page without its header (which names the signed-in organisation)."""
    return html.split('id="main"', 1)[1]


def releases_to(maker: Any, partner_uuid: str) -> int:
    with maker() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.recipient_uuid == partner_uuid,
                    AuditEntry.action.like("release%"),
                )
            )
        )


@pytest.fixture
def people(factory: Any) -> dict[str, Any]:
    source = factory.partner(SECRET_SOURCE, type="sectoral-csirt", sectors=["health"])
    desk = factory.partner("Knowledge Desk", type="sectoral-csirt", sectors=["energy"])
    clear = factory.partner("Clear Reader", tlp=False)
    green = factory.partner("Green Reader", tier="connection")
    return {
        "source": source,
        "source_key": factory.key(Role.PARTNER, source),
        "desk": desk,
        "author": factory.key(Role.PARTNER, desk),
        "reviewer": factory.key(Role.PARTNER, desk),
        "clear": clear,
        "clear_key": factory.key(Role.PARTNER, clear),
        "green": green,
        "green_key": factory.key(Role.PARTNER, green),
        "auditor": factory.key(Role.AUDITOR),
    }


# --- knowledge -------------------------------------------------------------------------------


def drafted(client: TestClient, people: dict[str, Any], *, tlp: str, item: str) -> str:
    body = {
        "kind": "analysis",
        "title": f"Hospital VPN abuse ({tlp})",
        "body": "Attackers reuse VPN credentials.",
        "tlp": tlp,
        "themes": ["sector-health"],
        "sources": [{"item": item}],
    }
    r = client.post("/api/v1/knowledge", json=body, headers=api(people["author"]))
    assert r.status_code == 201, r.text
    return str(r.json()["uuid"])


def test_a_product_is_reviewed_and_published_on_the_console(
    app: Any, client: TestClient, people: dict[str, Any], operator_key: str, maker: Any
) -> None:
    chr_event = event("CHR findings", tlp="amber", attributes=[attr("203.0.113.9")])
    chr_event["Event"]["Tag"].append({"name": "tlp:ex:chr"})
    item = submitted(client, people["source_key"], chr_event)
    amber = drafted(client, people, tlp="amber", item=item)
    page = f"/console/knowledge/{amber}"
    with console_as(app, people["author"]) as author:
        shown = author.get(page)
        assert shown.status_code == 200 and "draft" in shown.text
        assert 'action="/console/knowledge/' not in shown.text  # its author does not review
        assert "someone else reviews it" in shown.text
        r = author.post(
            f"{page}/review", data={"csrf": csrf_of(shown.text)}, follow_redirects=False
        )
        assert r.status_code == 403
    with console_as(app, people["auditor"]) as auditor:
        shown = auditor.get(page)
        assert shown.status_code == 200 and "Approve" not in shown.text
        r = auditor.post(
            f"{page}/review", data={"csrf": csrf_of(shown.text)}, follow_redirects=False
        )
        assert r.status_code == 403 and "changes nothing" in r.text
    with console_as(app, people["clear_key"]) as stranger:  # a draft of another org: missing
        r = stranger.get(page)
        assert r.status_code == 404 and "Hospital VPN" not in r.text
        token = csrf_of(stranger.get("/console/knowledge").text)
        r = stranger.post(f"{page}/review", data={"csrf": token}, follow_redirects=False)
        assert r.status_code == 404
    with console_as(app, people["reviewer"]) as reviewer:
        r = post(reviewer, page, f"{page}/review", {"note": "checked the sources"})
        assert r.status_code == 303, r.text
        shown = reviewer.get(r.headers["location"])
        assert "reviewed" in shown.text and "checked the sources" in shown.text
        r = post(reviewer, page, f"{page}/publish", {})
        assert r.status_code == 303
        assert re.search(r'id="product-state">published<', reviewer.get(page).text)

    # who sees the published AMBER product, and how its CHR source is credited
    for key in (people["author"], people["source_key"], operator_key):
        with console_as(app, key) as c:
            shown = c.get(page)
            assert shown.status_code == 200 and "Hospital VPN abuse" in shown.text
            body = main_of(shown.text)
            assert SECRET_SOURCE not in body and people["source"].uuid not in body
            assert "(anonymous)" in shown.text
    with console_as(app, operator_key) as c:  # lineage forward, from the source item
        used = c.get(f"/console/items/{item}").text.split('id="used-by"')[1]
        assert f"/console/knowledge/{amber}" in used.split("</ul>")[0]
    before = releases_to(maker, people["source"].uuid)
    with console_as(app, people["source_key"]) as c:  # not the owner: the release path, recorded
        assert "Hospital VPN abuse" in c.get("/console/knowledge").text
        assert c.get(page).status_code == 200
    assert releases_to(maker, people["source"].uuid) >= before + 2
    for key in (people["clear_key"], people["green_key"]):  # CLEAR only; GREEN ceiling
        with console_as(app, key) as c:
            listing = c.get("/console/knowledge")
            assert listing.status_code == 200 and "Hospital VPN abuse" not in listing.text
            r = c.get(page)
            assert r.status_code == 404 and "Hospital VPN abuse" not in r.text


def test_a_clear_only_partner_sees_a_clear_product_with_its_named_source(
    app: Any, client: TestClient, people: dict[str, Any]
) -> None:
    open_item = submitted(
        client, people["source_key"], event("Open findings", tlp="clear", distribution=3)
    )
    uuid = drafted(client, people, tlp="clear", item=open_item)
    client.post(f"/api/v1/knowledge/{uuid}/review", json={}, headers=api(people["reviewer"]))
    r = client.post(f"/api/v1/knowledge/{uuid}/publish", headers=api(people["author"]))
    assert r.status_code == 200, r.text
    with console_as(app, people["clear_key"]) as c:
        assert "Hospital VPN abuse (clear)" in c.get("/console/knowledge").text
        shown = c.get(f"/console/knowledge/{uuid}")
        assert shown.status_code == 200 and SECRET_SOURCE in main_of(shown.text)  # allowed
        assert 'id="workflow"' not in shown.text and "Approve" not in shown.text


# --- incidents and lessons learned -----------------------------------------------------------


@pytest.fixture
def case_people(factory: Any, people: dict[str, Any]) -> dict[str, Any]:
    opener = factory.partner("Hospital CERT", sectors=["health"])
    helper = factory.partner("Helper CERT", tier="connection")  # GREEN ceiling
    bystander = factory.partner("Bystander ISP")
    return {
        **people,
        "opener": opener,
        "opener_key": factory.key(Role.PARTNER, opener),
        "opener_colleague": factory.key(Role.PARTNER, opener),
        "helper": helper,
        "helper_key": factory.key(Role.PARTNER, helper),
        "bystander_key": factory.key(Role.PARTNER, bystander),
    }


def test_a_case_on_the_console_becomes_a_knowledge_product(
    app: Any, client: TestClient, case_people: dict[str, Any], maker: Any
) -> None:
    p = case_people
    green_item = submitted(client, p["opener_key"], event("Phishing wave", tlp="green"))
    amber_item = submitted(client, p["opener_key"], event("Hospital IOCs", tlp="amber"))
    with console_as(app, p["opener_key"]) as opener:
        r = post(
            opener,
            "/console/incidents",
            "/console/incidents",
            {
                "title": "Ransomware at the hospital",
                "sector": "health",
                "tlp": "green",
                "description": "File servers encrypted.",
            },
        )
        assert r.status_code == 303, r.text
        case = r.headers["location"].split("?")[0].rsplit("/", 1)[1]
        page = f"/console/incidents/{case}"
        for item in (green_item, amber_item):
            assert post(opener, page, f"{page}/items", {"event_uuid": item}).status_code == 303
        r = post(
            opener,
            page,
            f"{page}/referrals",
            {"referred": "Hospital X", "to_partner": p["helper"].uuid, "note": "forensics"},
        )
        assert r.status_code == 303
        shown = opener.get(page)
        assert green_item in shown.text and amber_item in shown.text
        assert "Helper CERT" in shown.text and "to-knowledge" not in shown.text  # still open
    with console_as(app, p["helper_key"]) as helper:  # referred: the case, not the AMBER item
        assert "Ransomware at the hospital" in helper.get("/console/incidents").text
        shown = helper.get(page)
        assert shown.status_code == 200
        assert green_item in shown.text and amber_item not in shown.text
        assert 'action="/console/incidents/' in shown.text  # it may link and refer
        assert "Close case" not in shown.text  # only the opener closes
    with console_as(app, p["bystander_key"]) as bystander:
        assert "Ransomware" not in bystander.get("/console/incidents").text
        r = bystander.get(page)
        assert r.status_code == 404 and "Ransomware" not in r.text
    with console_as(app, p["auditor"]) as auditor:  # cases are closed groups, as over REST
        assert auditor.get(page).status_code == 403

    with console_as(app, p["opener_key"]) as opener:
        r = post(opener, page, f"{page}/close", {"lessons_learned": "Keep offline backups."})
        assert r.status_code == 303
        shown = opener.get(page)
        assert "Keep offline backups." in shown.text and 'id="to-knowledge"' in shown.text
        assert "TLP:CLEAR" not in shown.text.split('id="to-knowledge"')[1]  # GREEN or stricter
        r = post(opener, page, f"{page}/knowledge", {"kind": "best-practice", "tlp": "clear"})
        assert r.status_code == 422 and "stricter" in r.text
        r = post(opener, page, f"{page}/knowledge", {"kind": "best-practice", "tlp": "amber"})
        assert r.status_code == 303, r.text
        product_page = r.headers["location"].split("?")[0]
        product = product_page.rsplit("/", 1)[1]
        shown = opener.get(product_page)
        assert "Lessons learned: Ransomware at the hospital" in shown.text
        assert "Keep offline backups." in shown.text and "draft" in shown.text
        assert f"/console/incidents/{case}" in shown.text  # lineage back to the case
        assert "Hospital CERT" not in shown.text.split('id="sources"')[1].split("</ul>")[0]
        assert product in opener.get(page).text  # and forward from the case
        assert 'id="to-knowledge"' not in opener.get(page).text  # one product per case
    with maker() as s:  # the lineage edge case → product
        graph = lineage.derived_from(s, kind="knowledge", external_id=product)
        kinds = {(n.get("kind"), n.get("external_id")) for n in graph.get("artifacts", [])}
        assert ("incident-case", case) in kinds, graph
    # then the normal review (a colleague, not the author) and publication
    with console_as(app, p["opener_colleague"]) as colleague:
        assert post(colleague, product_page, f"{product_page}/review", {}).status_code == 303
        assert post(colleague, product_page, f"{product_page}/publish", {}).status_code == 303
    with console_as(app, p["helper_key"]) as helper:  # AMBER: not for a GREEN-ceiling partner
        assert helper.get(product_page).status_code == 404
    with console_as(app, p["source_key"]) as other:  # a core partner of the community
        shown = other.get(product_page)
        assert shown.status_code == 200 and "Keep offline backups." in shown.text
        assert "Hospital CERT" not in main_of(shown.text)  # the opener: anonymously


CASE = {
    "title": "DDoS on the water board",
    "sector": "drinking-water",
    "tlp": "amber",
    "description": "Portal down.",
}


def test_lessons_to_product_over_rest(client: TestClient, case_people: dict[str, Any]) -> None:
    p = case_people
    opener = api(p["opener_key"])
    chr_event = event("CHR DDoS sources", tlp="green", attributes=[attr("198.51.100.3")])
    chr_event["Event"]["Tag"].append({"name": "tlp:ex:chr"})
    chr_item = submitted(client, p["source_key"], chr_event)
    open_item = submitted(client, p["opener_key"], event("Our findings", tlp="green"))
    case = client.post("/api/v1/incidents", json=CASE, headers=opener).json()["uuid"]
    for item in (chr_item, open_item):
        r = client.post(
            f"/api/v1/incidents/{case}/items", json={"event_uuid": item}, headers=opener
        )
        assert r.status_code == 201, r.text
    url = f"/api/v1/incidents/{case}/knowledge"
    assert client.post(url, json={}, headers=opener).status_code == 409  # not closed yet
    r = client.post(
        f"/api/v1/incidents/{case}/close",
        json={"lessons_learned": "Scrub earlier."},
        headers=opener,
    )
    assert r.status_code == 200
    r = client.post(url, json={"tlp": "green"}, headers=opener)
    assert r.status_code == 422 and r.json()["field"] == "tlp"  # lower than the case's
    r = client.post(url, json={"kind": "trend"}, headers=opener)
    assert r.status_code == 422
    r = client.post(url, json={}, headers=api(p["bystander_key"]))
    assert r.status_code == 404  # a case it may not see
    r = client.post(url, json={"kind": "analysis"}, headers=opener)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "draft" and made["tlp"] == "amber" and made["kind"] == "analysis"
    assert made["title"] == "Lessons learned: DDoS on the water board"
    assert made["body"] == "Scrub earlier."
    credits = [s["credit"] for s in made["sources"]]
    assert len(credits) == 3 and SECRET_SOURCE not in " ".join(credits)
    assert p["source"].uuid not in r.text  # the CHR item's creator, not even as a uuid
    assert "Hospital CERT" not in " ".join(credits)  # its own item too: not named
    assert sum(c == "an anonymous source" for c in credits) == 3
    assert client.post(url, json={}, headers=opener).status_code == 409  # one per case
    # review by someone else of the organisation, then publish
    product = made["uuid"]
    r = client.post(f"/api/v1/knowledge/{product}/review", json={}, headers=opener)
    assert r.status_code == 403
    r = client.post(
        f"/api/v1/knowledge/{product}/review",
        json={},
        headers=api(p["opener_colleague"]),
    )
    assert r.status_code == 200
    assert client.post(f"/api/v1/knowledge/{product}/publish", headers=opener).status_code == 200
    r = client.get(f"/api/v1/knowledge/{product}", headers=api(p["source_key"]))
    assert r.status_code == 200 and SECRET_SOURCE not in r.text


def test_a_red_case_makes_no_product_and_only_the_opener_asks(
    client: TestClient, case_people: dict[str, Any], auth: dict[str, str]
) -> None:
    p = case_people
    opener = api(p["opener_key"])
    red = client.post("/api/v1/incidents", json={**CASE, "tlp": "red"}, headers=opener).json()
    client.post(
        f"/api/v1/incidents/{red['uuid']}/close", json={"lessons_learned": "x"}, headers=opener
    )
    r = client.post(f"/api/v1/incidents/{red['uuid']}/knowledge", json={}, headers=opener)
    assert r.status_code == 409 and "names its recipients" in r.text
    case = client.post("/api/v1/incidents", json={**CASE, "tlp": "green"}, headers=opener).json()
    r = client.post(
        f"/api/v1/incidents/{case['uuid']}/referrals",
        json={"referred": "X", "to_partner": p["helper"].uuid},
        headers=opener,
    )
    assert r.status_code == 201
    client.post(
        f"/api/v1/incidents/{case['uuid']}/close", json={"lessons_learned": "y"}, headers=opener
    )
    r = client.post(
        f"/api/v1/incidents/{case['uuid']}/knowledge", json={}, headers=api(p["helper_key"])
    )
    assert r.status_code == 403  # referred, not the opener
    r = client.post(
        f"/api/v1/incidents/{case['uuid']}/knowledge", json={"name_opener": True}, headers=auth
    )
    assert r.status_code == 403  # an operator: not a partner's lessons (only the hub's own)
    r = client.post(
        f"/api/v1/incidents/{case['uuid']}/knowledge", json={"name_opener": True}, headers=opener
    )
    assert r.status_code == 201 and r.json()["tlp"] == "green"
    assert [s["credit"] for s in r.json()["sources"]] == ["Hospital CERT"]  # named, as asked


def test_lessons_to_product_from_the_cli(
    client: TestClient,
    case_people: dict[str, Any],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    auth: dict[str, str],
) -> None:
    from hub.cli import app as cli

    # The CLI acts for the hub: its own cases (a partner's lessons are the partner's to publish).
    opener = auth
    case = client.post("/api/v1/incidents", json=CASE, headers=opener).json()["uuid"]
    runner = CliRunner()
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_SECRET_KEY", settings.secret_key.get_secret_value())
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["incidents", "to-knowledge", case])
        assert result.exit_code == 1 and "not closed" in result.output
        client.post(
            f"/api/v1/incidents/{case}/close",
            json={"lessons_learned": "Patch fast."},
            headers=opener,
        )
        result = runner.invoke(cli, ["incidents", "to-knowledge", case, "--kind", "analysis"])
        assert result.exit_code == 0, result.output
        assert '"state": "draft"' in result.output and "Patch fast." in result.output
        assert '"tlp": "amber"' in result.output
    finally:
        get_settings.cache_clear()


def test_incident_support_and_obligations_pages(
    app: Any,
    case_people: dict[str, Any],
    operator_key: str,
    maker: Any,
    seeded_obligations: None,  # noqa: F811
) -> None:
    p = case_people
    own = f"/console/incidents/support/{p['opener'].uuid}"
    entry = {
        "services": ["triage", "forensics"],
        "audience": ["sector"],
        "sectors": ["health"],
        "availability": "24x7",
        "contact_name": "Duty desk",
        "contact_email": "duty@hospital-cert.example",
        "contact_phone": "+31 88 000 0000",
    }
    with console_as(app, p["opener_key"]) as opener:
        shown = opener.get("/console/incidents/support/mine")
        assert shown.status_code == 200 and "No incident support registered" in shown.text
        r = post(opener, own, own, entry)
        assert r.status_code == 303, r.text
        shown = opener.get(own)
        assert "duty@hospital-cert.example" in shown.text and "triage, forensics" in shown.text
        r = post(opener, own, own, {**entry, "audience": [], "contact_phone": "x"})
        assert r.status_code == 422  # refused naming the field, nothing saved
        other = f"/console/incidents/support/{p['helper'].uuid}"
        assert opener.get(other).status_code == 404  # another partner's: missing
        token = csrf_of(opener.get(own).text)
        r = opener.post(other, data={**entry, "csrf": token}, follow_redirects=False)
        assert r.status_code == 404
        assert opener.get("/console/incidents/support").status_code == 403
        shown = opener.get("/console/incidents/obligations")
        assert shown.status_code == 200 and "early-warning" in shown.text
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(IncidentSupport)) == 1
    with console_as(app, operator_key) as operator:
        listing = operator.get("/console/incidents/support")
        assert listing.status_code == 200 and "Hospital CERT" in listing.text
        r = post(operator, own, own, {**entry, "availability": "office-hours"})
        assert r.status_code == 303
        assert "office-hours" in operator.get(own).text
    with console_as(app, p["auditor"]) as auditor:
        shown = auditor.get(own)
        assert shown.status_code == 200 and 'id="support-form"' not in shown.text
        r = auditor.post(own, data={**entry, "csrf": csrf_of(shown.text)}, follow_redirects=False)
        assert r.status_code == 403


# --- exercises -------------------------------------------------------------------------------


def running_exercise(client: TestClient, factory: Any, auth: dict[str, str]) -> dict[str, Any]:
    """An exercise with two participants; one fetches the inject, the other never does."""
    fast = factory.partner("Fast CSIRT")
    slow = factory.partner("Slow ISP")
    ex = client.post(
        "/api/v1/admin/exercises",
        json={"name": "Ransomware drill", "participants": [fast.uuid, slow.uuid]},
        headers=auth,
    ).json()
    key = client.post(
        f"/api/v1/admin/exercises/{ex['uuid']}/keys", json={"partner": fast.uuid}, headers=auth
    ).json()["key"]
    inject = client.post(
        f"/api/v1/admin/exercises/{ex['uuid']}/injects",
        json={"name": "IOC drop", "event": event("Drill IOC")["Event"]},
        headers=auth,
    )
    assert inject.status_code == 201, inject.text
    event_uuid = inject.json()["event_uuid"]
    assert client.get(f"/api/v1/events/{event_uuid}", headers=api(key)).status_code == 200
    return {"uuid": ex["uuid"], "event": event_uuid, "key": key}


def test_exercise_pages_report_and_close(
    app: Any, client: TestClient, factory: Any, auth: dict[str, str], operator_key: str
) -> None:
    ex = running_exercise(client, factory, auth)
    page = f"/console/exercises/{ex['uuid']}"
    with console_as(app, factory.key(Role.PARTNER)) as partner:
        for url in ("/console/exercises", page, f"{page}/report", f"{page}/report.csv"):
            r = partner.get(url, follow_redirects=False)
            assert r.status_code == 403, url
            assert "Ransomware drill" not in r.text and ex["event"] not in r.text
    auditor_key = factory.key(Role.AUDITOR)
    with console_as(app, auditor_key) as auditor:
        shown = auditor.get(page)
        assert shown.status_code == 200 and 'id="close-form"' not in shown.text
        r = auditor.post(
            f"{page}/close",
            data={"csrf": csrf_of(shown.text), "reason": "x"},
            follow_redirects=False,
        )
        assert r.status_code == 403
    with console_as(app, operator_key) as operator:
        assert "Ransomware drill" in operator.get("/console/exercises").text
        shown = operator.get(page)
        assert "Fast CSIRT" in shown.text and "Slow ISP" in shown.text
        assert "IOC drop" in shown.text and ">sent<" in shown.text
        report = operator.get(f"{page}/report")
        assert report.status_code == 200
        svg = report.text.split('id="receipt-chart"')[1].split("</svg>")[0]
        assert svg.count("<rect") == 1 and "Fast CSIRT" in svg  # one participant received
        assert "not received" in svg and "Slow ISP" in svg
        assert "<script" not in report.text
        assert 'class="report-not_received"' in report.text  # sections shown as they come
        as_json = operator.get(f"{page}/report.json")
        assert as_json.status_code == 200 and as_json.json()["exercise"] == ex["uuid"]
        lines = {x["partner_name"]: x for x in as_json.json()["lines"]}
        assert lines["Fast CSIRT"]["status"] in ("received", "late")
        assert lines["Slow ISP"]["status"] == "not-received"
        as_csv = operator.get(f"{page}/report.csv")
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert as_csv.text.splitlines()[0].startswith("event_uuid,")
        r = post(operator, page, f"{page}/close", {"reason": ""})
        assert r.status_code == 422
        r = post(operator, page, f"{page}/close", {"reason": "drill over"})
        assert r.status_code == 303
        assert re.search(r'id="exercise-status">closed<', operator.get(page).text)
