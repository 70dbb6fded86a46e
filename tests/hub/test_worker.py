"""The worker's job list: each job once per round, under its own name."""

from __future__ import annotations

from collections import Counter

from hub import worker


def test_every_job_runs_once_per_round() -> None:
    names = Counter(name for name, _job in worker.JOBS)
    jobs = Counter(id(job) for _name, job in worker.JOBS)
    assert [n for n, c in names.items() if c > 1] == []
    assert [j for j, c in jobs.items() if c > 1] == []
    assert set(names) >= {
        "connection-schedule",
        "connection-jobs",
        "notifications",
        "notification-delivery",
        "stix-render",
    }


def test_a_busy_database_ends_the_round_not_the_worker(monkeypatch) -> None:
    """Found by the black-box attack: SQLite's write lock held by a large submission made
    ``hub worker`` exit on "database is locked", and all background work stopped."""
    import pytest
    from sqlalchemy.exc import OperationalError

    rounds: list[str] = []
    waits: list[float] = []

    def run_due(maker, context):
        rounds.append("round")
        if len(rounds) <= 2:
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return {"stix-render": 1}

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            raise Stop

    monkeypatch.setattr(worker, "run_due", run_due)
    monkeypatch.setattr(worker.time, "sleep", sleep)
    with pytest.raises(Stop):
        worker.run_forever(None, None, interval=0.5)  # type: ignore[arg-type]
    assert rounds == ["round"] * 3  # it went on after two failed rounds
    assert waits == [2.0, 4.0, 0.5]  # backing off, then back to its interval
