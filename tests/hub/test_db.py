"""Units of work on SQLite: "reads first" units take the write lock at their first write;
large units take turns."""

from __future__ import annotations

import threading
import time

from sqlalchemy import func, select

from hub import db
from hub.audit import service as audit
from hub.db import heavy_unit, reads_first, session_scope
from hub.models import AuditEntry


def _record(n: int) -> audit.Record:
    return audit.Record(action="test", actor="test", details={"n": n})


def test_a_reads_first_unit_writes_after_another_writer_committed(maker) -> None:
    """Upgrading a read snapshot in place fails (SQLITE_BUSY_SNAPSHOT) once another writer
    committed after it began; a reads-first unit ends its snapshot first and succeeds."""
    with maker() as reader:
        reads_first(reader)
        assert reader.scalar(select(func.count(AuditEntry.seq))) == 0  # the snapshot begins
        with session_scope(maker) as writer:
            audit.append(writer, [_record(1)])
        audit.append(reader, [_record(2)])
        reader.commit()
    with maker() as s:
        rows = s.execute(select(AuditEntry.seq, AuditEntry.body)).all()
    assert [(seq, body["details"]["n"]) for seq, body in rows] == [(1, 1), (2, 2)]
    with maker() as s:
        assert audit.verify(s).ok


def test_a_reads_first_unit_that_never_writes_takes_no_lock(maker) -> None:
    with maker() as reader:
        reads_first(reader)
        reader.scalar(select(func.count(AuditEntry.seq)))
        with session_scope(maker) as writer:  # would wait 30 s if the reader held the lock
            audit.append(writer, [_record(1)])
        reader.commit()


def test_large_units_take_turns_and_leave_a_breather(maker, backend, monkeypatch) -> None:
    """``heavy_unit``: on SQLite a second large unit waits for the first one's turn (a file
    lock every process shares) until the first has ended, committed or rolled back, plus
    its breather; PostgreSQL takes no turn (no database-wide write lock)."""
    monkeypatch.setattr(db, "HEAVY_BREATHER_SECONDS", 0.2)
    first = maker()
    heavy_unit(first)
    audit.append(first, [_record(1)])
    started, entered = threading.Event(), threading.Event()

    def second_unit() -> None:
        with maker() as second:
            started.set()
            heavy_unit(second)
            entered.set()
            audit.append(second, [_record(2)])
            second.commit()

    thread = threading.Thread(target=second_unit)
    thread.start()
    assert started.wait(10)
    if backend == "sqlite":
        assert not entered.wait(0.5)  # the first unit holds the turn
        ended = time.monotonic()
        first.rollback()  # a rolled back unit gives its turn back too
        assert entered.wait(10)
        assert time.monotonic() - ended >= 0.2  # the breather came first
    else:
        assert entered.wait(10)
        first.rollback()
    thread.join(10)
    first.close()
    with maker() as s:
        assert [b["details"]["n"] for b in s.scalars(select(AuditEntry.body))] == [2]
    with maker() as third:  # the turn is free again after a commit
        heavy_unit(third)
        audit.append(third, [_record(3)])
        third.commit()
