"""The Merkle tree over the audit log, built by the worker in batches, and its checkpoints:
every root and proof checked with the independent verifier, every tampering detected."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from hub.audit import service as audit
from hub.audit import tree
from hub.audit.note import Signer
from hub.cli import app as cli
from hub.db import session_scope
from hub.models import AuditCheckpoint, AuditEntry, AuditTreeNode
from hub.models.base import utcnow
from hub.settings import get_settings
from tests.hub.audit import rfc9162

SIGNER = Signer.generate("hub.test/audit")


def write(maker: sessionmaker[Session], count: int, start: int = 0) -> None:
    with session_scope(maker) as s:
        audit.append(
            s,
            [
                audit.Record(
                    action="delivery",
                    actor="test",
                    recipient_uuid=f"00000000-0000-0000-0000-00000000000{(start + i) % 10}",
                    details={"n": start + i, "text": "é ✓"},
                )
                for i in range(count)
            ],
        )


def build(maker: sessionmaker[Session], *, batch: int = tree.BATCH) -> int:
    total = 0
    while True:
        with session_scope(maker) as s:
            added = tree.extend(s, batch=batch)
        if not added:
            return total
        total += added


def leaves(maker: sessionmaker[Session]) -> list[bytes]:
    """Each entry's canonical bytes, computed here from the stored body (sorted keys, no
    whitespace, UTF-8: what DESIGN.md calls the entry's bytes)."""
    with maker() as s:
        bodies = s.scalars(select(AuditEntry.body).order_by(AuditEntry.seq)).all()
    return [orjson.dumps(b, option=orjson.OPT_SORT_KEYS) for b in bodies]


def checkpoint(maker: sessionmaker[Session], **kw) -> AuditCheckpoint | None:
    with session_scope(maker) as s:
        made = tree.issue_checkpoint(s, SIGNER, interval=timedelta(0), **kw)
        if made is not None:
            s.expunge(made)
        return made


def tamper(engine: Engine, sql: str) -> None:
    """What a database administrator could do behind the application's back."""
    tables = ("audit_entries", "audit_tree_nodes", "audit_checkpoints")
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            for table in tables:
                conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            conn.execute(text(sql))
            for table in tables:
                conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            triggers = conn.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                conn.execute(text(f'DROP TRIGGER "{name}"'))
            conn.execute(text(sql))
            for _, ddl in triggers:
                conn.execute(text(ddl))


def test_the_tree_is_built_in_batches_and_every_root_is_the_rfcs(maker) -> None:
    write(maker, 23)
    assert build(maker, batch=5) == 23
    write(maker, 9, start=23)
    assert build(maker, batch=4) == 9
    entries = leaves(maker)
    with maker() as s:
        assert tree.tree_size(s) == 32
        for size in range(0, 33):
            assert tree.root(s, size) == rfc9162.mth(entries[:size])
        for seq in (1, 7, 32):
            path = tree.inclusion_proof(s, seq=seq, size=32)
            assert rfc9162.inclusion_ok(
                seq - 1, 32, rfc9162.leaf(entries[seq - 1]), path, rfc9162.mth(entries)
            )
        for old in (1, 5, 16, 31):
            path = tree.consistency_proof(s, old=old, new=32)
            assert rfc9162.consistency_ok(
                old, 32, path, rfc9162.mth(entries[:old]), rfc9162.mth(entries)
            )


def test_appending_stays_one_statement_and_a_proof_one_read(maker, engine) -> None:
    write(maker, 40)
    build(maker)
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        write(maker, 1, start=40)
        appends = [s for s in seen if "audit" in s]
        seen.clear()
        with maker() as s:
            tree.inclusion_proof(s, seq=17, size=40)
            tree.consistency_proof(s, old=13, new=40)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(appends) == 1 and "audit_tree_nodes" not in appends[0]
    assert len([s for s in seen if "audit_tree_nodes" in s]) == 2  # one per proof


