"""The audit log: gapless, chained, append-only, and verifiable."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hub.audit import service as audit
from hub.audit.chain import GENESIS, chain_hash
from hub.cli import app as cli
from hub.db import session_scope
from hub.models import AuditEntry
from hub.settings import get_settings


def record(n: int, **kw) -> audit.Record:
    return audit.Record(
        action="delivery",
        actor="test",
        details={"n": n, "items": ["a", n]},
        recipient_uuid=f"00000000-0000-0000-0000-00000000000{n % 10}",
        **kw,
    )


def write(maker: sessionmaker[Session], count: int, start: int = 0) -> None:
    with session_scope(maker) as s:
        audit.append(s, [record(start + i) for i in range(count)])


def entries(maker: sessionmaker[Session]) -> list[AuditEntry]:
    with maker() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.seq)))


def test_entries_are_gapless_and_chained(maker) -> None:
    write(maker, 3)
    write(maker, 2, start=3)
    rows = entries(maker)
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].prev_hash == GENESIS
    for before, after in zip(rows, rows[1:], strict=False):
        assert after.prev_hash == before.entry_hash
        assert after.entry_hash == chain_hash(before.entry_hash, after.body)
    assert rows[4].body["details"] == {"n": 4, "items": ["a", 4]}
    with maker() as s:
        assert audit.verify(s) == audit.Verification(True, 5)


def test_a_rolled_back_transaction_leaves_no_entry_and_no_gap(maker) -> None:
    write(maker, 1)
    with pytest.raises(RuntimeError), session_scope(maker) as s:
        audit.append(s, [record(1)])
        raise RuntimeError("the delivery failed")
    write(maker, 1, start=2)
    assert [r.seq for r in entries(maker)] == [1, 2]


def test_concurrent_writers_never_share_or_skip_a_number(maker, engine: Engine) -> None:
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for i in range(10):
                write(maker, 2, start=offset + i * 2)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r.seq for r in entries(maker)] == list(range(1, 81))
    with maker() as s:
        assert audit.verify(s).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET actor = 'someone else' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 2",
        "DELETE FROM audit_entries",
    ],
)
def test_the_database_refuses_changes(maker, statement: str) -> None:
    write(maker, 3)
    with pytest.raises(DBAPIError, match="append-only"), session_scope(maker) as s:
        s.execute(text(statement))
    assert len(entries(maker)) == 3


def test_the_orm_cannot_change_an_entry_either(maker) -> None:
    write(maker, 1)
    with pytest.raises(DBAPIError, match="append-only"), session_scope(maker) as s:
        row = s.scalar(select(AuditEntry))
        row.decision = "allow"
        s.flush()
    with pytest.raises(DBAPIError, match="append-only"), session_scope(maker) as s:
        s.delete(s.scalar(select(AuditEntry)))
        s.flush()


def test_truncate_is_refused_on_postgresql(maker, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    write(maker, 1)
    with pytest.raises(DBAPIError, match="append-only"), session_scope(maker) as s:
        s.execute(text("TRUNCATE audit_entries"))


def _tamper(engine: Engine, sql) -> None:
    """What a database administrator could do behind the application's back."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
            conn.execute(text(sql) if isinstance(sql, str) else sql)
            conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
        else:
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            conn.execute(text(sql) if isinstance(sql, str) else sql)
            for _, ddl in triggers:
                conn.execute(text(ddl))


@pytest.mark.parametrize(
    ("sql", "bad_seq", "problem"),
    [
        (
            "UPDATE audit_entries SET recipient_uuid = 'ffffffff-0000-0000-0000-000000000000' WHERE seq = 4",
            4,
            "column recipient_uuid",
        ),
        ("DELETE FROM audit_entries WHERE seq = 3", 4, "sequence gap"),
        (
            "UPDATE audit_entries SET entry_hash = '" + "ab" * 32 + "' WHERE seq = 5",
            5,
            "entry_hash",
        ),
    ],
)
def test_verify_points_at_the_first_altered_entry(maker, engine, sql, bad_seq, problem) -> None:
    write(maker, 6)
    _tamper(engine, sql)
    with maker() as s:
        result = audit.verify(s)
    assert not result.ok
    assert result.first_bad_seq == bad_seq
    assert problem in (result.problem or "")


def test_verify_catches_a_rewritten_body_even_with_its_own_hash_recomputed(maker, engine) -> None:
    write(maker, 5)
    with maker() as s:
        row = s.get(AuditEntry, 2)
        body = {**row.body, "details": {"n": 999}}
        new_hash = chain_hash(row.prev_hash, body)
    table = AuditEntry.__table__
    _tamper(engine, update(table).where(table.c.seq == 2).values(body=body, entry_hash=new_hash))
    with maker() as s:
        result = audit.verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 3)  # the next link no longer fits


def test_cli_audit_verify(maker, engine, settings, monkeypatch) -> None:
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        write(maker, 4)
        ok = CliRunner().invoke(cli, ["audit", "verify"])
        assert ok.exit_code == 0 and "4 entries verified" in ok.output
        _tamper(engine, "UPDATE audit_entries SET actor = 'x' WHERE seq = 3")
        bad = CliRunner().invoke(cli, ["audit", "verify"])
        assert bad.exit_code == 1 and "broken at entry 3" in bad.output
    finally:
        get_settings.cache_clear()


def test_registry_changes_are_audited_with_the_request_id(client, auth, maker) -> None:
    body = {"name": "Z-CERT", "type": "sectoral-csirt", "tier": "core", "region": "nl"}
    created = client.post(
        "/api/v1/admin/partners", json=body, headers={**auth, "X-Request-ID": "req-1"}
    ).json()
    client.post(
        f"/api/v1/admin/partners/{created['uuid']}/status",
        json={"status": "onboarding"},
        headers=auth,
    )
    client.post(
        f"/api/v1/admin/partners/{created['uuid']}/keys", json={"role": "partner"}, headers=auth
    )
    rows = [
        r
        for r in entries(maker)
        if r.object_ref == f"partner:{created['uuid']}" or r.action.startswith("key.")
    ]
    assert [r.action for r in rows][-3:] == ["partner.create", "partner.status", "key.create"]
    assert rows[-3].request_id == "req-1"
    assert rows[-2].body["details"]["to"] == "onboarding"
    with maker() as s:
        assert audit.verify(s).ok


def test_removing_entries_from_the_end_is_detected(maker, engine) -> None:
    write(maker, 5)
    _tamper(engine, "DELETE FROM audit_entries WHERE seq >= 4")
    with maker() as s:
        result = audit.verify(s)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "removed from the end" in (result.problem or "")


def test_an_append_is_one_statement(maker, engine) -> None:
    from sqlalchemy import event as sa_event

    write(maker, 1)
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", count)
    try:
        write(maker, 1, start=1)
    finally:
        sa_event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in seen if "audit_entries" in s]) == 1
