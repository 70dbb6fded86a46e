"""Units of work on SQLite: "reads first" units take the write lock at their first write."""

from __future__ import annotations

from sqlalchemy import func, select

from hub.audit import service as audit
from hub.db import reads_first, session_scope
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
