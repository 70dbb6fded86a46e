"""Two submissions of the same event uuid at once, through REST and ``/misp/events/add``, to a
server with two worker processes: one stored version, one clear answer each, never a 5xx
(on PostgreSQL the second insert used to fail with UniqueViolation uq_events_uuid)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import Event, EventVersion
from hub.vocabulary import Role
from tests.builders import event
from tests.conftest import TEST_SECRET
from tests.hub.live import served_processes

ROUNDS = 4
PER_ROUND = 6  # half REST, half MISP push


def _submit(base: str, partner_key: str, sync_key: str, body: dict[str, Any], i: int) -> Any:
    with httpx.Client(timeout=60) as client:
        if i % 2:
            return client.post(
                f"{base}/misp/events/add", json=body, headers={"Authorization": sync_key}
            )
        return client.post(
            f"{base}/api/v1/events", json=body, headers={"Authorization": partner_key}
        )


def test_the_same_event_submitted_at_once_is_stored_once(
    engine: Any, factory: Any, maker: sessionmaker[Session]
) -> None:
    partner = factory.partner("Racer CSIRT", type="sectoral-csirt")
    partner_key, sync_key = factory.key(Role.PARTNER, partner), factory.key(Role.SYNC, partner)
    env = {
        "HUB_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "HUB_SECRET_KEY": TEST_SECRET,
        "HUB_LOG_LEVEL": "WARNING",
    }
    with served_processes(env, workers=2) as base:
        for round_ in range(ROUNDS):
            body = event(f"race {round_}")
            start = threading.Barrier(PER_ROUND)
            answers: list[Any] = [None] * PER_ROUND

            def send(
                i: int, body: dict[str, Any] = body, start: Any = start, out: list[Any] = answers
            ) -> None:
                start.wait()
                out[i] = _submit(base, partner_key, sync_key, body, i)

            threads = [threading.Thread(target=send, args=(i,)) for i in range(PER_ROUND)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            statuses = [a.status_code for a in answers]
            assert all(s < 500 for s in statuses), [(a.status_code, a.text[:300]) for a in answers]
            stored = [
                a
                for i, a in enumerate(answers)
                if (a.status_code == 201 if i % 2 == 0 else a.status_code == 200)
            ]
            assert len(stored) == 1, statuses
            for i, a in enumerate(answers):
                if a is stored[0]:
                    continue
                if i % 2 == 0:  # REST: unchanged
                    assert a.status_code == 200 and a.json()["unchanged"], a.text
                else:  # MISP: exists already (404 with Location) or not newer (403)
                    assert a.status_code in (403, 404), a.text
            uuid = body["Event"]["uuid"]
            with session_scope(maker, write=False) as session:
                versions = session.scalar(
                    select(func.count())
                    .select_from(EventVersion)
                    .join(Event, Event.id == EventVersion.event_id)
                    .where(Event.uuid == uuid)
                )
            assert versions == 1
