"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from hub import migrate


def test_upgrade_head_matches_the_models(engine: Engine) -> None:
    assert migrate.current(engine) == migrate.alembic_head()
    assert migrate.drift(engine) == []


def test_sqlite_runs_with_wal_and_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_downgrade_to_base_and_back(engine: Engine) -> None:
    migrate.downgrade(engine, "base")
    assert "partners" not in inspect(engine).get_table_names()
    migrate.upgrade(engine)
    assert migrate.drift(engine) == []
