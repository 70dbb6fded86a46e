"""The worker job: match one event version, or else aggregate one due notification."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from hub.notifications import service

if TYPE_CHECKING:  # hub.worker lists this job: no import cycle
    from hub.worker import WorkerContext


def run_due(session: Session, context: WorkerContext, *, rules: service.Rules | None = None) -> int:
    """One unit of work: the next unmatched event version, else the next due group.

    Returns 1 when it did something, 0 when nothing is due. The batching interval comes
    from ``HUB_NOTIFY_INTERVAL_SECONDS`` (0: a group is due at once).
    """
    if service.match_next(session, policy=context.policy):
        return 1
    rules = rules or service.Rules(interval_seconds=context.settings.notify_interval_seconds)
    return service.aggregate_next(session, rules=rules)
