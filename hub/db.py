"""Engine and session factories; SQLite is tuned here (WAL, foreign keys, busy timeout).

Waits are bounded (DESIGN §4 rule 10): a pooled connection is waited for at most
``HUB_DB_POOL_TIMEOUT_SECONDS``, SQLite's write lock at most ``HUB_DB_BUSY_TIMEOUT_SECONDS``
and a PostgreSQL statement runs at most ``HUB_DB_STATEMENT_TIMEOUT_SECONDS``; each then
fails, and the API answers 503 with ``Retry-After``.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from hub.errors import RETRY_AFTER_SECONDS, DatabaseUnavailable
from hub.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

# Waits of units that are not requests (CLI, worker, migrations): they may take their time.
BACKGROUND_WAIT_SECONDS = 30.0


def make_engine(settings: Settings, *, requests: bool = False, **kwargs: Any) -> Engine:
    """An engine for ``settings``; ``requests=True`` for the API's, whose waits are bounded
    by the ``HUB_DB_*`` timeouts and whose PostgreSQL statements get ``statement_timeout``."""
    url = settings.database_url
    wait = settings.db_busy_timeout_seconds if requests else BACKGROUND_WAIT_SECONDS
    pool: dict[str, Any] = {
        "pool_size": settings.db_pool_size,
        "max_overflow": 0,
        "pool_timeout": settings.db_pool_timeout_seconds if requests else BACKGROUND_WAIT_SECONDS,
    }
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is None:  # in memory: one database per connection, SQLAlchemy's own pool
            pool = {}
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": wait},
            **{**pool, **kwargs},
        )
        event.listen(engine, "connect", partial(_sqlite_on_connect, busy_ms=int(wait * 1000)))
        event.listen(engine, "begin", _sqlite_on_begin)
        event.listen(engine, "before_cursor_execute", _sqlite_take_write_lock)
        return engine
    connect_args = {}
    if requests and settings.db_statement_timeout_seconds:
        ms = int(settings.db_statement_timeout_seconds * 1000)
        connect_args["options"] = f"-c statement_timeout={ms}"
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **{**pool, **kwargs})


#: SQL functions every SQLite connection gets, registered by the package that owns them
#: (``hub.audit.chain`` registers ``hub_chain_hash``) before the first connection is made.
SQLITE_FUNCTIONS: dict[str, tuple[int, Callable[..., Any]]] = {}


def sqlite_function(name: str, arity: int) -> Callable[[F], F]:
    """Register ``function`` as the deterministic SQL function ``name`` on SQLite."""

    def register(function: F) -> F:
        SQLITE_FUNCTIONS[name] = (arity, function)
        return function

    return register


def _sqlite_on_connect(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's own transaction handling breaks
    # SAVEPOINT and transactional DDL); see SQLAlchemy's "Serializable isolation" recipe.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.close()
    for name, (arity, function) in SQLITE_FUNCTIONS.items():
        dbapi_connection.create_function(name, arity, function, deterministic=True)


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


def writer_bind(engine: Engine) -> Engine:
    """The engine for units that write (SQLite: BEGIN IMMEDIATE at their first statement,
    not before; see ``writing``). Sessions bound to it connect lazily, so nothing is held
    until the unit touches the database."""
    return engine.execution_options(sqlite_immediate=True)


def reader_bind(engine: Engine) -> Engine:
    """The engine for "reads first" units (see ``reads_first``), connecting lazily."""
    return engine.execution_options(sqlite_reads_first=True)


@contextmanager
def session_scope(maker: sessionmaker[Session], *, write: bool = True) -> Iterator[Session]:
    """One unit of work for a CLI command or a job: commit on success, roll back on error."""
    with maker() as session, session.begin():
        if write:
            writing(session)
        yield session


def bulk_insert(connection: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    """Insert many rows the fastest way each database offers: one COPY on PostgreSQL, one
    DBAPI executemany on SQLite, both fed lazily from ``rows`` — memory stays flat, and on
    PostgreSQL the server works through what was sent while the next rows are made (a COPY
    per 1,000 rows left it idle in between: ~0.5 s of 10^5, measured). Values must already
    be database-ready (booleans, ints, text, bytes and None only), and every row must have
    the same keys in the same order (rows made by one function)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return
    values = (tuple(r.values()) for r in itertools.chain((first,), rows))
    bulk_insert_values(connection, table, tuple(first), values)


