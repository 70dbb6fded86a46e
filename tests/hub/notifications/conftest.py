"""Helpers for the DSN tests: ingest through the intel service, run the job until idle."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.db import session_scope
from hub.intel import service as intel
from hub.models import Partner
from hub.notifications import jobs, service
from hub.runtime import Runtime
from hub.settings import Settings
from tests.hub.misp_compat.conftest import misp_url  # noqa: F401 - the hub under uvicorn


class Desk:
    """Ingests events as a source partner and drains the notification job."""

    def __init__(self, maker: sessionmaker[Session], settings: Settings) -> None:
        self.maker = maker
        self.context = Runtime(
            settings=settings.model_copy(update={"notify_interval_seconds": 0}),
            policy=tlp.DEFAULT_POLICY,
        )

    def ingest(self, source: Partner, *events: dict[str, Any]) -> None:
        with session_scope(self.maker) as session:
            owner = session.get(Partner, source.id)
            intel.ingest_events(
                session,
                payloads=list(events),
                source=owner,
                actor="test",
                channel="rest",
                policy=tlp.DEFAULT_POLICY,
            )

    def drain(self, rules: service.Rules | None = None) -> int:
        done = 0
        while True:
            with session_scope(self.maker) as session:
                count = jobs.run_due(session, self.context, rules=rules)
            if not count:
                return done
            done += count


@pytest.fixture
def desk(maker: sessionmaker[Session], settings: Settings) -> Desk:
    return Desk(maker, settings)
