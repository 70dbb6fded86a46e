"""The console in a real headless browser: Playwright driving Debian's Chromium.

`make install-dev` installs Debian's chromium when it is missing (Playwright's own browser
downloads are not used). These tests skip, saying why, only when no Chromium is there; every
other failure fails. Each page's screenshot is written to HUB_SCREENSHOTS (default
var/screenshots/console).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from hub.db import session_scope
from hub.models import AuditEntry, Connection, ConnectionJob, Event, Partner, QuarantineItem
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.console.conftest import CHROMIUM, hold_in_quarantine
from tests.hub.notifications.conftest import desk  # noqa: F401 - the DSN job runner

SHOTS = Path(
    os.environ.get("HUB_SCREENSHOTS", Path(__file__).parents[3] / "var" / "screenshots" / "console")
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM}: `make install-dev` installs Debian's chromium "
            "(as root, with apt-get); set HUB_TEST_CHROMIUM to use another"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def hub_url(app: Any) -> Iterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=_free_port(), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{config.port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser: Any, hub_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=hub_url)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    yield tab
    context.close()


def shot(page: Any, name: str, backend: str) -> None:
    if backend == "sqlite":  # one set is enough; PostgreSQL's pages are the same
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, key: str) -> None:
    page.goto("/console/")
    assert "/console/sign-in" in page.url
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def status_of(maker: Any, uuid: str) -> str:
    with maker() as s:
        return s.scalar(select(Partner.status).where(Partner.uuid == uuid))


def test_an_operator_finds_gaps_acts_and_follows_an_item(
    page, factory, maker, backend, operator_key
) -> None:
    zcert = factory.partner(
        "Z-CERT",
        type="sectoral-csirt",
        sectors=["health"],
        functions=["information-sharing", "incident-handling"],
    )
    factory.partner(
        "Aruba ISP",
        sectors=["digital-infrastructure"],
        functions=["information-sharing"],
        region="aruba",
    )
    source = factory.partner(
        "Source CSIRT", type="sectoral-csirt", sectors=["energy"], functions=["information-sharing"]
    )
    held = event(tlp="yellow", attributes=[attr("198.51.100.7")])
    hold_in_quarantine(maker, source, held)
    with session_scope(maker) as s:
        connection = Connection(
            name="Grid MISP",
            kind="misp-pull",
            url="https://misp.grid.example",
            partner_id=source.id,
            secret=b"-",
        )
        s.add(connection)
        s.flush()
        s.add(
            ConnectionJob(
                connection_id=connection.id,
                trigger="schedule",
                state="dead",
                attempts=5,
                last_error="remote answered 401",
            )
        )

    sign_in(page, operator_key)
    page.wait_for_url("**/console/")
    assert page.locator("#quarantine-held").inner_text() == "1"
    shot(page, "overview", backend)

    # coverage: the heat maps, the gaps, and the partners behind a cell
    page.get_by_role("link", name="Coverage").click()
    page.wait_for_url("**/console/coverage")
    assert "gap" in page.locator("table.matrix").first.inner_text()
    assert "incident-handling × energy" in page.locator("#gaps").inner_text()
    shot(page, "coverage", backend)
    page.get_by_role("link", name="information-sharing in health: 1 partners").click()
    page.wait_for_url("**/console/coverage/cell**")
    assert page.locator("#cell-partners").inner_text().count("Z-CERT") == 1
    shot(page, "coverage-cell", backend)

    # partners: search, open one, change its lifecycle with a reason
    page.get_by_role("link", name="Partners", exact=True).click()
    page.get_by_label("Name").fill("z-c")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("#partners tbody tr").count() == 1
    page.get_by_role("link", name="Z-CERT").click()
    page.get_by_label("New status").select_option("suspended")
    page.get_by_label("Reason").fill("missed two exercises")
    page.get_by_role("button", name="Change status").click()
    assert "Z-CERT is now suspended" in page.get_by_role("status").inner_text()
    assert page.locator("#status").inner_text().startswith("suspended")
    assert "missed two exercises" in page.locator("#history").inner_text()
    assert status_of(maker, zcert.uuid) == "suspended"
    shot(page, "partner", backend)

    # quarantine: release the held item with a chosen label
    page.get_by_role("link", name="Quarantine").click()
    assert "tlp:yellow" in page.content()
    shot(page, "quarantine", backend)
    page.get_by_label("Read the markings as").select_option("green")
    page.locator("form[action$='/release'] input[name=reason]").fill("source confirmed green")
    page.get_by_role("button", name="Release").click()
    assert "as TLP:green" in page.get_by_role("status").inner_text()
    assert page.locator("#none-held").is_visible()
    with maker() as s:
        assert s.scalar(select(Event.uuid)) == held["Event"]["uuid"]
        assert s.scalar(select(QuarantineItem.decision_label)) == "green"

    # connections: requeue the dead run
    page.get_by_role("link", name="Connections").click()
    assert "remote answered 401" in page.content()
    page.get_by_role("button", name="Requeue dead letters").click()
    assert "run requeued" in page.get_by_role("status").inner_text()
    with maker() as s:
        assert s.scalar(select(ConnectionJob.state)) == "queued"
    shot(page, "connections", backend)

    page.get_by_role("link", name="Notifications").click()
    shot(page, "notifications", backend)

    # the audit log: verify the chain, then follow the released item
    page.get_by_role("link", name="Audit").click()
    page.get_by_role("link", name="Verify the whole chain and Merkle tree now").click()
    assert "entries intact" in page.locator("#verification").inner_text()
    assert "Tree verified just now" in page.locator("#tree-verification").inner_text()
    shot(page, "audit", backend)
    page.goto(f"/console/items/{held['Event']['uuid']}")
    assert "version 1" in page.content() and "Source CSIRT" in page.content()
    # why did a partner (not) receive it: each channel, decided now, nothing recorded
    page.get_by_label("Partner", exact=True).select_option(label="Aruba ISP")
    page.get_by_role("button", name="Explain").click()
    rows = page.locator("#explain tbody tr")
    assert rows.count() == 4
    assert rows.first.inner_text().split("\t")[:3] == ["rest", "yes", "green"]
    shot(page, "item", backend)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in**")
    page.goto("/console/partners")
    assert "/console/sign-in" in page.url
    with maker() as s:
        actions = set(s.scalars(select(AuditEntry.action)))
    assert {"partner.status", "quarantine.released", "connection.requeue"} <= actions


def test_forged_forms_and_partner_keys_are_refused(page, factory, maker, backend, hub_url) -> None:
    partner = factory.partner("Z-CERT")
    # a sync key opens nothing
    sign_in(page, factory.key(Role.SYNC, partner))
    assert "not machine or exercise keys" in page.locator("p.error").inner_text()
    assert [c for c in page.context.cookies() if c["name"] == "hub_console"] == []
    shot(page, "sign-in-refused", backend)
    # a partner key opens its incident and knowledge pages, not the network's own
    sign_in(page, factory.key(Role.PARTNER, partner))
    page.wait_for_url("**/console/incidents")
    page.goto(f"/console/partners/{partner.uuid}")
    assert "for operators and auditors" in page.locator("p.error").inner_text()
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/sign-in**")
    # an operator signed in; a form without the CSRF token changes nothing
    sign_in(page, factory.key(Role.OPERATOR))
    page.wait_for_url("**/console/")
    cookie = next(c for c in page.context.cookies() if c["name"] == "hub_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.goto(f"/console/partners/{partner.uuid}")
    page.evaluate(
        """() => { const f = document.querySelector('form[action$="/status"]');
                   f.querySelector('input[name=csrf]').remove();
                   f.querySelector('input[name=reason]').value = 'forged'; f.submit(); }"""
    )
    page.wait_for_load_state()
    assert "CSRF" in page.locator("p.error").inner_text()
    # a form on another site posting here: the SameSite=Strict cookie stays home
    page.goto("about:blank")
    page.set_content(
        f"""<form method="post" action="{hub_url}/console/partners/{partner.uuid}/status">
            <input name="status" value="withdrawn"><input name="reason" value="forged">
            <button>go</button></form>"""
    )
    page.get_by_role("button", name="go").click()
    page.wait_for_load_state()
    assert "/console/sign-in" in page.url or "CSRF" in page.content()
    assert status_of(maker, partner.uuid) == "active"


def test_usable_on_a_phone(browser, hub_url, factory, maker, backend, operator_key) -> None:
    """At a phone's width no page scrolls sideways as a whole (wide tables scroll in their
    own box), and the navigation stays reachable."""
    partner = factory.partner(
        "Z-CERT",
        sectors=["health"],
        functions=["incident-handling"],
        constituency={"ip_prefixes": ["2001:db8:1234:5678::/64"]},
    )
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=hub_url, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    try:
        sign_in(page, operator_key)
        page.wait_for_url("**/console/")
        for path in (
            "/console/",
            "/console/coverage",
            "/console/partners",
            f"/console/partners/{partner.uuid}",
            "/console/quarantine",
            "/console/connections",
            "/console/notifications",
            "/console/audit",
        ):
            page.goto(path)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 1, (path, overflow)
            assert page.get_by_role("link", name="Coverage").is_visible()
        page.goto("/console/coverage")
        shot(page, "phone-coverage", backend)
    finally:
        context.close()


def test_an_items_lineage_is_drawn(page, factory, desk, backend, operator_key) -> None:  # noqa: F811
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    factory.partner("Hospital", constituency={"ip_prefixes": ["10.9.0.0/16"]})
    ev = event(tlp="green", attributes=[attr("10.1.1.1"), attr("10.9.9.9")])
    desk.ingest(source, ev)
    desk.drain()
    sign_in(page, operator_key)
    page.wait_for_url("**/console/")
    page.goto(f"/console/items/{ev['Event']['uuid']}")
    graph = page.locator("#lineage")
    assert graph.is_visible()
    assert graph.locator("g.node").count() >= 3  # the item and its two notifications
    assert graph.locator("line.edge").count() >= 2
    box = graph.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 40
    shot(page, "item-lineage", backend)


def test_an_exercise_report_and_a_knowledge_review_are_clicked_through(
    browser, hub_url, client, factory, auth, backend, operator_key
) -> None:
    """An operator opens an exercise, its after-action report (the SVG bars drawn, the CSV
    link answering); a partner's reviewer approves and publishes a colleague's product."""
    fast, slow = factory.partner("Fast CSIRT"), factory.partner("Slow ISP")
    ex = client.post(
        "/api/v1/admin/exercises",
        json={"name": "Browser drill", "participants": [fast.uuid, slow.uuid]},
        headers=auth,
    ).json()
    key = client.post(
        f"/api/v1/admin/exercises/{ex['uuid']}/keys", json={"partner": fast.uuid}, headers=auth
    ).json()["key"]
    inject = client.post(
        f"/api/v1/admin/exercises/{ex['uuid']}/injects",
        json={"name": "IOC drop", "event": event("Drill IOC")["Event"]},
        headers=auth,
    ).json()
    assert client.get(
        f"/api/v1/events/{inject['event_uuid']}", headers={"Authorization": key}
    ).is_success
    desk_org = factory.partner("Knowledge Desk", type="sectoral-csirt")
    author, reviewer = factory.key(Role.PARTNER, desk_org), factory.key(Role.PARTNER, desk_org)
    source = event("Findings", tlp="green")
    r = client.post("/api/v1/events", json=source, headers={"Authorization": author})
    assert r.status_code == 201, r.text
    body = {
        "kind": "analysis",
        "title": "Drill lessons",
        "body": "Fetch faster.",
        "tlp": "green",
        "sources": [{"item": source["Event"]["uuid"]}],
    }
    r = client.post("/api/v1/knowledge", json=body, headers={"Authorization": author})
    assert r.status_code == 201, r.text

    operator = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=hub_url)
    try:
        page = operator.new_page()
        sign_in(page, operator_key)
        page.wait_for_url("**/console/")
        page.get_by_role("link", name="Exercises").click()
        page.get_by_role("link", name="Browser drill").click()
        assert "IOC drop" in page.locator("#injects").inner_text()
        page.get_by_role("link", name="After-action report").click()
        chart = page.locator("#receipt-chart")
        assert chart.is_visible()
        assert chart.locator("rect").count() == 1  # Fast CSIRT received; Slow ISP did not
        assert "not received" in (chart.text_content() or "")
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300
        shot(page, "exercise-report", backend)
        with page.expect_download() as csv:
            page.get_by_role("link", name="CSV").click()
        assert csv.value.suggested_filename.endswith(".csv")
    finally:
        operator.close()

    partner = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=hub_url)
    try:
        page = partner.new_page()
        sign_in(page, reviewer)
        page.wait_for_url("**/console/incidents")
        page.get_by_role("link", name="Knowledge").click()
        page.get_by_role("link", name="Drill lessons").click()
        assert page.locator("#product-state").inner_text() == "draft"
        page.get_by_label("Review note").fill("sources checked")
        page.get_by_role("button", name="Approve (reviewed)").click()
        assert "reviewed" in page.locator("p.msg").inner_text()
        page.get_by_role("button", name="Publish").click()
        assert page.locator("#product-state").inner_text() == "published"
        assert "Knowledge Desk (item" in page.locator("#sources").inner_text()
        shot(page, "knowledge-product", backend)
    finally:
        partner.close()
