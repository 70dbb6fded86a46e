"""Engine and session factories; SQLite is tuned here (WAL, foreign keys, busy timeout)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from hub.audit.chain import sqlite_chain_hash
from hub.settings import Settings


def make_engine(settings: Settings, **kwargs: Any) -> Engine:
    url = settings.database_url
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_take_write_lock)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling breaks
    # SAVEPOINT and transactional DDL); see SQLAlchemy's "Serializable isolation" recipe.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
    dbapi_connection.create_function("hub_chain_hash", 4, sqlite_chain_hash, deterministic=True)


def _sqlite_on_begin(conn: Any) -> None:
    # A unit of work that will write asks for IMMEDIATE (see ``writing``): it takes the
    # write lock up front, so concurrent writers queue on busy_timeout instead of failing
    # when a read transaction upgrades. Readers stay DEFERRED and run concurrently in WAL.
    # A "reads first" unit (see ``reads_first``) starts DEFERRED and takes the lock at its
    # first write (``_sqlite_take_write_lock``).
    options = conn.get_execution_options()
    immediate = options.get("sqlite_immediate", False)
    conn.info["hub_reads_first"] = options.get("sqlite_reads_first", False) and not immediate
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")


def _sqlite_take_write_lock(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    """First write of a "reads first" unit: end its read snapshot, then BEGIN IMMEDIATE.

    Upgrading the read transaction in place would fail with SQLITE_BUSY_SNAPSHOT whenever
    another writer committed since the snapshot began; ending it first cannot. What was
    read stays what the unit decided on; only units whose writes do not depend on a read
    (an audit append, a last-use stamp) may be "reads first".
    """
    if conn.info.get("hub_reads_first") and statement.lstrip()[:7].upper().startswith(_WRITES):
        conn.info["hub_reads_first"] = False
        cursor.execute("COMMIT")
        cursor.execute("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def writing(session: Session) -> Session:
    """Mark the session's transaction as a writer (SQLite: BEGIN IMMEDIATE); call it first."""
    session.connection(execution_options={"sqlite_immediate": True})
    return session


def reads_first(session: Session) -> Session:
    """Mark the session's transaction as "reads first" (SQLite: DEFERRED until its first
    write, which then takes the write lock): two workers serving read pages then overlap
    everything but their audit appends. PostgreSQL needs nothing. Call it first."""
    session.connection(execution_options={"sqlite_reads_first": True})
    return session


@contextmanager
def session_scope(maker: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One unit of work for a CLI command or a job: commit on success, roll back on error."""
    with maker() as session, session.begin():
        if write:
            writing(session)
        yield session
