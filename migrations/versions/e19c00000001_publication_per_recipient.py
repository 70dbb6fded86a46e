"""publication and withdrawals as each recipient sees them

A change a recipient cannot see must not unpublish its copy or move its timestamp
(DESIGN.md §3, "What leaves the hub"). ``events.publications`` keeps the publications a
recipient's copy may still be; ``events.withdrawn_ts`` the last withdrawal, which only the
creator sees move as such (the others see the withdrawals of what they had received).
``meta_timestamp`` no longer moves with publication or withdrawals: existing rows keep the
value they have, which is later than or equal to the new rule's (fail closed).

An existing published event is published at its current timestamp for everyone.

Revision ID: e19c00000001
Revises: e18b00000001
Create Date: 2026-12-03 10:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e19c00000001"
down_revision: str | None = "e18b00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("withdrawn_ts", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("publications", sa.Text(), nullable=False, server_default="[]")
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("withdrawn_ts", server_default=None)
        batch_op.alter_column("publications", server_default=None)
    op.execute(
        "UPDATE events SET publications = "
        "'[[' || CAST(timestamp AS TEXT) || ',' || CAST(publish_timestamp AS TEXT) || ']]' "
        "WHERE published"
    )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("publications")
        batch_op.drop_column("withdrawn_ts")
