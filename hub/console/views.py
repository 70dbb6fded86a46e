"""What each console page shows, read through the same services and repositories as the
API; every change goes through the services the API uses, with the same audit entries."""

from __future__ import annotations

import base64
from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from hub.audit import search, tree
from hub.audit import service as audit
from hub.auth import service as keys
from hub.connections import service as connections
from hub.coverage import actual
from hub.coverage import service as coverage
from hub.intel import quarantine_decisions as quarantine
from hub.lineage import service as lineage
from hub.models import (
    AuditEntry,
    ConnectionJob,
    Event,
    EventVersion,
    Notification,
    NotificationFeedback,
    NotificationItem,
    Observation,
    Partner,
    PushOutboxItem,
    QuarantineItem,
    Release,
    ReleaseIndexState,
)
from hub.models.base import utcnow
from hub.partners import repository as partner_rows
from hub.partners import service as partners
from hub.partners.service import NEEDS_REASON, TRANSITIONS
from hub.settings import Settings
from hub.sharing import explain
from hub.vocabulary import NetworkFunction, PartnerStatus, Region, Sector, Tier

PAGE = 100


# --- overview -------------------------------------------------------------------------------


def overview(session: Session) -> dict[str, Any]:
    dead_jobs = dict(
        session.execute(
            select(ConnectionJob.connection_id, func.count())
            .where(ConnectionJob.state == "dead")
            .group_by(ConnectionJob.connection_id)
        ).all()
    )
    dead_pushes = dict(
        session.execute(
            select(PushOutboxItem.connection_id, func.count())
            .where(PushOutboxItem.state == "dead")
            .group_by(PushOutboxItem.connection_id)
        ).all()
    )
    rows = [
        {
            "connection": c,
            "dead": dead_jobs.get(c.id, 0) + dead_pushes.get(c.id, 0),
        }
        for c in connections.list_all(session)
    ]
    notes = dict(
        session.execute(
            select(Notification.status, func.count()).group_by(Notification.status)
        ).all()
    )
    since = utcnow() - timedelta(days=14)
    day = func.date(Release.released_at)
    per_day: dict[str, dict[str, int]] = {}
    for when, allowed, count in session.execute(
        select(day, Release.allowed, func.count())
        .where(Release.released_at >= since)
        .group_by(day, Release.allowed)
    ):
        entry = per_day.setdefault(str(when)[:10], {"allowed": 0, "refused": 0})
        entry["allowed" if allowed else "refused"] += count
    return {
        "connections": rows,
        "quarantine_held": session.scalar(
            select(func.count()).where(QuarantineItem.status == "held")
        )
        or 0,
        "notifications": notes,
        "unacknowledged": notes.get("pending", 0) + notes.get("sent", 0),
        "per_day": sorted(per_day.items()),
        "audit_head": session.scalar(select(func.max(AuditEntry.seq))) or 0,
        "release_index": session.scalar(select(ReleaseIndexState.upto_seq)) or 0,
    }


# --- coverage -------------------------------------------------------------------------------


def heat(count: int) -> int:
    """A shade (0 = gap … 4) for a count of partners."""
    return 0 if count == 0 else 1 if count == 1 else 2 if count <= 3 else 3 if count <= 9 else 4


def coverage_page(
    session: Session, *, as_of: date, status: PartnerStatus, tier: Tier | None
) -> dict[str, Any]:
    report = coverage.registered(session, as_of=as_of, status=status, tier=tier)
    fs: Counter[tuple[str, str]] = Counter()
    for cell in report.cells:
        fs[(cell.function.value, cell.sector.value)] += cell.partners
    fr: Counter[tuple[str, str]] = Counter()
    for p in report.counted.partners:
        if p.cells:
            for f in p.functions:
                fr[(f.value, p.region.value)] += 1
    trend = actual.trend(session, as_of=as_of, months=12)
    return {
        "report": report,
        "functions": [f.value for f in NetworkFunction],
        "sectors": [s.value for s in Sector],
        "regions": [r.value for r in Region],
        "nis2": {s.value for s in coverage.NIS2},
        "statuses": [s.value for s in PartnerStatus],
        "tiers": [t.value for t in Tier],
        "status": status.value,
        "tier": tier.value if tier else "",
        "by_sector": fs,
        "by_region": fr,
        "trend": trend,
        "chart": chart(
            [p.as_of.isoformat() for p in trend.points],
            {
                "function × sector covered": [p.function_sectors_covered for p in trend.points],
                "active partners": [p.active_partners for p in trend.points],
            },
        ),
    }