def test_checkpoints_sign_the_tree_once_per_interval_while_it_grows(maker) -> None:
    assert checkpoint(maker) is None  # nothing logged yet
    write(maker, 5)
    build(maker)
    first = checkpoint(maker)
    assert first is not None and first.tree_size == 5
    assert checkpoint(maker) is None  # the tree did not grow
    write(maker, 3, start=5)
    build(maker)
    with session_scope(maker) as s:  # not due yet
        assert tree.issue_checkpoint(s, SIGNER, interval=timedelta(hours=1)) is None
        later = utcnow() + timedelta(hours=2)
        second = tree.issue_checkpoint(s, SIGNER, interval=timedelta(hours=1), now=later)
        assert second is not None and second.tree_size == 8
    text_ = rfc9162.open_signed_note(second.note, str(SIGNER.verifier))
    assert rfc9162.read_checkpoint(text_) == ("hub.test/audit", 8, rfc9162.mth(leaves(maker)))
    with maker() as s:  # old checkpoints are kept
        assert [c.tree_size for c in s.scalars(select(AuditCheckpoint))] == [5, 8]


def test_the_hub_refuses_to_sign_a_tree_that_does_not_extend_its_last_checkpoint(
    maker, engine
) -> None:
    write(maker, 6)
    build(maker)
    checkpoint(maker)
    write(maker, 2, start=6)
    build(maker)
    tamper(
        engine,
        "UPDATE audit_tree_nodes SET hash = (SELECT hash FROM audit_tree_nodes WHERE level = 0 "
        "AND idx = 5) WHERE level = 2 AND idx = 0",
    )
    with pytest.raises(tree.TreeError, match="refusing to sign"), session_scope(maker) as s:
        tree.issue_checkpoint(s, SIGNER, interval=timedelta(0))


def test_a_second_tree_builder_never_adds_a_leaf_twice(maker) -> None:
    write(maker, 10)
    with session_scope(maker) as one:
        assert tree.extend(one, batch=4) == 4
    with session_scope(maker) as two:
        assert tree.extend(two) == 6
        assert tree.extend(two) == 0
    with maker() as s:
        assert tree.verify(s).ok


def test_the_database_refuses_to_change_nodes_and_checkpoints(maker) -> None:
    from sqlalchemy.exc import DBAPIError

    write(maker, 2)
    build(maker)
    checkpoint(maker)
    for sql in (
        "UPDATE audit_tree_nodes SET hash = hash",
        "DELETE FROM audit_tree_nodes",
        "UPDATE audit_checkpoints SET note = 'x'",
        "DELETE FROM audit_checkpoints",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session_scope(maker) as s:
            s.execute(text(sql))


def _swap_bodies(a: int, b: int) -> str:
    return (
        "UPDATE audit_entries SET body = (SELECT body FROM audit_entries AS o WHERE o.seq = "
        f"CASE audit_entries.seq WHEN {a} THEN {b} ELSE {a} END) WHERE seq IN ({a}, {b})"
    )


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        pytest.param(
            "UPDATE audit_entries SET body = (SELECT body FROM audit_entries WHERE seq = 2) WHERE seq = 3",
            "leaf hash",
            id="entry altered",
        ),
        pytest.param(_swap_bodies(4, 5), "leaf hash", id="entries reordered"),
        pytest.param("DELETE FROM audit_entries WHERE seq = 6", "missing", id="entry deleted"),
        pytest.param(
            "UPDATE audit_tree_nodes SET hash = (SELECT hash FROM audit_tree_nodes WHERE level = 0 AND idx = 0) WHERE level = 1 AND idx = 2",
            "tree node (1, 2)",
            id="node altered",
        ),
        pytest.param(
            "DELETE FROM audit_tree_nodes WHERE level = 2 AND idx = 0", "level 2", id="node deleted"
        ),
        pytest.param(
            "INSERT INTO audit_tree_nodes (level, idx, hash) SELECT 3, 5, hash FROM audit_tree_nodes WHERE level = 0 AND idx = 0",
            "level 3",
            id="node inserted",
        ),
    ],
)
def test_tree_verification_detects_tampering(maker, engine, sql, problem) -> None:
    write(maker, 12)
    build(maker)
    checkpoint(maker)
    with maker() as s:
        assert tree.verify(s, verifier=SIGNER.verifier).ok
    tamper(engine, sql)
    with maker() as s:
        result = tree.verify(s, verifier=SIGNER.verifier)
    assert not result.ok
    assert problem in (result.problem or ""), result.problem


