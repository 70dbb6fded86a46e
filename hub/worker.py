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
from datetime import timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import tree
from hub.audit.note import NoteError
from hub.connections.jobs import run_next as run_next_connection_job
from hub.connections.jobs import schedule_due as schedule_due_connections
from hub.connections.outbound import OutboundRules
from hub.db import reads_first, session_scope
from hub.exercises import service as exercises
from hub.intel.projection import render_pending
from hub.jobs import Job, in_one_transaction
from hub.models.base import utcnow
from hub.notifications import jobs as notification_jobs
from hub.runtime import Runtime

__all__ = ["JOBS", "Job", "Runtime", "run_due", "run_forever"]

log = logging.getLogger("hub.worker")


def _render_stix(session: Session, context: Runtime) -> int:
    return render_pending(session, policy=context.policy, limit=1)


def _schedule_connections(session: Session, context: Runtime) -> int:
    return schedule_due_connections(session)


def _run_connection_job(maker: sessionmaker[Session], context: Runtime) -> int:
    return run_next_connection_job(
        maker,
        policy=context.policy,
        secret=context.secret,
        rules=OutboundRules.from_settings(context.settings),
    )


def _send_injects(session: Session, context: Runtime) -> int:
    """Scheduled exercise injects whose time has come go out without an operator running
    ``hub exercise send-due``; one transaction for the round's injects (an inject that cannot
    be stored rolls the round back and is logged, as the CLI would refuse it)."""
    return exercises.send_due(
        session, now=utcnow(), actor=INJECT_AGENT, policy=context.policy, limit=1
    )


INJECT_AGENT = "job:exercise-injects"


def _notify(session: Session, context: Runtime) -> int:
    return notification_jobs.run_due(session, context)


def _audit_tree(maker: sessionmaker[Session], context: Runtime) -> int:
    """Add new audit entries to the Merkle tree (reading before taking SQLite's write lock,
    so appenders wait only for the insert); then sign a checkpoint when one is due and a
    signing key is configured, in a short transaction of its own."""
    with session_scope(maker, write=False) as session:
        added = tree.extend(reads_first(session))
    key_file = context.settings.audit_signing_key_file
    if key_file is not None:
        interval = timedelta(seconds=context.settings.checkpoint_interval_seconds)
        try:
            signer = tree.load_signer(key_file)
        except NoteError as err:  # the tree still grows; the checkpoint age metric alerts
            log.error("audit checkpoint not signed: %s", err)
        else:
            with session_scope(maker) as session:
                tree.issue_checkpoint(session, signer, interval=interval)
    return added


# Order matters only for latency: pulled data is matched and rendered in the same round.
JOBS: list[tuple[str, Job]] = [
    ("connection-schedule", in_one_transaction(_schedule_connections)),
    ("connection-jobs", _run_connection_job),
    ("exercise-injects", in_one_transaction(_send_injects)),
    ("notifications", in_one_transaction(_notify)),
    ("notification-delivery", notification_jobs.deliver_due),
    ("stix-render", in_one_transaction(_render_stix)),
    ("audit-tree", _audit_tree),
]


def run_due(maker: sessionmaker[Session], context: Runtime) -> dict[str, int]:
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


def run_forever(maker: sessionmaker[Session], context: Runtime, *, interval: float) -> None:
    """Run rounds until stopped. A database that is busy or unreachable for longer than its
    wait (SQLite's write lock held by a large submission, a PostgreSQL restart) ends the
    round, not the worker: every job's unit rolled back, it backs off and tries again."""
    failures = 0
    while True:
        try:
            done = run_due(maker, context)
        except DBAPIError as err:  # OperationalError and the like: retriable by nature
            failures += 1
            wait = min(max(interval, 1.0) * 2**failures, MAX_BACKOFF_SECONDS)
            log.warning("worker round failed (%s); next try in %.0f s", _first_line(err), wait)
            time.sleep(wait)
            continue
        failures = 0
        if any(done.values()):
            log.info("worker round", extra={"done": done})
        time.sleep(interval)


MAX_BACKOFF_SECONDS = 60.0


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__
