"""Operator REST for connections: credentials go in and never come out; test and run."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import Connection
from hub.vocabulary import Role
from tests.hub.connections.conftest import Remote


def _body(remote: Remote, partner_uuid: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "upstream",
        "kind": "misp-pull",
        "url": remote.misp_url,
        "partner": partner_uuid,
        "credentials": {"api_key": remote.key},
        "interval_seconds": 600,
        "filters": {"tags": ["tlp:green"]},
        **extra,
    }


def test_create_read_test_and_run(
    client: TestClient,
    auth: dict[str, str],
    remote: Remote,
    upstream: Any,
    maker: sessionmaker[Session],
) -> None:
    r = client.post("/api/v1/admin/connections", json=_body(remote, upstream.uuid), headers=auth)
    assert r.status_code == 201, r.text
    made = r.json()
    assert remote.key not in r.text and made["credentials_set"] == ["api_key"]
    with session_scope(maker, write=False) as session:
        stored = session.scalar(select(Connection))
        assert stored is not None and remote.key.encode() not in stored.secret

    listed = client.get("/api/v1/admin/connections", headers=auth).json()
    assert [c["name"] for c in listed["items"]] == ["upstream"] and remote.key not in str(listed)

    report = client.post(f"/api/v1/admin/connections/{made['uuid']}/test", headers=auth).json()
    assert report["ok"] is True, report
    assert "MISP 2.5.1" in report["report"] and "may sync" in report["report"]

    queued = client.post(f"/api/v1/admin/connections/{made['uuid']}/run", headers=auth)
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    jobs = client.get(f"/api/v1/admin/connections/{made['uuid']}/jobs", headers=auth).json()
    assert [j["uuid"] for j in jobs["items"]] == [queued.json()["uuid"]]

    again = client.post(
        "/api/v1/admin/connections", json=_body(remote, upstream.uuid), headers=auth
    )
    assert again.status_code == 409 and again.json()["field"] == "name"


def test_test_reports_a_wrong_key_in_plain_words(
    client: TestClient, auth: dict[str, str], remote: Remote, upstream: Any
) -> None:
    body = _body(remote, upstream.uuid, credentials={"api_key": "z" * 40})
    made = client.post("/api/v1/admin/connections", json=body, headers=auth).json()
    report = client.post(f"/api/v1/admin/connections/{made['uuid']}/test", headers=auth).json()
    assert report["ok"] is False
    assert "refused the key (401" in report["report"] and "needs fixing" in report["report"]


def test_roles_and_validation(
    client: TestClient, factory: Any, auth: dict[str, str], upstream: Any
) -> None:
    auditor = {"Authorization": factory.key(Role.AUDITOR)}
    body = {
        "name": "x",
        "kind": "taxii-pull",
        "url": "https://taxii.example/taxii2/",
        "partner": upstream.uuid,
        "credentials": {"api_key": "k" * 40},
    }
    assert client.post("/api/v1/admin/connections", json=body, headers=auditor).status_code == 403
    assert client.get("/api/v1/admin/connections", headers=auditor).status_code == 200
    r = client.post("/api/v1/admin/connections", json=body, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "filters"  # no collection named
    r = client.post("/api/v1/admin/connections", json={**body, "kind": "ftp-pull"}, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == "kind"