def test_a_rewritten_log_with_a_rebuilt_tree_is_caught_by_the_earlier_checkpoint(
    maker, engine
) -> None:
    """What a database administrator who knows the scheme would do: change an entry and
    recompute its leaf and every node above it. Only the signed checkpoint catches it."""
    write(maker, 8)
    build(maker)
    checkpoint(maker)
    tamper(
        engine,
        "UPDATE audit_entries SET body = (SELECT body FROM audit_entries WHERE seq = 1) WHERE seq = 2",
    )
    tamper(engine, "DELETE FROM audit_tree_nodes")
    build(maker)
    with maker() as s:
        result = tree.verify(s, verifier=SIGNER.verifier)
    assert not result.ok and "checkpoint 8 does not match" in (result.problem or "")


def test_cli_verify_checks_the_tree_and_signed_checkpoints(
    maker, engine, settings, monkeypatch, tmp_path
) -> None:
    key_file = tmp_path / "audit.key"
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_PUBLIC_URL", "https://hub.example.org")
    get_settings.cache_clear()
    try:
        made = CliRunner().invoke(cli, ["audit", "keygen", "--out", str(key_file)])
        assert made.exit_code == 0, made.output
        verifier = made.output.split("verifier key: ")[1].strip()
        assert verifier.startswith("hub.example.org/audit+")
        assert key_file.stat().st_mode & 0o077 == 0
        assert CliRunner().invoke(cli, ["audit", "keygen", "--out", str(key_file)]).exit_code == 1
        monkeypatch.setenv("HUB_AUDIT_SIGNING_KEY_FILE", str(key_file))
        get_settings.cache_clear()
        write(maker, 5)
        build(maker)
        with session_scope(maker) as s:
            tree.issue_checkpoint(s, tree.load_signer(key_file), interval=timedelta(0))
        write(maker, 2, start=5)
        ok = CliRunner().invoke(cli, ["audit", "verify"])
        assert ok.exit_code == 0, ok.output
        assert "5 entries, 1 checkpoints verified (2 entries not yet in the tree)" in ok.output
        tamper(engine, "UPDATE audit_checkpoints SET note = replace(note, '\n5\n', '\n4\n')")
        bad = CliRunner().invoke(cli, ["audit", "verify"])
        assert bad.exit_code == 1 and "checkpoint 5" in bad.output
    finally:
        get_settings.cache_clear()


def _rewrite(engine: Engine, maker: sessionmaker[Session], change) -> None:
    """Rewrite the log as a database administrator who knows the scheme would: change the
    sequence of entries, renumber them, recompute every chain hash and the audit head, and
    rebuild the Merkle tree. Only the signed checkpoints still remember the log as it was."""
    from hub.audit.chain import GENESIS, chain_hash

    with maker() as s:
        rows = [
            {c.name: getattr(r, c.name) for c in AuditEntry.__table__.columns}
            for r in s.scalars(select(AuditEntry).order_by(AuditEntry.seq))
        ]
    rows = change(rows)
    prev = GENESIS
    for seq, row in enumerate(rows, start=1):
        row["body"] = {**row["body"], "seq": seq}
        row.update(seq=seq, prev_hash=prev, entry_hash=chain_hash(prev, row["body"]))
        prev = row["entry_hash"]
    tamper(engine, "DELETE FROM audit_tree_nodes")
    tamper(engine, "DELETE FROM audit_entries")
    with engine.begin() as conn:
        for name in ("audit_entries",):
            if engine.dialect.name == "postgresql":
                conn.execute(text(f"ALTER TABLE {name} DISABLE TRIGGER USER"))
        conn.execute(AuditEntry.__table__.insert(), rows)
        conn.execute(
            text("UPDATE audit_head SET seq = :seq, prev_hash = :p, entry_hash = :e WHERE id = 1"),
            {"seq": len(rows), "p": rows[-1]["prev_hash"], "e": rows[-1]["entry_hash"]},
        )
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
    build(maker)


