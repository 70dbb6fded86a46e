"""/health, /metrics, request ids."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hub.vocabulary import Role


def test_health_is_public_and_checks_the_database(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["database"] == "ok"


def test_health_reports_a_database_that_is_gone(settings, engine) -> None:
    from sqlalchemy import create_engine

    from hub.main import create_app

    dead = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with TestClient(create_app(settings, engine=dead)) as c:
        r = c.get("/health")
        me = c.get("/api/v1/me", headers={"Authorization": "a" * 40})
    assert r.status_code == 503 and r.json()["database"] == "unavailable"
    assert me.status_code == 503 and me.json()["error"] == "database_unavailable"


def test_metrics_count_requests_by_route_and_status(client: TestClient, auth, factory) -> None:
    client.get("/api/v1/me", headers=auth)
    client.get("/api/v1/me")
    assert (
        client.get("/metrics", headers={"Authorization": factory.key(Role.PARTNER)}).status_code
        == 403
    )
    r = client.get("/metrics", headers={"Authorization": factory.key(Role.AUDITOR)})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'hub_http_requests_total{method="GET",route="/api/v1/me",status="200"} 1.0' in text
    assert 'hub_http_requests_total{method="GET",route="/api/v1/me",status="401"} 1.0' in text
    assert "hub_http_request_duration_seconds_bucket" in text


def test_request_id_is_returned_and_a_safe_incoming_one_kept(client: TestClient) -> None:
    assert len(client.get("/health").headers["x-request-id"]) == 32
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    bad = client.get("/health", headers={"X-Request-ID": "x\ny" * 50}).headers["x-request-id"]
    assert bad != "x\ny" * 50
