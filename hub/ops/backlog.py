"""What the background worker is doing, as Prometheus metrics read from the database.

``hub worker`` processes keep their state where every worker and the API see it: the
database (jobs with leases, the push outbox, notification queues, STIX renderings, the audit
indexes). So the API's ``/metrics`` reads that state when it is scraped: nothing a worker does
is invisible because it happened in another process, and a worker that is not running at all
shows as growing backlogs and ages (see ``docs/prometheus-alerts.yml``).

Each scrape runs a handful of grouped counting queries; they use the tables' state indexes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import (
    AuditCheckpoint,
    AuditHead,
    AuditTreeNode,
    Connection,
    ConnectionJob,
    Directive,
    EventVersion,
    Notification,
    NotificationMail,
    NotifyMark,
    PushOutboxItem,
    ReleaseIndexState,
    StixRendering,
)
from hub.models.base import utcnow


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def families(session: Session) -> Iterator[GaugeMetricFamily]:
    """Every worker metric, from the database as it is now."""
    now = utcnow()
    yield from _connections(session, now)
    yield from _notifications_and_rendering(session, now)
    yield from _audit(session, now)


def _connections(session: Session, now: datetime) -> Iterator[GaugeMetricFamily]:
    """Runs, attempts, backoff, last success and the push outbox, per connection."""
    names = dict(session.execute(select(Connection.id, Connection.name)).all())  # type: ignore[arg-type]
    kinds = dict(session.execute(select(Connection.id, Connection.kind)).all())  # type: ignore[arg-type]

    runs = GaugeMetricFamily(
        "hub_connection_runs",
        "Connection runs held by state (queued: due or backing off; done; dead: a dead letter)",
        labels=["connection", "kind", "state"],
    )
    for conn_id, state, count in session.execute(
        select(ConnectionJob.connection_id, ConnectionJob.state, func.count()).group_by(
            ConnectionJob.connection_id, ConnectionJob.state
        )
    ):
        runs.add_metric([names.get(conn_id, "?"), kinds.get(conn_id, "?"), state], count)
    yield runs

    attempts = GaugeMetricFamily(
        "hub_connection_attempts",
        "Failed attempts of the connection's queued run so far (0: healthy)",
        labels=["connection"],
    )
    backoff = GaugeMetricFamily(
        "hub_connection_backoff_seconds",
        "Seconds until a failing queued run is tried again",
        labels=["connection"],
    )
    for conn_id, tries, run_after in session.execute(
        select(
            ConnectionJob.connection_id,
            func.max(ConnectionJob.attempts),
            func.max(ConnectionJob.run_after),
        )
        .where(ConnectionJob.state == "queued")
        .group_by(ConnectionJob.connection_id)
    ):
        attempts.add_metric([names.get(conn_id, "?")], int(tries or 0))
        wait = (run_after - now).total_seconds() if tries and run_after else 0.0
        backoff.add_metric([names.get(conn_id, "?")], max(0.0, wait))
    yield attempts
    yield backoff

    success = GaugeMetricFamily(
        "hub_connection_last_success_age_seconds",
        "Seconds since the connection last ran successfully (absent: never)",
        labels=["connection", "kind"],
    )
    failing = GaugeMetricFamily(
        "hub_connection_failing",
        "1 when the connection's last run ended in an error",
        labels=["connection", "kind"],
    )
    for conn in session.execute(
        select(
            Connection.name,
            Connection.kind,
            Connection.last_success_at,
            Connection.last_error,
            Connection.enabled,
        )
    ):
        if conn.last_success_at is not None:
            success.add_metric([conn.name, conn.kind], _age(now, conn.last_success_at))
        failing.add_metric([conn.name, conn.kind], 1 if conn.enabled and conn.last_error else 0)
    yield success
    yield failing
    yield from _outbox(session, now, names)


def _outbox(session: Session, now: datetime, names: dict[int, str]) -> Iterator[GaugeMetricFamily]:
    """Pushes waiting per connection, and how old the oldest is."""
    outbox = GaugeMetricFamily(
        "hub_push_outbox_items",
        "Push outbox items by connection and state (dead: a dead letter)",
        labels=["connection", "state"],
    )
    oldest = GaugeMetricFamily(
        "hub_push_outbox_oldest_pending_seconds",
        "Age of the oldest push not yet sent",
        labels=["connection"],
    )
    for conn_id, state, count, first in session.execute(
        select(
            PushOutboxItem.connection_id,
            PushOutboxItem.state,
            func.count(),
            func.min(PushOutboxItem.created_at),
        ).group_by(PushOutboxItem.connection_id, PushOutboxItem.state)
    ):
        outbox.add_metric([names.get(conn_id, "?"), state], count)
        if state == "pending":
            oldest.add_metric([names.get(conn_id, "?")], _age(now, first))
    yield outbox
    yield oldest


def _notifications_and_rendering(session: Session, now: datetime) -> Iterator[GaugeMetricFamily]:
    """The notification queue (directives, notifications, mails) and the STIX backlog."""
    yield _by_state(
        session,
        "hub_notification_directives",
        "Matched observations by state (pending: waiting to be batched into a notification)",
        Directive.state,
    )
    yield _by_state(session, "hub_notifications", "Notifications by status", Notification.status)
    yield _by_state(
        session, "hub_notification_mails", "Notification e-mails by state", NotificationMail.state
    )
    yield _by_state(
        session,
        "hub_stix_renderings",
        "Events by STIX rendering state (pending: waiting for the worker)",
        StixRendering.status,
    )
    pending_render = session.scalar(
        select(func.min(StixRendering.rendered_at)).where(StixRendering.status == "pending")
    )
    yield _single(
        "hub_stix_render_backlog_oldest_seconds",
        "Age of the oldest event version waiting to be rendered to STIX",
        _age(now, pending_render),
    )
    unmatched = session.scalar(
        select(func.count())
        .select_from(EventVersion)
        .outerjoin(NotifyMark, NotifyMark.event_version_id == EventVersion.id)
        .where(NotifyMark.event_version_id.is_(None))
    )
    yield _single(
        "hub_notification_versions_unmatched",
        "Event versions not yet matched against constituencies",
        int(unmatched or 0),
    )


def _audit(session: Session, now: datetime) -> Iterator[GaugeMetricFamily]:
    """The audit log: its size, the indexes and the Merkle tree behind it, the checkpoint."""
    head = session.scalar(select(AuditHead.seq).where(AuditHead.id == 1)) or 0
    indexed = session.scalar(select(ReleaseIndexState.upto_seq).where(ReleaseIndexState.id == 1))
    yield _single(
        "hub_release_index_lag_entries",
        "Audit entries not yet derived into the releases index",
        max(0, int(head) - int(indexed or 0)),
    )
    yield _single("hub_audit_entries", "Entries in the audit log", int(head))
    leaves = session.scalar(select(func.max(AuditTreeNode.idx)).where(AuditTreeNode.level == 0))
    in_tree = int(leaves) + 1 if leaves is not None else 0
    yield _single(
        "hub_audit_tree_lag_entries",
        "Audit entries not yet in the Merkle tree (the worker adds them in batches)",
        max(0, int(head) - in_tree),
    )
    latest = session.execute(
        select(AuditCheckpoint.tree_size, AuditCheckpoint.created_at)
        .order_by(AuditCheckpoint.tree_size.desc())
        .limit(1)
    ).first()
    yield _single(
        "hub_audit_unsigned_entries",
        "Audit entries after the latest signed checkpoint",
        max(0, int(head) - (int(latest.tree_size) if latest else 0)),
    )
    age = GaugeMetricFamily(
        "hub_audit_checkpoint_age_seconds",
        "Seconds since the latest audit checkpoint was signed (absent: none yet)",
    )
    if latest is not None:
        age.add_metric([], _age(now, latest.created_at))
    yield age


def _single(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def _by_state(session: Session, name: str, doc: str, column: Any) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["state"])
    for state, count in session.execute(select(column, func.count()).group_by(column)):
        family.add_metric([str(state)], count)
    return family


class _Families(Collector):
    def __init__(self, found: list[GaugeMetricFamily]) -> None:
        self.found = found

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self.found


def exposition(session: Session) -> bytes:
    """The worker metrics in Prometheus' text format (appended to the app's own)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(list(families(session))))
    return generate_latest(registry)
