"""notification tickets are opaque codes: the per-day ticket counter goes

A ticket used to be ``CWN-YYYYMMDD-NNNNNNNN`` from a hub-wide counter per day, so a partner
holding two of its tickets learnt how many notifications others had received in between.
New tickets are random codes (``CWN-YYYY-XXXX-XXXX``, `hub.notifications.tickets`) and need
no counter. Existing tickets keep their number: partners quote them in mail, and they are
named in the audit log, which is never rewritten.

Revision ID: e18b00000001
Revises: e17a00000001
Create Date: 2026-12-03 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e18b00000001"
down_revision: str | None = "e17a00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("notify_ticket_counters")


def downgrade() -> None:
    counters = op.create_table(
        "notify_ticket_counters",
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_notify_ticket_counters")),
    )
    # the counters continue after the numbered tickets of each day (codes are not numbered)
    tickets = op.get_bind().scalars(sa.text("SELECT ticket FROM notifications")).all()
    last: dict[str, int] = {}
    for ticket in tickets:
        parts = ticket.split("-")
        if len(parts) == 3 and len(parts[1]) == 8 and parts[1].isdigit() and parts[2].isdigit():
            last[parts[1]] = max(last.get(parts[1], 0), int(parts[2]))
    if last:
        op.bulk_insert(counters, [{"day": d, "last": n} for d, n in sorted(last.items())])
