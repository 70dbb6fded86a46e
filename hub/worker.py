"""Background work for ``hub worker``: each job does one unit of work per call and says how
much it did; the loop runs every job until nothing is due.

Most jobs are one transaction each (``hub.jobs.in_one_transaction``); jobs that talk to remote
systems (connections, e-mail) open their own short transactions, so that no transaction is
open while a remote answers.
Jobs are listed here, explicitly (no discovery): add a job by adding it to ``JOBS``.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy.orm import Session, sessionmaker

from hub.connections.jobs import run_next as run_next_connection_job
from hub.connections.jobs import schedule_due as schedule_due_connections
from hub.connections.outbound import OutboundRules
from hub.intel.projection import render_pending
from hub.jobs import Job, WorkerContext, in_one_transaction
from hub.notifications import jobs as notification_jobs

__all__ = ["JOBS", "Job", "WorkerContext", "run_due", "run_forever"]

log = logging.getLogger("hub.worker")


def _render_stix(session: Session, context: WorkerContext) -> int:
    return render_pending(session, policy=context.policy, limit=1)


def _schedule_connections(session: Session, context: WorkerContext) -> int:
    return schedule_due_connections(session)


def _run_connection_job(maker: sessionmaker[Session], context: WorkerContext) -> int:
    return run_next_connection_job(
        maker,
        policy=context.policy,
        secret=context.settings.secret_key.get_secret_value(),
        rules=OutboundRules.from_settings(context.settings),
    )


def _notify(session: Session, context: WorkerContext) -> int:
    return notification_jobs.run_due(session, context)


# Order matters only for latency: pulled data is matched and rendered in the same round.
JOBS: list[tuple[str, Job]] = [
    ("connection-schedule", in_one_transaction(_schedule_connections)),
    ("connection-jobs", _run_connection_job),
    ("notifications", in_one_transaction(_notify)),
    ("notification-delivery", notification_jobs.deliver_due),
    ("stix-render", in_one_transaction(_render_stix)),
]


def run_due(maker: sessionmaker[Session], context: WorkerContext) -> dict[str, int]:
    """Run every job until none has anything due; returns the units done per job."""
    done = {name: 0 for name, _ in JOBS}
    busy = True
    while busy:
        busy = False
        for name, job in JOBS:
            count = job(maker, context)
            done[name] += count
            busy = busy or count > 0
    return done


def run_forever(maker: sessionmaker[Session], context: WorkerContext, *, interval: float) -> None:
    while True:
        done = run_due(maker, context)
        if any(done.values()):
            log.info("worker round", extra={"done": done})
        time.sleep(interval)
