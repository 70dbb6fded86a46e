"""Connections never reach loopback, link-local or cloud-metadata addresses; private ranges
only with HUB_CONNECTIONS_ALLOW_PRIVATE. Checked at create and update (names resolved) and
again at connect time, on the address actually connected to.

No test here sends traffic anywhere but 127.0.0.1: every other address is refused before a
connection is attempted, or stored without being contacted."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from hub.connections.outbound import (
    STRICT,
    OutboundRefused,
    OutboundRules,
    check_url,
    checked_pools,
)
from hub.main import create_app
from hub.models import Partner
from hub.settings import Settings
from tests.hub.connections.conftest import Remote, add_connection, run

ALWAYS_REFUSED = [
    "http://169.254.169.254/latest/meta-data/",  # AWS, GCP, Azure metadata (link-local)
    "http://[fd00:ec2::254]/",  # AWS metadata over IPv6
    "http://100.100.100.200/",  # Alibaba Cloud metadata
    "http://[fe80::1]/",
    "http://0.0.0.0:8080/",
    "http://224.0.0.1/",
]
LOOPBACK = [
    "http://127.0.0.1:8080/",
    "http://127.9.9.9/",
    "http://[::1]/",
    "http://localhost/",
    "http://[::ffff:127.0.0.1]/",
]
PRIVATE = [
    "https://10.0.0.5/",
    "http://172.16.1.1:8443/",
    "https://192.168.1.10/",
    "http://[fd12:3456::1]/",
    "http://100.64.0.1/",
]


@pytest.mark.parametrize("url", ALWAYS_REFUSED + LOOPBACK + PRIVATE)
def test_strict_rules_refuse(url: str) -> None:
    with pytest.raises(OutboundRefused) as refused:
        check_url(url, STRICT)
    assert refused.value.field == "url"


@pytest.mark.parametrize("url", ALWAYS_REFUSED)
def test_metadata_and_link_local_are_refused_whatever_is_allowed(url: str) -> None:
    with pytest.raises(OutboundRefused):
        check_url(url, OutboundRules(allow_private=True, allow_loopback=True))


def test_private_and_loopback_only_when_allowed() -> None:
    for url in PRIVATE:
        check_url(url, OutboundRules(allow_private=True))
        with pytest.raises(OutboundRefused):
            check_url(url, OutboundRules(allow_loopback=True))
    for url in LOOPBACK:
        check_url(url, OutboundRules(allow_loopback=True))
        with pytest.raises(OutboundRefused):
            check_url(url, OutboundRules(allow_private=True))
    check_url("https://misp.example/", STRICT)  # resolves nowhere yet: checked at connect
    assert STRICT.refusal(ipaddress.ip_address("203.0.113.9")) is not None  # documentation
    assert STRICT.refusal(ipaddress.ip_address("145.100.1.1")) is None  # a public address


@pytest.fixture
def strict_client(settings: Settings, engine: Any) -> Any:
    strict = settings.model_copy(update={"connections_allow_loopback": False})
    with TestClient(create_app(strict, engine=engine)) as client:
        yield client


def _body(url: str, partner: Partner, name: str = "outbound") -> dict[str, Any]:
    return {
        "name": name,
        "kind": "misp-pull",
        "url": url,
        "partner": partner.uuid,
        "credentials": {"api_key": "k" * 40},
    }


def test_create_and_update_refuse_with_a_422_on_url(
    strict_client: TestClient, auth: dict[str, str], upstream: Partner
) -> None:
    for url in ALWAYS_REFUSED + LOOPBACK + PRIVATE:
        r = strict_client.post("/api/v1/admin/connections", json=_body(url, upstream), headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "url", (url, r.text)
    made = strict_client.post(
        "/api/v1/admin/connections", json=_body("https://misp.example/", upstream), headers=auth
    )
    assert made.status_code == 201, made.text
    ref = made.json()["uuid"]
    r = strict_client.patch(
        f"/api/v1/admin/connections/{ref}", json={"url": "http://169.254.169.254/"}, headers=auth
    )
    assert r.status_code == 422 and r.json()["field"] == "url"
    assert strict_client.get(f"/api/v1/admin/connections/{ref}", headers=auth).json()["url"] == (
        "https://misp.example/"
    )


def test_private_ranges_with_the_setting(
    settings: Settings, engine: Any, auth: dict[str, str], upstream: Partner
) -> None:
    private = settings.model_copy(
        update={"connections_allow_loopback": False, "connections_allow_private": True}
    )
    with TestClient(create_app(private, engine=engine)) as client:
        r = client.post(
            "/api/v1/admin/connections", json=_body("https://10.0.0.5/", upstream), headers=auth
        )
        assert r.status_code == 201, r.text  # stored, not contacted
        r = client.post(
            "/api/v1/admin/connections",
            json=_body("http://169.254.169.254/", upstream, "metadata"),
            headers=auth,
        )
        assert r.status_code == 422


def test_checked_again_when_connecting(
    strict_client: TestClient,
    auth: dict[str, str],
    remote: Remote,
    upstream: Partner,
    maker: sessionmaker[Session],
) -> None:
    """Stored while loopback was allowed: a worker or a test under strict rules refuses to
    connect (the job is dead with the reason, not retried)."""
    conn = add_connection(
        maker,
        name="was-allowed",
        kind="misp-pull",
        url=remote.misp_url,
        partner=upstream,
        key=remote.key,
    )
    report = strict_client.post(f"/api/v1/admin/connections/{conn.uuid}/test", headers=auth)
    assert report.status_code == 200
    assert report.json()["ok"] is False and "loopback" in report.json()["report"]
    job = run(maker, conn, rules=STRICT)
    assert job.state == "dead" and "loopback" in (job.last_error or ""), job.last_error


def test_the_connected_address_is_checked(remote: Remote) -> None:
    """What a name resolved to at the last check does not matter (DNS rebinding): the
    connection's own peer address is checked right after connecting."""
    connection = checked_pools(STRICT)["http"].ConnectionCls("127.0.0.1", remote.served.port)
    with pytest.raises(requests.exceptions.InvalidURL, match="loopback"):
        connection.connect()
    assert connection.sock is None or connection.sock.fileno() == -1
    allowed = checked_pools(OutboundRules(allow_loopback=True))["http"].ConnectionCls(
        "127.0.0.1", remote.served.port
    )
    allowed.connect()
    assert isinstance(allowed.sock, socket.socket)
    allowed.close()
