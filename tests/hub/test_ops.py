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


def test_metrics_show_the_workers_backlog(client: TestClient, auth, factory, maker) -> None:
    """The worker's state is read from the database at each scrape: queued, dead and failing
    connection runs, the push outbox, what waits for matching, the audit log."""
    import uuid as uuid_mod
    from datetime import timedelta

    from hub.db import session_scope
    from hub.models import Connection, ConnectionJob, PushOutboxItem
    from hub.models.base import utcnow
    from tests.builders import attr, event

    source = factory.partner("Source")
    r = client.post(
        "/api/v1/events",
        json=event(attributes=[attr("198.51.100.7")]),
        headers={"Authorization": factory.key(Role.PARTNER, source)},
    )
    assert r.status_code == 201
    with session_scope(maker) as s:
        conn = Connection(
            uuid=str(uuid_mod.uuid4()),
            name="upstream",
            kind="misp-push",
            url="https://misp.example/",
            partner_id=source.id,
            secret=b"x",
            last_error="remote said 503",
        )
        s.add(conn)
        s.flush()
        s.add(ConnectionJob(connection_id=conn.id, trigger="schedule", state="dead"))
        s.add(
            ConnectionJob(
                connection_id=conn.id,
                trigger="schedule",
                state="queued",
                attempts=3,
                run_after=utcnow() + timedelta(seconds=120),
            )
        )
        s.add(
            PushOutboxItem(
                connection_id=conn.id,
                event_uuid=str(uuid_mod.uuid4()),
                event_version=1,
                payload=b"",
                state="pending",
                created_at=utcnow() - timedelta(seconds=600),
            )
        )
    text = client.get("/metrics", headers=auth).text
    values = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert values['hub_connection_runs{connection="upstream",kind="misp-push",state="dead"}'] == 1
    assert values['hub_connection_attempts{connection="upstream"}'] == 3
    assert 60 < values['hub_connection_backoff_seconds{connection="upstream"}'] <= 120
    assert values['hub_connection_failing{connection="upstream",kind="misp-push"}'] == 1
    assert values['hub_push_outbox_items{connection="upstream",state="pending"}'] == 1
    assert values['hub_push_outbox_oldest_pending_seconds{connection="upstream"}'] >= 600
    assert values["hub_notification_versions_unmatched"] == 1
    assert values["hub_audit_entries"] >= 1