def chart(labels: list[str], series: dict[str, list[int]]) -> dict[str, Any]:
    """A line chart as SVG coordinates (drawn by the template, no script)."""
    width, height, pad = 640, 200, 30
    top = max([1, *(v for values in series.values() for v in values)])
    step = (width - 2 * pad) / max(1, len(labels) - 1)
    lines = []
    for name, values in series.items():
        points = [
            (round(pad + i * step, 1), round(height - pad - v * (height - 2 * pad) / top, 1))
            for i, v in enumerate(values)
        ]
        lines.append({"name": name, "points": " ".join(f"{x},{y}" for x, y in points)})
    ticks = [{"x": round(pad + i * step, 1), "label": label[:7]} for i, label in enumerate(labels)]
    return {
        "width": width,
        "height": height,
        "pad": pad,
        "top": top,
        "lines": lines,
        "ticks": ticks,
    }


# --- partners ----------------------------------------------------------------------------------


def partner_list(session: Session, *, q: str, filters: dict[str, str | None]) -> list[Any]:
    stmt = partner_rows.filtered(**filters)
    if q:
        stmt = stmt.where(Partner.name_key.contains(q.casefold(), autoescape=True))
    return [partners.to_read(p) for p in partner_rows.page(session, stmt, limit=500)]


def partner_page(session: Session, *, ref: str) -> dict[str, Any]:
    partner = partners.get(session, ref=ref)
    history = partner_rows.history(session, partner=partner, after_id=None, limit=500)
    received = list(
        session.scalars(
            select(Release)
            .where(Release.recipient_uuid == partner.uuid)
            .order_by(Release.id.desc())
            .limit(20)
        )
    )
    shared = list(
        session.execute(
            select(EventVersion.arrived_at, EventVersion.channel, EventVersion.version)
            .where(EventVersion.source_partner_id == partner.id)
            .order_by(EventVersion.id.desc())
            .limit(20)
        )
    )
    notes = list(
        session.scalars(
            select(Notification)
            .where(
                or_(
                    Notification.recipient_partner_id == partner.id,
                    Notification.via_partner_id == partner.id,
                )
            )
            .order_by(Notification.id.desc())
            .limit(20)
        )
    )
    current = PartnerStatus(partner.status)
    return {
        "partner": partners.to_read(partner),
        "history": list(reversed(history)),
        "keys": keys.list_keys(session, partner=partner),
        "received": received,
        "shared": shared,
        "notifications": notes,
        "next_statuses": [
            s.value for s in sorted(TRANSITIONS[current], key=list(PartnerStatus).index)
        ],
        "needs_reason": [s.value for s in NEEDS_REASON],
    }


# --- quarantine, connections, notifications, audit -------------------------------------------


def quarantine_page(session: Session) -> dict[str, Any]:
    held = session.scalars(
        select(QuarantineItem).where(QuarantineItem.status == "held").order_by(QuarantineItem.id)
    ).all()
    decided = session.scalars(
        select(QuarantineItem)
        .where(QuarantineItem.status != "held")
        .order_by(QuarantineItem.decided_at.desc())
        .limit(20)
    ).all()
    return {
        "held": held,
        "decided": decided,
        "labels": quarantine.LABELS,
        "default": quarantine.DEFAULT_LABEL,
    }


def connections_page(session: Session) -> dict[str, Any]:
    out = []
    for connection in connections.list_all(session):
        jobs = connections.jobs_of(session, connection=connection, limit=5)
        dead_pushes = session.scalar(
            select(func.count()).where(
                PushOutboxItem.connection_id == connection.id, PushOutboxItem.state == "dead"
            )
        )
        out.append(
            {
                "connection": connection,
                "jobs": jobs,
                "dead": (1 if jobs and jobs[0].state == "dead" else 0) + (dead_pushes or 0),
            }
        )
    return {"connections": out}


def notifications_page(session: Session, *, status: str | None) -> dict[str, Any]:
    stmt = select(Notification).order_by(Notification.id.desc()).limit(PAGE)
    if status:
        stmt = stmt.where(Notification.status == status)
    notes = session.scalars(stmt).all()
    answered = dict(
        session.execute(
            select(NotificationFeedback.notification_id, func.min(NotificationFeedback.received_at))
            .where(
                NotificationFeedback.notification_id.in_([n.id for n in notes]),
                NotificationFeedback.kind != "comment",
            )
            .group_by(NotificationFeedback.notification_id)
        ).all()
    )
    statuses = [s for (s,) in session.execute(select(Notification.status).distinct())]
    return {"notifications": notes, "answered": answered, "statuses": sorted(statuses)}


def audit_page(
    session: Session, *, filters: search.Filters, verify: bool, settings: Settings
) -> dict[str, Any]:
    """The log's search page and its state: the newest entries matching the auditor's
    filters (the export takes the same ones), the Merkle tree's size, the latest signed
    checkpoint; with ``verify``, the chain and the tree (every stored node and checkpoint,
    signatures with the published verifier key) recomputed now."""
    head = session.scalar(select(func.max(AuditEntry.seq))) or 0
    size = tree.tree_size(session)
    checkpoint = tree.latest_checkpoint(session)
    verification = tree_check = None
    if verify:
        verification = audit.verify(session)
        tree_check = tree.verify(session, verifier=tree.configured_verifier(settings))
    return {
        "entries": session.scalars(
            filters.apply(select(AuditEntry)).order_by(AuditEntry.seq.desc()).limit(PAGE)
        ).all(),
        "verification": verification,
        "tree_check": tree_check,
        "head": head,
        "tree_size": size,
        "pending": head - size,
        "checkpoint": checkpoint,
        "checkpoint_root": base64.b64encode(checkpoint.root_hash).decode() if checkpoint else "",
    }


