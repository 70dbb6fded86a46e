"""A second hub as the remote MISP / TAXII server: its own SQLite database, served by uvicorn
on a loopback port, stoppable and restartable on the same port (the remote "going down")."""

from __future__ import annotations

import socket
import threading
import time
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from requests.adapters import HTTPAdapter
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub import migrate
from hub.auth import service as keys
from hub.connections import jobs
from hub.connections import service as connections
from hub.connections.outbound import OutboundRules
from hub.connections.schemas import ConnectionCreate
from hub.db import make_engine, make_sessionmaker, session_scope
from hub.intel.service import ingest_events
from hub.main import create_app
from hub.models import Connection, ConnectionJob, Partner
from hub.models.base import utcnow
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate
from hub.settings import Settings
from hub.vocabulary import PartnerStatus, Role
from tests.conftest import TEST_SECRET

REMOTE_SECRET = "remote-secret-" + "y" * 40
# The remotes of these tests listen on 127.0.0.1: loopback is allowed explicitly (a
# development-only setting that production refuses); everything else stays refused.
LOOPBACK = OutboundRules(allow_loopback=True)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"connections_allow_loopback": True})


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """An app on a fixed loopback port that can be stopped and started again."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        if self.server is not None and self.thread is not None:
            self.server.should_exit = True
            self.thread.join(10)
            self.server = None


def _partner(session: Session, name: str, **fields: Any) -> Partner:
    data = PartnerCreate(
        name=name,
        type=fields.pop("type", "sectoral-csirt"),
        tier="core",
        region="nl",
        tlp_accepted_at="2026-01-01",
        **fields,
    )
    partner = partners.create(session, data=data, actor="test")
    for step in (PartnerStatus.ONBOARDING, PartnerStatus.ACTIVE):
        partners.change_status(session, partner=partner, status=step, reason="t", actor="test")
    return partner


@dataclass
class Remote:
    """The remote hub: its database, its organisations, a sync key for us, and its server."""

    maker: sessionmaker[Session]
    served: Served
    csirt: Partner  # the remote's partner whose events we pull
    us: Partner  # the remote's record of our hub (same uuid as our hub's organisation)
    key: str  # a sync key of ``us`` on the remote

    @property
    def misp_url(self) -> str:
        return f"{self.served.url}/misp/"

    def add_events(self, events: list[dict[str, Any]], *, source: Partner | None = None) -> None:
        with session_scope(self.maker) as session:
            org = session.get(Partner, (source or self.csirt).id)
            ingest_events(
                session,
                payloads=events,
                source=org,
                actor="test",
                channel="rest",
                policy=tlp.DEFAULT_POLICY,
            )


@pytest.fixture
def remote(tmp_path: Path, hub_org: Partner) -> Iterator[Remote]:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'remote.db'}",
        secret_key=REMOTE_SECRET,
        log_json=False,
        log_level="WARNING",
    )
    engine: Engine = make_engine(settings)
    migrate.upgrade(engine)
    maker = make_sessionmaker(engine)
    with session_scope(maker) as session:
        partners.ensure_hub_org(session, name="Remote MISP org", actor="test")
        csirt = _partner(session, "Remote CSIRT")
        us = _partner(session, "CWN hub", uuid=hub_org.uuid, type="national-csirt")
        key = keys.create_key(
            session, partner=us, role=Role.SYNC, secret=REMOTE_SECRET, actor="test"
        ).key
    served = Served(create_app(settings, engine=engine))
    served.start()
    try:
        yield Remote(maker, served, csirt, us, key)
    finally:
        served.stop()
        engine.dispose()


@pytest.fixture
def upstream(factory: Any) -> Partner:
    """Our partner record for the remote's organisation (the owner of a pull connection)."""
    return factory.partner("Upstream CSIRT", type="sectoral-csirt")  # type: ignore[no-any-return]


def add_connection(
    maker: sessionmaker[Session],
    *,
    name: str,
    kind: str,
    url: str,
    partner: Partner,
    key: str,
    filters: dict[str, Any] | None = None,
    credentials: dict[str, str] | None = None,
) -> Connection:
    with session_scope(maker) as session:
        return connections.create(
            session,
            data=ConnectionCreate(
                name=name,
                kind=kind,  # type: ignore[arg-type]
                url=url,
                partner=partner.uuid,
                credentials=credentials or {"api_key": key},  # type: ignore[arg-type]
                filters=filters or {},
                interval_seconds=60,
            ),
            secret=TEST_SECRET,
            actor="test",
            rules=LOOPBACK,
        )


def run(
    maker: sessionmaker[Session],
    connection: Connection,
    *,
    http: requests.Session | None = None,
    now: Any = None,
    max_steps: int = 200,
    rules: OutboundRules = LOOPBACK,
) -> ConnectionJob:
    """Queue a run (or reuse the open one) and run it until it is done, dead or waiting
    (or ``max_steps`` batches have run)."""
    with session_scope(maker) as session:
        row = session.get(Connection, connection.id)
        job_id = connections.enqueue(session, connection=row, trigger="manual", now=now).id
    job = None
    for _ in range(max_steps):
        done = jobs.run_next(
            maker,
            policy=tlp.DEFAULT_POLICY,
            secret=TEST_SECRET,
            http=http,
            now=now or utcnow(),
            job_id=job_id,
            rules=rules,
        )
        job = job_of(maker, job_id)
        if not done or job.state != "queued":
            return job
    assert job is not None
    return job  # still queued after max_steps batches


def job_of(maker: sessionmaker[Session], job_id: int) -> ConnectionJob:
    with session_scope(maker, write=False) as session:
        job = session.get(ConnectionJob, job_id)
        assert job is not None
        return job


class Crash(BaseException):
    """A process dying: not an Exception, so nothing catches it on the way out."""


class Faulty(HTTPAdapter):
    """A transport that answers with ``faults`` first (a status code, "timeout", "crash",
    "crash-after" the request reached the remote, or "hold": wait until ``release`` is set,
    with ``holding`` set meanwhile), one per request, then sends for real."""

    def __init__(self, faults: list[int | str], *, after: int = 0) -> None:
        super().__init__()
        self.faults = list(faults)
        self.after = after
        self.sent = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.sent += 1
        if self.sent > self.after and self.faults:
            fault = self.faults.pop(0)
            if fault == "hold":
                self.holding.set()
                assert self.release.wait(30), "the test never released the held request"
                return super().send(request, **kwargs)
            if fault == "timeout":
                raise requests.ReadTimeout("read timed out (injected)", request=request)
            if fault == "crash":
                raise Crash()
            if fault == "crash-after":  # the remote got it; we die before recording that
                super().send(request, **kwargs)
                raise Crash()
            response = requests.Response()
            response.status_code = int(fault)
            response._content = b'{"message": "injected failure"}'  # noqa: SLF001 - made by hand
            response.headers["Content-Type"] = "application/json"
            response.url = request.url or ""
            response.request = request
            return response
        return super().send(request, **kwargs)


def faulty_session(faults: list[int | str], *, after: int = 0) -> tuple[requests.Session, Faulty]:
    adapter = Faulty(faults, after=after)
    session = requests.Session()
    session.mount("http://", adapter)
    return session, adapter


def new_uuid() -> str:
    return str(uuid_mod.uuid4())


Later = Callable[[int], Any]
