"""The Host header a client sends is never trusted: URLs the hub hands out come from
HUB_PUBLIC_URL (or, in development, the address it listens on), and in production a request
naming another host answers 400 (DESIGN §2, issue #13)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hub.main import create_app
from hub.settings import Settings
from hub.vocabulary import Role
from tests.builders import event

EVIL = {"Host": "attacker.example"}
PUBLIC = "https://hub.example/cwn"


def _production(settings: Settings, engine: Any, **more: Any) -> TestClient:
    prod = settings.model_copy(
        update={"production": True, "allow_sqlite": True, "public_url": PUBLIC, **more}
    )
    prod.check()
    return TestClient(create_app(prod, engine=engine), base_url="https://hub.example")


def test_production_refuses_unknown_hosts_before_anything_else(
    settings: Settings, engine: Any, operator_key: str
) -> None:
    auth = {"Authorization": operator_key}
    with _production(settings, engine, trusted_hosts=["hub-internal.example"]) as client:
        assert client.get("/api/v1/me", headers=auth).status_code == 200
        for host in ("attacker.example", "hub.example.attacker.example", "127.0.0.1", ""):
            r = client.get("/api/v1/me", headers={**auth, "Host": host})
            assert r.status_code == 400 and r.json()["field"] == "Host", (host, r.text)
        r = client.get("/misp/servers/getVersion", headers=EVIL)  # even before 401
        assert r.status_code == 400 and r.json()["saved"] is False
        for host in ("HUB.example:443", "hub-internal.example:8000"):
            assert client.get("/api/v1/me", headers={**auth, "Host": host}).status_code == 200
        assert client.get("/health", headers={"Host": "10.1.2.3:8000"}).status_code == 200


def test_development_answers_any_host_but_never_builds_urls_from_it(
    client: TestClient, factory: Any
) -> None:
    partner = factory.partner("Link CSIRT", type="sectoral-csirt")
    key = factory.key(Role.SYNC, partner)
    headers = {"Authorization": key, **EVIL}
    discovery = client.get("/taxii2/", headers=headers)
    assert discovery.status_code == 200
    assert "attacker" not in discovery.text
    assert discovery.json()["api_roots"] == ["http://testserver/taxii2/cwn/"]
    me = client.get("/misp/users/view/me", headers=headers).json()
    assert me["User"]["email"].endswith("@testserver")
    ev = event("linked")
    assert client.post("/misp/events/add", json=ev, headers=headers).status_code == 200
    again = client.post("/misp/events/add", json=ev, headers=headers)
    assert again.status_code == 404
    assert again.headers["Location"].startswith("http://testserver/misp/events/")


def test_generated_urls_use_the_public_url(settings: Settings, engine: Any, factory: Any) -> None:
    key = factory.key(Role.SYNC, factory.partner("Public CSIRT", type="sectoral-csirt"))
    public = settings.model_copy(update={"public_url": PUBLIC})
    with TestClient(create_app(public, engine=engine)) as client:
        headers = {"Authorization": key, **EVIL}
        discovery = client.get("/taxii2/", headers=headers).json()
        assert discovery["api_roots"] == [f"{PUBLIC}/taxii2/cwn/"]
        ev = event("public")
        client.post("/misp/events/add", json=ev, headers=headers)
        again = client.post("/misp/events/add", json=ev, headers=headers)
        assert again.headers["Location"].startswith(f"{PUBLIC}/misp/events/")
        email = client.get("/misp/users/view/me", headers=headers).json()["User"]["email"]
        assert email.endswith("@hub.example")