def _insert_at(rows, at: int):
    forged = {**rows[0], "body": {**rows[0]["body"], "details": {"n": -1}}}
    return [*rows[:at], forged, *rows[at:]]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda rows: [
                {**r, "decision": "deny", "body": {**r["body"], "decision": "deny"}}
                if r["seq"] == 3
                else r
                for r in rows
            ],
            id="altered",
        ),
        pytest.param(lambda rows: [r for r in rows if r["seq"] != 4], id="deleted"),
        pytest.param(lambda rows: [*rows[:4], rows[5], rows[4], *rows[6:]], id="reordered"),
        pytest.param(lambda rows: _insert_at(rows, 5), id="inserted"),
    ],
)
def test_a_rewritten_history_is_caught_by_the_checkpoints_partners_hold(
    maker, engine, change
) -> None:
    write(maker, 10)
    build(maker)
    held = checkpoint(maker)  # what a partner fetched and kept
    assert held is not None and held.tree_size == 10
    _rewrite(engine, maker, change)
    write(maker, 3, start=100)  # the log goes on
    build(maker)
    with maker() as s:
        assert audit.verify(s).ok  # the chain was recomputed: it cannot tell
        result = tree.verify(s, verifier=SIGNER.verifier)
        size = tree.tree_size(s)
        new_root = tree.root(s, size)
        proof = tree.consistency_proof(s, old=held.tree_size, new=size)
    assert not result.ok and "checkpoint 10 does not match" in (result.problem or "")
    # The partner's own check: the hub's tree today does not extend the one it signed.
    assert not rfc9162.consistency_ok(held.tree_size, size, proof, bytes(held.root_hash), new_root)
    # And the hub refuses to sign the rewritten tree.
    with pytest.raises(tree.TreeError, match="refusing to sign"), session_scope(maker) as s:
        tree.issue_checkpoint(s, SIGNER, interval=timedelta(0))


def test_a_proof_at_a_million_entries_is_one_query_of_at_most_two_nodes_per_level(
    maker, engine
) -> None:
    """O(log n) reads whatever the size: only the nodes a proof names are stored here (their
    hashes are arbitrary); the query must find them, and only them, in one statement."""
    import os

    from hub.audit import merkle

    n = 10**6
    asks = [(1, n), (777_777, n), (n, n)]
    needed = {(0, n - 1)}  # the tree's size is its last leaf
    for seq, size in asks:
        needed |= merkle.nodes_of(merkle.inclusion_ranges(seq - 1, size))
    needed |= merkle.nodes_of(merkle.consistency_ranges(500_001, n))
    with session_scope(maker) as s:
        s.connection().execute(
            AuditTreeNode.__table__.insert(),
            [{"level": lv, "idx": ix, "hash": os.urandom(32)} for lv, ix in sorted(needed)],
        )
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        seen.append(statement)

    with maker() as s:
        assert tree.tree_size(s) == n
        event.listen(engine, "before_cursor_execute", count)
        try:
            for seq, size in asks:
                seen.clear()
                path = tree.inclusion_proof(s, seq=seq, size=size)
                assert len(seen) == 1 and 0 < len(path) <= 20  # ⌈log2 10^6⌉
                assert seen[0].count("level =") <= 2 * 20
            seen.clear()
            assert len(tree.consistency_proof(s, old=500_001, new=n)) <= 21
            assert len(seen) == 1
        finally:
            event.remove(engine, "before_cursor_execute", count)
