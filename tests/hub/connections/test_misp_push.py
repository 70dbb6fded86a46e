"""Pushing to a partner's MISP (a second hub's /misp API) with real PyMISP, via the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.connections import leases, misp_push
from hub.db import session_scope
from hub.intel.service import ingest_events
from hub.models import (
    Attribute,
    AuditEntry,
    Connection,
    Event,
    EventVersion,
    Partner,
    PushOutboxItem,
)
from hub.models.base import utcnow
from hub.runtime import Runtime
from tests.builders import attr, event
from tests.hub.connections.conftest import Crash, Remote, add_connection, faulty_session, run


def _submit(maker: sessionmaker[Session], org: Partner, events: list[dict[str, Any]]) -> None:
    with session_scope(maker) as session:
        ingest_events(
            session,
            payloads=events,
            source=session.get(Partner, org.id),
            actor="test",
            channel="rest",
            policy=tlp.DEFAULT_POLICY,
        )


def _remote_versions(remote: Remote) -> dict[str, int]:
    with session_scope(remote.maker, write=False) as session:
        return dict(
            session.execute(
                select(Event.uuid, func.count(EventVersion.id))
                .join(EventVersion, EventVersion.event_id == Event.id)
                .group_by(Event.uuid)
            ).all()
        )


@pytest.fixture
def partner_misp(factory: Any) -> Partner:
    return factory.partner("Partner CSIRT", type="sectoral-csirt")  # type: ignore[no-any-return]


def _outbox(maker: sessionmaker[Session]) -> list[PushOutboxItem]:
    with session_scope(maker, write=False) as session:
        return list(session.scalars(select(PushOutboxItem).order_by(PushOutboxItem.id)))


def test_push_sends_released_versions_once_and_withholds_the_rest(
    maker: sessionmaker[Session], remote: Remote, hub_org: Partner, partner_misp: Partner
) -> None:
    green = [event(f"green {i}", tlp="green", distribution=3) for i in range(3)]
    red = event("red", tlp="red", distribution=3)
    draft = event("draft", tlp="green", distribution=3, published=False)
    _submit(maker, hub_org, [*green, red, draft])
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    assert job.stats.get("added") == 3 and job.stats.get("withheld") == 1, job.stats
    assert set(_remote_versions(remote)) == {e["Event"]["uuid"] for e in green}
    # Each outbox row has its release in the audit log, for this partner, over MISP sync.
    with session_scope(maker, write=False) as session:
        for item in _outbox(maker):
            entry = session.scalar(select(AuditEntry).where(AuditEntry.seq == item.audit_seq))
            assert entry is not None and entry.recipient_uuid == partner_misp.uuid
            assert entry.channel == "misp-sync" and entry.decision == "allow"
    with session_scope(remote.maker, write=False) as session:
        tags = {
            t for e in session.scalars(select(Event)) for t in __import__("orjson").loads(e.tags)
        }
    assert "tlp:green" in tags

    # A new version is pushed as an edit; unchanged events are not sent again.
    changed = dict(green[0]["Event"])
    changed["timestamp"] = str(int(changed["timestamp"]) + 1000)
    changed["Attribute"] = [*changed["Attribute"], attr("203.0.113.5")]
    _submit(maker, hub_org, [{"Event": changed}])
    second = run(maker, conn)
    assert second.stats.get("edited") == 1 and "added" not in second.stats, second.stats
    assert _remote_versions(remote)[changed["uuid"]] == 2


def test_remote_down_mid_push_then_back_everything_once(
    maker: sessionmaker[Session],
    remote: Remote,
    hub_org: Partner,
    partner_misp: Partner,
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(misp_push, "SEND_BATCH", 1)
    events = [event(f"e {i}", tlp="green", distribution=3) for i in range(4)]
    _submit(maker, hub_org, events)
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    job = run(maker, conn, max_steps=2)  # decide all four, then send one
    assert len(_remote_versions(remote)) == 1
    remote.served.stop()
    job = run(maker, conn)
    assert job.state == "queued" and job.attempts == 1 and job.last_error
    # Decided already: the outbox holds every release while the remote is down.
    assert len(_outbox(maker)) == 4
    remote.served.start()
    job = run(maker, conn, now=utcnow() + timedelta(hours=2))
    assert job.state == "done", job.last_error
    assert _remote_versions(remote) == {e["Event"]["uuid"]: 1 for e in events}
    # The failed attempt left no delivery on record: one release per event actually sent.
    with session_scope(maker, write=False) as session:
        releases = session.scalars(
            select(AuditEntry.object_ref).where(
                AuditEntry.action == "release", AuditEntry.recipient_uuid == partner_misp.uuid
            )
        ).all()
    assert sorted(releases) == sorted(f"event:{e['Event']['uuid']}" for e in events)


def test_crash_after_the_remote_stored_it_counts_not_newer_as_done(
    maker: sessionmaker[Session], remote: Remote, hub_org: Partner, partner_misp: Partner
) -> None:
    events = [event("once", tlp="green", distribution=3)]
    _submit(maker, hub_org, events)
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    http, _ = faulty_session(["crash-after"], after=1)  # HEAD passes; the add lands, we die
    with pytest.raises(Crash):
        run(maker, conn, http=http)
    [pending] = _outbox(maker)  # the release was recorded before the send
    assert pending.state == "pending"
    job = run(maker, conn, now=utcnow() + timedelta(seconds=leases.LEASE_SECONDS + 1))
    assert job.state == "done", job.last_error
    assert _outbox(maker)[0].outcome == "not-newer"
    assert _remote_versions(remote) == {events[0]["Event"]["uuid"]: 1}


def test_a_partner_suspended_after_the_decision_gets_nothing_until_active_again(
    maker: sessionmaker[Session],
    remote: Remote,
    hub_org: Partner,
    partner_misp: Partner,
) -> None:
    from hub.partners import service as partners
    from hub.vocabulary import PartnerStatus

    events = [event(f"e {i}", tlp="green", distribution=3) for i in range(2)]
    _submit(maker, hub_org, events)
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    run(maker, conn, max_steps=1)  # the decisions are made and queued, nothing sent yet
    assert [item.state for item in _outbox(maker)] == ["pending", "pending"]

    def move(status: PartnerStatus, reason: str | None) -> None:
        with session_scope(maker) as session:
            partner = session.get(Partner, partner_misp.id)
            partners.change_status(
                session, partner=partner, status=status, reason=reason, actor="test"
            )

    move(PartnerStatus.SUSPENDED, "incident at the partner")
    held = run(maker, conn)
    assert held.stats.get("held") and _remote_versions(remote) == {}
    assert [item.state for item in _outbox(maker)] == ["pending", "pending"]
    move(PartnerStatus.ACTIVE, None)
    run(maker, conn)
    assert set(_remote_versions(remote)) == {e["Event"]["uuid"] for e in events}


def _remote_values(remote: Remote) -> dict[str, set[str]]:
    """Event uuid → the attribute values the remote holds."""
    with session_scope(remote.maker, write=False) as session:
        out: dict[str, set[str]] = {}
        for uuid, value in session.execute(
            select(Event.uuid, Attribute.value).join(Attribute, Attribute.event_id == Event.id)
        ):
            out.setdefault(uuid, set()).add(value)
        return out


def test_a_version_superseded_before_sending_is_skipped(
    maker: sessionmaker[Session], remote: Remote, hub_org: Partner, partner_misp: Partner
) -> None:
    first = event("changing", tlp="green", distribution=3, attributes=[attr("192.0.2.10")])
    _submit(maker, hub_org, [first])
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    run(maker, conn, max_steps=1)  # version 1 decided into the outbox, not sent
    changed = dict(first["Event"])
    changed["timestamp"] = str(int(changed["timestamp"]) + 1000)
    changed["Attribute"] = [*changed["Attribute"], attr("192.0.2.11")]
    _submit(maker, hub_org, [{"Event": changed}])
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    assert job.stats.get("superseded") == 1 and job.stats.get("added") == 1, job.stats
    assert [(i.event_version, i.state) for i in _outbox(maker)] == [(1, "superseded"), (2, "sent")]
    # Only the current version went out: the remote holds it once, as one version.
    assert _remote_versions(remote) == {changed["uuid"]: 1}
    assert _remote_values(remote)[changed["uuid"]] == {"192.0.2.10", "192.0.2.11"}


def test_clearance_lowered_after_the_decision_withholds_amber_at_send_time(
    client: Any,
    auth: dict[str, str],
    maker: sessionmaker[Session],
    remote: Remote,
    hub_org: Partner,
    partner_misp: Partner,
) -> None:
    mixed = event(
        "mixed",
        tlp="green",
        distribution=3,
        attributes=[attr("192.0.2.20"), attr("192.0.2.21", tlp="amber")],
    )
    amber = event("amber only", tlp="amber", distribution=3, attributes=[attr("192.0.2.22")])
    _submit(maker, hub_org, [mixed, amber])
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    run(maker, conn, max_steps=1)  # decided while the partner was core: both queued
    assert [i.state for i in _outbox(maker)] == ["pending", "pending"]
    lowered = client.patch(  # the partner moves to the tier whose ceiling is GREEN
        f"/api/v1/admin/partners/{partner_misp.uuid}", json={"tier": "connection"}, headers=auth
    )
    assert lowered.status_code == 200, lowered.text
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    mixed_uuid, amber_uuid = mixed["Event"]["uuid"], amber["Event"]["uuid"]
    # The fresh decision went out: the GREEN part only; the AMBER event not at all.
    assert _remote_values(remote) == {mixed_uuid: {"192.0.2.20"}}
    sent, withheld = _outbox(maker)
    assert sent.state == "sent" and withheld.state == "withheld"
    assert "withheld when decided again" in (withheld.last_error or "")
    with session_scope(maker, write=False) as session:
        deny = session.scalar(select(AuditEntry).where(AuditEntry.seq == withheld.audit_seq))
        allow = session.scalar(select(AuditEntry).where(AuditEntry.seq == sent.audit_seq))
        # what was withheld from the partial push is in the refusal beside its delivery
        beside = session.scalar(select(AuditEntry).where(AuditEntry.seq == sent.audit_seq + 1))
    assert deny is not None and deny.decision == "deny"
    assert deny.object_ref == f"event:{amber_uuid}" and deny.recipient_uuid == partner_misp.uuid
    assert allow is not None and allow.decision == "allow"
    assert allow.body["details"]["removed_count"] == 0  # the partner's entry names nothing
    assert beside is not None and beside.body["details"]["delivery"] == sent.audit_seq
    assert beside.decision == "deny" and beside.body["details"]["removed_count"] == 1


def test_a_new_published_version_is_pushed_at_the_next_worker_round(
    maker: sessionmaker[Session],
    remote: Remote,
    hub_org: Partner,
    partner_misp: Partner,
    settings: Any,
) -> None:
    from hub import worker

    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key=remote.key,
    )
    context = Runtime(settings=settings, policy=tlp.DEFAULT_POLICY)
    worker.run_due(maker, context)  # the first scheduled run: nothing to push yet

    def next_run() -> Any:
        with session_scope(maker, write=False) as session:
            return session.get(Connection, conn.id).next_run_at  # type: ignore[union-attr]

    assert next_run() > utcnow() + timedelta(seconds=30)  # the next one is a minute away
    _submit(maker, hub_org, [event("draft", tlp="green", distribution=3, published=False)])
    worker.run_due(maker, context)
    assert next_run() > utcnow() + timedelta(seconds=30)  # unpublished: MISP does not sync it
    assert _remote_versions(remote) == {}
    published = event("now", tlp="green", distribution=3)
    _submit(maker, hub_org, [published])
    worker.run_due(maker, context)  # not a minute later: this round
    assert set(_remote_versions(remote)) == {published["Event"]["uuid"]}
    assert next_run() > utcnow() + timedelta(seconds=30)  # and then back to its schedule


def test_dead_letters_are_requeued_after_the_cause_is_fixed(
    client: Any,
    auth: dict[str, str],
    factory: Any,
    maker: sessionmaker[Session],
    remote: Remote,
    hub_org: Partner,
    partner_misp: Partner,
) -> None:
    from hub.vocabulary import Role

    events = [event("once", tlp="green", distribution=3)]
    _submit(maker, hub_org, events)
    conn = add_connection(
        maker,
        name="partner",
        kind="misp-push",
        url=remote.misp_url,
        partner=partner_misp,
        key="w" * 40,  # a key the remote does not know
    )
    url = f"/api/v1/admin/connections/{conn.uuid}/requeue"
    assert client.post(url, headers=auth).status_code == 409  # nothing is dead yet
    dead = run(maker, conn)
    assert dead.state == "dead" and "refused the key (401" in (dead.last_error or "")
    assert _remote_versions(remote) == {}

    assert client.post(url).status_code == 401
    auditor = {"Authorization": factory.key(Role.AUDITOR)}
    assert client.post(url, headers=auditor).status_code == 403
    fixed = client.patch(
        f"/api/v1/admin/connections/{conn.uuid}",
        json={"credentials": {"api_key": remote.key}},
        headers=auth,
    )
    assert fixed.status_code == 200, fixed.text
    requeued = client.post(url, headers=auth)
    assert requeued.status_code == 202, requeued.text
    assert requeued.json()["job"]["uuid"] == dead.uuid
    assert requeued.json()["job"]["state"] == "queued"
    job = run(maker, conn)
    assert job.uuid == dead.uuid and job.state == "done", job.last_error
    assert _remote_versions(remote) == {events[0]["Event"]["uuid"]: 1}
    assert [i.state for i in _outbox(maker)] == ["sent"]
    with session_scope(maker, write=False) as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "connection.requeue"))
    assert entry is not None
    assert entry.body["details"]["job"] == dead.uuid
    assert "401" in entry.body["details"]["last_error"]

    # A push the remote refused (4xx on that event only) is dead on its own, then requeued.
    refused = [event("refused once", tlp="green", distribution=3)]
    _submit(maker, hub_org, refused)
    http, _ = faulty_session([422], after=1)  # HEAD passes; the add is refused
    job = run(maker, conn, http=http)
    assert job.state == "done" and job.stats.get("rejected") == 1, job.stats
    assert _outbox(maker)[-1].state == "dead"
    again = client.post(url, headers=auth).json()
    assert again["pushes_requeued"] == 1
    assert run(maker, conn).state == "done"
    assert _remote_versions(remote)[refused[0]["Event"]["uuid"]] == 1
    assert [i.state for i in _outbox(maker)] == ["sent", "sent"]
