"""Review: a partner suspended while a push batch is being sent has what is left of the
batch held (sent once it is active again), not withheld for good (a lost push)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import Partner
from hub.partners import service as partners
from hub.vocabulary import PartnerStatus
from tests.builders import event
from tests.hub.connections.conftest import Remote, add_connection, faulty_session, run
from tests.hub.connections.test_misp_push import _outbox, _remote_versions, _submit


def _move(maker: sessionmaker[Session], partner: Partner, status: PartnerStatus) -> None:
    with session_scope(maker) as session:
        row = session.get(Partner, partner.id)
        reason = "incident at the partner" if status == PartnerStatus.SUSPENDED else None
        partners.change_status(session, partner=row, status=status, reason=reason, actor="test")


def test_a_suspension_mid_batch_holds_the_rest_until_active_again(
    maker: sessionmaker[Session], remote: Remote, hub_org: Partner, factory: Any
) -> None:
    partner_misp = factory.partner("Partner CSIRT", type="sectoral-csirt")
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
    run(maker, conn, max_steps=1)  # both versions decided into the outbox
    http, adapter = faulty_session(["hold"], after=1)  # HEAD passes; the first add is held
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(run(maker, conn, http=http)))
    worker.start()
    try:
        assert adapter.holding.wait(20), "the job never reached the remote"
        _move(maker, partner_misp, PartnerStatus.SUSPENDED)  # while the first push is on the wire
    finally:
        adapter.release.set()
        worker.join(30)
    assert outcome and outcome[0].state == "done", outcome
    first, second = _outbox(maker)
    assert first.state == "sent"  # decided again and on its way before the suspension
    assert second.state == "pending", (second.state, second.last_error)  # held, not withheld
    assert set(_remote_versions(remote)) == {events[0]["Event"]["uuid"]}

    _move(maker, partner_misp, PartnerStatus.ACTIVE)
    job = run(maker, conn)
    assert job.state == "done", job.last_error
    assert set(_remote_versions(remote)) == {e["Event"]["uuid"] for e in events}
    assert [i.state for i in _outbox(maker)] == ["sent", "sent"]
