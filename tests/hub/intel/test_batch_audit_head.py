"""A submission of many events holds the audit head (which every audited read of every
partner appends to) only from its last step to its commit, not for the whole batch: on
PostgreSQL its row lock made other partners' reads wait for the batch and fail with 503."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db import make_engine
from hub.intel import service
from hub.main import create_app
from hub.models import AuditEntry, Event, StixObject
from hub.settings import Settings
from hub.vocabulary import Role
from tests.builders import attr, event

WAIT = 60  # seconds a thread waits for the other before the test gives up (never reached)


def test_a_batch_in_progress_does_not_hold_up_other_partners_reads(
    settings: Settings, backend: str, factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch is paused after its first event is written; meanwhile another partner's
    audited read must complete. A statement timeout of half a second turns a wait for the
    audit head into a 503 instead of a hang (no timing is asserted)."""
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: a read's audit append waits for any write unit")
    bounded = settings.model_copy(update={"db_statement_timeout_seconds": 0.5})
    engine = make_engine(bounded, requests=True)
    source = factory.key(Role.PARTNER, factory.partner("Batch CSIRT", type="sectoral-csirt"))
    reader = factory.key(Role.PARTNER, factory.partner("Reader ISP", type="isp"))
    paused, resume = threading.Event(), threading.Event()
    applied = service._apply  # noqa: SLF001 - the hook pauses the batch between two events

    def apply_then_pause(*args: Any, **kwargs: Any) -> Any:
        outcome = applied(*args, **kwargs)
        if not paused.is_set():
            paused.set()
            resume.wait(WAIT)
        return outcome

    try:
        with TestClient(create_app(bounded, engine=engine)) as client:
            shared = event("already shared", attributes=[attr("198.51.100.90")])
            r = client.post("/api/v1/events", json=shared, headers={"Authorization": source})
            assert r.status_code == 201, r.text
            monkeypatch.setattr(service, "_apply", apply_then_pause)
            batch = [event(f"batch {i}", attributes=[attr(f"192.0.2.{i}")]) for i in range(3)]
            answers: list[Any] = []
            submitting = threading.Thread(
                target=lambda: answers.append(
                    client.post("/api/v1/events", json=batch, headers={"Authorization": source})
                )
            )
            submitting.start()
            try:
                assert paused.wait(WAIT)
                read = client.get(
                    f"/api/v1/events/{shared['Event']['uuid']}", headers={"Authorization": reader}
                )
            finally:
                resume.set()
                submitting.join(WAIT)
            assert read.status_code == 200, read.text
            assert int(read.headers["X-Hub-Audit-Seq"]) > 0  # it was audited
            assert answers and answers[0].status_code == 201, answers and answers[0].text
            assert len(answers[0].json()["stored"]) == 3
    finally:
        engine.dispose()


def test_a_batchs_stix_objects_are_dated_after_its_audit_entries(client, factory, maker) -> None:
    """``date_added`` must grow in commit order (TAXII ``added_after`` pollers miss nothing):
    it is taken under the audit head, after the batch's audit entries."""
    key = factory.key(Role.PARTNER, factory.partner("Batch CSIRT", type="sectoral-csirt"))
    batch = [event(f"dated {i}", attributes=[attr(f"192.0.2.{i}")]) for i in range(3)]
    r = client.post("/api/v1/events", json=batch, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    with maker() as s:
        last_entry = max(
            s.scalars(select(AuditEntry.recorded_at).where(AuditEntry.action == "ingest"))
        )
        dates = s.scalars(
            select(StixObject.date_added)
            .join(Event, Event.id == StixObject.event_id)
            .where(Event.uuid.in_([b["Event"]["uuid"] for b in batch]))
        ).all()
    assert dates and min(dates) >= last_entry