def item_page(
    session: Session, *, event_uuid: str, partner: str | None, policy: Any, actor: str
) -> dict[str, Any]:
    """An item's journey: its versions, every release and refusal, its notifications and
    what came back; with ``partner``, what each channel would release to it now and why."""
    versions = session.execute(
        select(EventVersion.version, EventVersion.arrived_at, EventVersion.channel, Partner.name)
        .join(Partner, Partner.id == EventVersion.source_partner_id)
        .where(EventVersion.event_id.in_(_event_ids(session, event_uuid)))
        .order_by(EventVersion.version)
    ).all()
    releases = session.scalars(
        select(Release).where(Release.event_uuid == event_uuid).order_by(Release.id)
    ).all()
    names = dict(session.execute(select(Partner.uuid, Partner.name)).all())
    note_ids = (
        select(NotificationItem.notification_id)
        .join(Observation, Observation.id == NotificationItem.observation_id)
        .where(Observation.event_uuid == event_uuid)
    )
    notes = session.scalars(
        select(Notification).where(Notification.id.in_(note_ids)).order_by(Notification.id)
    ).all()
    feedback = session.scalars(
        select(NotificationFeedback)
        .where(NotificationFeedback.notification_id.in_([n.id for n in notes]))
        .order_by(NotificationFeedback.id)
    ).all()
    event = session.scalar(select(Event).where(Event.uuid == event_uuid))
    explained = None
    if partner and event is not None:
        target = partners.get(session, ref=partner)
        explained = {
            "partner": target,
            "channels": explain.for_partner(
                session, event=event, partner=target, policy=policy, actor=actor
            ),
        }
    active = session.execute(
        select(Partner.uuid, Partner.name).where(Partner.status == "active").order_by(Partner.name)
    ).all()
    return {
        "lineage": drawn(lineage.forward(session, item_uuid=event_uuid)),
        "event_uuid": event_uuid,
        "event": event,
        "explained": explained,
        "active_partners": active,
        "chosen": partner or "",
        "versions": versions,
        "releases": releases,
        "names": names,
        "notifications": notes,
        "feedback": feedback,
    }


def _event_ids(session: Session, event_uuid: str) -> Any:
    return select(Event.id).where(Event.uuid == event_uuid)


def drawn(graph: dict[str, Any]) -> dict[str, Any] | None:
    """The lineage graph laid out for SVG: artifacts in columns by their distance from the
    item (longest path), each derivation an arrow from its source to what came of it."""
    artifacts = {a["id"]: a for a in graph["artifacts"]}
    if not artifacts:
        return None
    parents: dict[str, list[str]] = {k: [] for k in artifacts}
    for d in graph["derivations"]:
        if d["derived"] in parents and d["source"] in artifacts:
            parents[d["derived"]].append(d["source"])
    depth: dict[str, int] = {}

    def depth_of(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            ups = [p for p in parents[node] if p not in seen]
            depth[node] = 1 + max((depth_of(p, seen | {node}) for p in ups), default=-1)
        return depth[node]

    columns: dict[int, list[str]] = {}
    for node in artifacts:
        columns.setdefault(depth_of(node), []).append(node)
    box_w, box_h, gap_x, gap_y, pad = 250, 58, 60, 16, 10
    where: dict[str, tuple[int, int]] = {}
    nodes = []
    for col, members in sorted(columns.items()):
        for row, node in enumerate(members):
            x, y = pad + col * (box_w + gap_x), pad + row * (box_h + gap_y)
            where[node] = (x, y)
            a = artifacts[node]
            nodes.append(
                {
                    "x": x,
                    "y": y,
                    "kind": a["kind"],
                    "label": str(a["external_id"])[:38],
                    "detail": f"v{a['version']} · {a['tlp'] or ''} · {a['created_at'][:16]}",
                }
            )
    edges = []
    for d in graph["derivations"]:
        if d["derived"] in where and d["source"] in where:
            (sx, sy), (dx, dy) = where[d["source"]], where[d["derived"]]
            edges.append(
                {
                    "x1": sx + box_w,
                    "y1": sy + box_h // 2,
                    "x2": dx,
                    "y2": dy + box_h // 2,
                    "rel": d["rel"],
                }
            )
    width = pad * 2 + len(columns) * (box_w + gap_x) - gap_x
    height = pad * 2 + max(len(m) for m in columns.values()) * (box_h + gap_y) - gap_y
    return {
        "nodes": nodes,
        "edges": edges,
        "width": width,
        "height": height,
        "box_w": box_w,
        "box_h": box_h,
        "count": len(nodes),
    }
