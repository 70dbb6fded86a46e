"""Background work for ``hub worker``: each job does one unit of work per call and says how
much it did; the loop runs every job until nothing is due.

Most jobs are one transaction each (``_in_one_transaction``); jobs that talk to remote
systems (connections, e-mail) open their own short transactions, so that no transaction is
open while a remote answers.
Jobs are listed here, explicitly (no discovery): add a job by adding it to ``JOBS``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.db import session_scope
from hub.settings import Settings

log = logging.getLogger("hub.worker")


@dataclass(frozen=True, slots=True)
class WorkerContext:
    settings: Settings
    policy: tlp.Policy


Job = Callable[[sessionmaker[Session], WorkerContext], int]
TransactionJob = Callable[[Session, WorkerContext], int]


def _in_one_transaction(work: TransactionJob) -> Job:
    """A job whose call is one unit of work: committed as a whole, or rolled back."""

    def job(maker: sessionmaker[Session], context: WorkerContext) -> int:
        with session_scope(maker) as session:
            return work(session, context)

    return job


def _render_stix(session: Session, context: WorkerContext) -> int:
    from hub.taxii.rendering import render_pending

    return render_pending(session, policy=context.policy, limit=1)


def _schedule_connections(session: Session, context: WorkerContext) -> int:
    from hub.connections.jobs import schedule_due

    return schedule_due(session)


def _run_connection_job(maker: sessionmaker[Session], context: WorkerContext) -> int:
    from hub.connections.jobs import run_next
    from hub.connections.outbound import OutboundRules

    return run_next(
        maker,
        policy=context.policy,
        secret=context.settings.secret_key.get_secret_value(),
        rules=OutboundRules.from_settings(context.settings),
    )


def _notify(session: Session, context: WorkerContext) -> int:
    from hub.notifications.jobs import run_due as notifications_due

    return notifications_due(session, context)


def _deliver_notifications(maker: sessionmaker[Session], context: WorkerContext) -> int:
    from hub.notifications.jobs import deliver_due

    return deliver_due(maker, context)


def _deliver_notifications(maker: sessionmaker[Session], context: WorkerContext) -> int:
    from hub.notifications.jobs import deliver_due

    return deliver_due(maker, context)


# Order matters only for latency: pulled data is matched and rendered in the same round.
JOBS: list[tuple[str, Job]] = [
    ("connection-schedule", _in_one_transaction(_schedule_connections)),
    ("connection-jobs", _run_connection_job),
    ("notifications", _in_one_transaction(_notify)),
    ("notification-delivery", _deliver_notifications),
    ("notification-delivery", _deliver_notifications),
    ("stix-render", _in_one_transaction(_render_stix)),
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
