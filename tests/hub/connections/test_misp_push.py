"""Pushing to a partner's MISP (a second hub's /misp API) with real PyMISP, via the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.connections import jobs
from hub.db import session_scope
from hub.intel.service import ingest_events
from hub.models import AuditEntry, Event, EventVersion, Partner, PushOutboxItem
from hub.models.base import utcnow
from tests.hub.connections.conftest import Crash, Remote, add_connection, faulty_session, run
from tests.hub.intel.conftest import attr, event


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
    monkeypatch.setattr(jobs, "SEND_BATCH", 1)
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
    job = run(maker, conn)
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
