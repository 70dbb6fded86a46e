"""A signed-in console client (cookies kept by the test client, as a browser keeps them)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.db import session_scope
from hub.intel import service as intel
from hub.models import Partner

CSRF = re.compile(r'name="csrf" value="([^"]*)"')
CHROMIUM = Path(os.environ.get("HUB_TEST_CHROMIUM", "/usr/bin/chromium"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without a Chromium the browser tests skip on SQLite, saying why, and their PostgreSQL
    twins are deselected: a skipped PostgreSQL test would fail a run that has a database."""
    if CHROMIUM.exists():
        return
    dropped = [i for i in items if "test_browser.py" in i.nodeid and "[postgresql" in i.nodeid]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [i for i in items if i not in dropped]


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, html[:2000]
    return match.group(1)


def sign_in(client: TestClient, key: str, *, follow: bool = False) -> Any:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    return client.post(
        "/console/sign-in",
        data={"key": key, "csrf": csrf_of(page.text), "next": "/console/"},
        follow_redirects=follow,
    )


def form_token(client: TestClient, page: str = "/console/") -> str:
    r = client.get(page)
    assert r.status_code == 200, r.text[:500]
    return csrf_of(r.text)


def hold_in_quarantine(maker: Any, source: Partner, event: dict[str, Any]) -> None:
    """Submit an event whose marking the hub cannot read (it is held, not stored)."""
    import tlp

    with session_scope(maker) as session:
        outcomes = intel.ingest_events(
            session,
            payloads=[event],
            source=session.get(Partner, source.id),
            actor="test",
            channel="rest",
            policy=tlp.DEFAULT_POLICY,
        )
    assert [o.status for o in outcomes] == ["quarantined"]


@pytest.fixture
def console(client: TestClient, operator_key: str) -> TestClient:
    r = sign_in(client, operator_key)
    assert r.status_code == 303, r.text
    return client
