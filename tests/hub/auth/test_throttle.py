"""Failed authentication is rate-limited per source address and per key hint, across
workers (the counts live in the database), with 429 and Retry-After; a valid key from
another address is unaffected; failures are counted in /metrics and audited per block."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.auth.service import NOT_VALID
from hub.main import create_app
from hub.models import AuditEntry
from hub.settings import Settings
from hub.vocabulary import Role

ME = "/api/v1/me"
LIMIT = 3
HINT_LIMIT = 5
ATTACKER = ("203.0.113.7", 40000)
PARTNER = ("198.51.100.20", 40000)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "auth_failure_limit": LIMIT,
            "auth_hint_failure_limit": HINT_LIMIT,
            "auth_failure_window_seconds": 600,
            "auth_block_seconds": 120,
        }
    )


@contextmanager
def worker(settings: Settings, engine: Any, address: tuple[str, int]) -> Iterator[TestClient]:
    """One API worker (its own app and pool, the shared database) seen from ``address``."""
    with TestClient(create_app(settings, engine=engine), client=address) as client:
        yield client


def bad_key(tail: str = "zzzz") -> str:
    return "A" * 36 + tail


def throttle_audits(maker: sessionmaker[Session]) -> list[dict[str, Any]]:
    with maker() as session:
        return [
            {"ref": e.object_ref, **e.body["details"]}
            for e in session.scalars(select(AuditEntry).where(AuditEntry.action == "auth.throttle"))
        ]


def test_an_address_is_blocked_after_the_limit_across_workers(
    settings: Settings, engine: Any, factory: Any, maker: sessionmaker[Session]
) -> None:
    valid = factory.key(Role.PARTNER)
    with worker(settings, engine, ATTACKER) as one, worker(settings, engine, ATTACKER) as two:
        assert one.get(ME, headers={"Authorization": valid}).status_code == 200
        answers = [
            (one if i % 2 else two).get(ME, headers={"Authorization": bad_key(f"{i:04d}")})
            for i in range(LIMIT)
        ]  # failures on two workers add up
        assert [r.status_code for r in answers] == [401] * (LIMIT - 1) + [429]
        blocked = two.get(ME, headers={"Authorization": valid})  # even a valid key, from there
        assert blocked.status_code == 429
        assert 0 < int(blocked.headers["Retry-After"]) <= 120
        assert blocked.json()["error"] == "too_many_requests"
        misp = one.get("/misp/servers/getVersion", headers={"Authorization": bad_key()})
        assert misp.status_code == 429 and misp.json()["saved"] is False
        taxii = one.get("/taxii2/", headers={"Authorization": bad_key()})
        assert taxii.status_code == 429 and taxii.json()["http_status"] == "429"
    with worker(settings, engine, PARTNER) as elsewhere:
        assert elsewhere.get(ME, headers={"Authorization": valid}).status_code == 200
    audits = throttle_audits(maker)
    assert [(a["ref"], a["failures"]) for a in audits] == [(f"address:{ATTACKER[0]}", LIMIT)]


def test_a_key_hint_is_blocked_for_keys_that_do_not_work_only(
    settings: Settings, engine: Any, factory: Any, maker: sessionmaker[Session]
) -> None:
    """Guesses at one key (same last four characters) from many addresses: refused with 429
    once past the hint limit, while the real key with that hint goes on working."""
    valid = factory.key(Role.PARTNER)
    hint = valid[-4:]
    statuses = []
    for i in range(HINT_LIMIT + 1):
        with worker(settings, engine, (f"192.0.2.{i + 1}", 40000)) as client:
            guess = "B" * 35 + str(i % 10) + hint
            statuses.append(client.get(ME, headers={"Authorization": guess}).status_code)
    assert statuses == [401] * (HINT_LIMIT - 1) + [429, 429]
    with worker(settings, engine, ("192.0.2.200", 40000)) as client:
        assert client.get(ME, headers={"Authorization": valid}).status_code == 200
        assert client.get(ME, headers={"Authorization": "C" * 36 + hint}).status_code == 429
    assert [a["ref"] for a in throttle_audits(maker)] == [f"hint:{hint}"]


def test_failures_are_counted_in_metrics_by_reason_and_answered_alike(
    settings: Settings, engine: Any, factory: Any, auth: dict[str, str]
) -> None:
    partner = factory.partner("Suspended soon")
    revoked = factory.key(Role.PARTNER, partner)
    with worker(settings, engine, PARTNER) as client:
        uuid = client.get(ME, headers={"Authorization": revoked}).json()["key"]["uuid"]
        client.delete(f"/api/v1/admin/partners/{partner.uuid}/keys/{uuid}", headers=auth)
        r = client.get(ME, headers={"Authorization": revoked})
        assert (r.status_code, r.json()["detail"]) == (401, NOT_VALID)
        r = client.get(ME, headers={"Authorization": bad_key()})
        assert (r.status_code, r.json()["detail"]) == (401, NOT_VALID)
        assert client.get(ME).status_code == 401  # no key: not a failure to count
        metrics = client.get("/metrics", headers=auth).text
    assert 'hub_auth_failures_total{reason="revoked"} 1.0' in metrics
    assert 'hub_auth_failures_total{reason="unknown"} 1.0' in metrics
    assert "missing" not in metrics


def test_the_block_ends(settings: Settings, engine: Any, factory: Any) -> None:
    short = settings.model_copy(update={"auth_block_seconds": 1})
    valid = factory.key(Role.PARTNER)
    with worker(short, engine, ATTACKER) as client:
        for _ in range(LIMIT):
            client.get(ME, headers={"Authorization": bad_key()})
        assert client.get(ME, headers={"Authorization": valid}).status_code == 429
        time.sleep(1.5)
        assert client.get(ME, headers={"Authorization": valid}).status_code == 200


def test_a_revoked_key_behind_a_shared_address_is_blocked_alone(
    settings: Settings, engine: Any, factory: Any, auth: dict[str, str], maker: Any
) -> None:
    """Partners behind one NAT: a machine retrying with a revoked key gets 429 for that key
    once past the per-key limit, while another partner's valid key from the same address
    goes on working; the address itself is counted only for keys that name nothing."""
    per_address = settings.model_copy(
        update={"auth_key_failure_limit": LIMIT, "auth_failure_limit": 4 * LIMIT}
    )
    gone = factory.partner("Retrying CSIRT")
    revoked = factory.key(Role.PARTNER, gone)
    valid = factory.key(Role.PARTNER, factory.partner("Neighbour ISP"))
    with worker(per_address, engine, ATTACKER) as nat:
        uuid = nat.get(ME, headers={"Authorization": revoked}).json()["key"]["uuid"]
        nat.delete(f"/api/v1/admin/partners/{gone.uuid}/keys/{uuid}", headers=auth)
        statuses = [
            nat.get(ME, headers={"Authorization": revoked}).status_code for _ in range(4 * LIMIT)
        ]
        assert statuses == [401] * (LIMIT - 1) + [429] * (3 * LIMIT + 1)
        blocked = nat.get(ME, headers={"Authorization": revoked})
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
        assert nat.get(ME, headers={"Authorization": valid}).status_code == 200
        # Guesses from the same address still meet the (higher) address ceiling.
        guesses = [
            nat.get(ME, headers={"Authorization": bad_key(f"{i:04d}")}).status_code
            for i in range(4 * LIMIT)
        ]
        assert guesses == [401] * (4 * LIMIT - 1) + [429]
        assert nat.get(ME, headers={"Authorization": valid}).status_code == 429
    refs = [a["ref"] for a in throttle_audits(maker)]
    assert refs[-1] == f"address:{ATTACKER[0]}" and refs[0].startswith("key:"), refs
    assert revoked not in " ".join(refs)  # the key itself is never stored
