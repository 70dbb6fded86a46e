"""event report ids: MISP clients address an event report by number

Event reports live in their event's document; ``event_reports`` gives each one a row (its
uuid and event), so ``/misp`` can hand out per-organisation ids for them as it does for
attributes and objects (``hub.sharing.ids``). Existing reports are numbered from their
event's current document.

Revision ID: e15d00000001
Revises: e14e00000001
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e15d00000001"
down_revision: str | None = "e14e00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid", name=op.f("uq_event_reports_uuid")),
    )
    op.create_index(op.f("ix_event_reports_event_id"), "event_reports", ["event_id"])
    bind = op.get_bind()
    events = sa.table("events", sa.column("id", sa.Integer), sa.column("doc", sa.LargeBinary))
    reports = sa.table(
        "event_reports", sa.column("event_id", sa.Integer), sa.column("uuid", sa.String)
    )
    seen: set[str] = set()
    for event_id, doc in bind.execute(sa.select(events.c.id, events.c.doc)).all():
        rows = []
        for report in json.loads(bytes(doc)).get("EventReport") or []:
            uuid = report.get("uuid") if isinstance(report, dict) else None
            if isinstance(uuid, str) and len(uuid) == 36 and uuid not in seen:
                seen.add(uuid)
                rows.append({"event_id": event_id, "uuid": uuid})
        if rows:
            bind.execute(reports.insert(), rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_event_reports_event_id"), table_name="event_reports")
    op.drop_table("event_reports")
