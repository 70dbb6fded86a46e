"""Shared fixtures: every database test runs on SQLite and, with HUB_TEST_PG_URL, PostgreSQL.

Each backend gets a fresh database migrated with `alembic upgrade head` once per run;
after each test every table is emptied, so tests start from nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from hub import migrate
from hub.auth import service as keys
from hub.db import make_engine, make_sessionmaker, session_scope
from hub.main import create_app
from hub.models import Base, Partner
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate
from hub.settings import Settings
from hub.vocabulary import PartnerStatus, Role

PG_URL = os.environ.get("HUB_TEST_PG_URL")
TEST_SECRET = "test-secret-" + "x" * 40
BACKENDS = ["sqlite", "postgresql"]


_pg_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "[postgresql" in report.nodeid:
        _pg_skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With HUB_TEST_PG_URL set, a skipped PostgreSQL test fails the run: CI must not pass blind."""
    skipped = len(_pg_skipped)
    if PG_URL and skipped:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"HUB_TEST_PG_URL is set but {skipped} PostgreSQL test(s) were skipped", red=True
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _pg_engine_for_new_database() -> tuple[Engine, Callable[[], None]]:
    assert PG_URL
    admin_url = make_url(PG_URL)
    name = f"hub_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as err:  # any failure here must fail, not skip
        admin.dispose()
        pytest.fail(f"HUB_TEST_PG_URL is set but PostgreSQL cannot be used: {err}")
    url = admin_url.set(database=name)
    engine = make_engine(Settings(database_url=url.render_as_string(hide_password=False)))

    def drop() -> None:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return engine, drop


@pytest.fixture(scope="session", params=BACKENDS)
def db_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A migrated database per backend, shared by the run."""
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("HUB_TEST_PG_URL is not set")
        engine, drop = _pg_engine_for_new_database()
    else:
        path = tmp_path_factory.mktemp("sqlite") / "hub.db"
        engine = make_engine(Settings(database_url=f"sqlite:///{path}"))
        drop = engine.dispose
    migrate.upgrade(engine)
    yield engine
    drop()


_HEAD_ROW = (
    "INSERT INTO audit_head (id, seq, prev_hash, entry_hash) VALUES (1, 0, '{0}', '{0}')".format(
        "0" * 64
    )
)
APPEND_ONLY = ("audit_entries", "audit_tree_nodes", "audit_checkpoints")
_RELEASE_INDEX_ROW = "INSERT INTO release_index_state (id, upto_seq) VALUES (1, 0)"


def _empty_all_tables(engine: Engine) -> None:
    """Start the next test from nothing; the audit log's append-only triggers are lifted for it."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in APPEND_ONLY:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            names = ", ".join(f'"{t}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            for table in APPEND_ONLY:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
            conn.execute(text(_HEAD_ROW))
            conn.execute(text(_RELEASE_INDEX_ROW))
        else:
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            conn.execute(text(_HEAD_ROW))
            conn.execute(text(_RELEASE_INDEX_ROW))
            for _, sql in triggers:
                conn.execute(text(sql))


@pytest.fixture
def engine(db_engine: Engine) -> Iterator[Engine]:
    yield db_engine
    _empty_all_tables(db_engine)


@pytest.fixture
def backend(engine: Engine) -> str:
    return engine.dialect.name


@pytest.fixture
def settings(engine: Engine) -> Settings:
    return Settings(
        database_url=engine.url.render_as_string(hide_password=False),
        secret_key=TEST_SECRET,
        log_json=False,
        log_level="WARNING",
        max_body_bytes=4 * 1024 * 1024,
        # Tests send many bad keys from one address on purpose; the throttle has its own tests.
        auth_failure_limit=100_000,
        auth_hint_failure_limit=100_000,
        auth_key_failure_limit=100_000,
    )


@pytest.fixture
def maker(engine: Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def app(settings: Settings, engine: Engine) -> Any:
    return create_app(settings, engine=engine)


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def hub_org(maker: sessionmaker[Session]) -> Partner:
    with session_scope(maker) as session:
        org, _ = partners.ensure_hub_org(session, name="NCSC-NL", actor="test")
    return org


class KeyFactory:
    """Makes partners and keys straight through the services (no HTTP)."""

    def __init__(self, maker: sessionmaker[Session], hub_org: Partner) -> None:
        self.maker = maker
        self.hub_org = hub_org

    def partner(
        self,
        name: str | None = None,
        *,
        status: PartnerStatus = PartnerStatus.ACTIVE,
        tlp: bool = True,
        **fields: Any,
    ) -> Partner:
        data = PartnerCreate(
            name=name or f"Partner {uuid.uuid4().hex[:6]}",
            type=fields.pop("type", "isp"),
            tier=fields.pop("tier", "core"),
            region=fields.pop("region", "nl"),
            tlp_accepted_at="2026-01-01" if tlp else None,
            **fields,
        )
        with session_scope(self.maker) as session:
            partner = partners.create(session, data=data, actor="test")
            walk = {
                PartnerStatus.PROSPECT: [],
                PartnerStatus.ONBOARDING: [PartnerStatus.ONBOARDING],
                PartnerStatus.ACTIVE: [PartnerStatus.ONBOARDING, PartnerStatus.ACTIVE],
                PartnerStatus.SUSPENDED: [
                    PartnerStatus.ONBOARDING,
                    PartnerStatus.ACTIVE,
                    PartnerStatus.SUSPENDED,
                ],
                PartnerStatus.WITHDRAWN: [PartnerStatus.WITHDRAWN],
            }[status]
            for step in walk:
                partners.change_status(
                    session, partner=partner, status=step, reason="test", actor="test"
                )
        return partner

    def key(self, role: Role | str, partner: Partner | None = None, **kwargs: Any) -> str:
        role = Role(role)
        if partner is None:
            partner = self.hub_org if role in (Role.OPERATOR, Role.AUDITOR) else self.partner()
        with session_scope(self.maker) as session:
            owner = session.get(Partner, partner.id)
            assert owner is not None
            issued = keys.create_key(
                session, partner=owner, role=role, secret=TEST_SECRET, actor="test", **kwargs
            )
        return issued.key


@pytest.fixture
def factory(maker: sessionmaker[Session], hub_org: Partner) -> KeyFactory:
    return KeyFactory(maker, hub_org)


@pytest.fixture
def operator_key(factory: KeyFactory) -> str:
    return factory.key(Role.OPERATOR)


@pytest.fixture
def auth(operator_key: str) -> dict[str, str]:
    return {"Authorization": operator_key}