def insert_json_rows(
    connection: Connection,
    table: Table,
    *,
    lead: tuple[str, Any],
    names: Sequence[str],
    rows_json: bytes,
    blobs: Collection[str] = (),
) -> None:
    """SQLite: insert the rows of ``rows_json`` (a JSON array of value arrays in the order
    of ``names``; ``blobs`` name the text columns stored as BLOB), each preceded by the
    column ``lead`` (name, value), in ONE statement. The statement runs as one call with
    Python's GIL released: ``executemany`` takes the GIL back after every row, and while
    other request threads compute (e.g. drafting other uploads) each row waits for them,
    with SQLite's write lock held (a GIL convoy)."""
    picks = ", ".join(
        f"CAST(json_extract(value, '$[{i}]') AS BLOB)"
        if name in blobs
        else f"json_extract(value, '$[{i}]')"
        for i, name in enumerate(names)
    )
    statement = (
        f"INSERT INTO {table.name} ({lead[0]}, {', '.join(names)}) "
        f"SELECT ?, {picks} FROM json_each(?)"
    )  # json_each walks the array in order (no ORDER BY: it would sort every row first)
    driver = connection.connection.driver_connection
    driver.cursor().execute(statement, (lead[1], rows_json.decode()))  # type: ignore[union-attr]


def bulk_insert_values(
    connection: Connection, table: Table, names: Sequence[str], values: Iterable[Sequence[Any]]
) -> None:
    """``bulk_insert`` of rows given as value tuples in the order of ``names`` (rows made
    before the unit of work began, which only has to send them)."""
    columns = ", ".join(names)
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with driver.cursor().copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in values:
                copy.write_row(row)
        return
    marks = ", ".join("?" for _ in names)
    driver.cursor().executemany(f"INSERT INTO {table.name} ({columns}) VALUES ({marks})", values)  # type: ignore[union-attr]


#: After a heavy unit ends, its turn is kept this long with no transaction open: the writers
#: that waited meanwhile (SQLite's busy handler sleeps at most 100 ms between its tries) take
#: the write lock before the next heavy unit does.
HEAVY_BREATHER_SECONDS = 0.15
#: How long a heavy unit waits for its turn before the request is answered 503.
HEAVY_TURN_SECONDS = 60.0


def heavy_unit(session: Session) -> None:
    """Mark ``session``'s unit as one that holds SQLite's write lock long (a large ingest).

    Before its first statement it waits for the database's heavy-writer turn, a file lock
    beside the database file shared by every process and thread, so that at most one such
    unit waits for or holds the write lock at a time; when the unit ends the turn is kept a
    moment longer (``HEAVY_BREATHER_SECONDS``) with no transaction open. An audited read
    (its audit entry needs the write lock) then waits for one heavy unit at most, not for a
    queue of them taking the lock in turn while it sleeps in the busy handler.
    PostgreSQL (row locks, no database-wide write lock) and in-memory SQLite: nothing.
    Call it before the session's first statement."""
    bind = session.get_bind()
    path = bind.url.database if bind.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or session.info.get("hub_heavy_turn") is not None:
        return
    fd = os.open(f"{path}-heavy", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _take_turn(fd)
    except BaseException:
        os.close(fd)
        raise
    session.info["hub_heavy_turn"] = fd
    event.listen(session, "after_transaction_end", _end_heavy_turn)


def _take_turn(fd: int) -> None:
    deadline = time.monotonic() + HEAVY_TURN_SECONDS
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(
                    "the database is busy with other large submissions; nothing was "
                    "changed, try again shortly",
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
                ) from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


def _end_heavy_turn(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return  # a savepoint: the unit goes on
    fd = session.info.pop("hub_heavy_turn", None)
    if fd is None:
        return
    try:
        time.sleep(HEAVY_BREATHER_SECONDS)
    finally:
        os.close(fd)  # closing the descriptor releases its lock
