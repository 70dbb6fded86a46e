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
