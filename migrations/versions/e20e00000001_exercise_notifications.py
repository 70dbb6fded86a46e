"""notifications carry their exercise

An exercise's items were never matched for notification. They now are, against the
participants' constituencies only, and the notification carries the exercise's uuid so the
release path (REST and e-mail) gives it only to that exercise's keys and participants.

Revision ID: e20e00000001
Revises: e20d00000001
Create Date: 2026-12-03 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e20e00000001"
down_revision: str | None = "e20d00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exercise_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_exercise_id"), ["exercise_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_notifications_exercise_id_exercises"),
            "exercises",
            ["exercise_id"],
            ["uuid"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notifications_exercise_id_exercises", type_="foreignkey")
        batch_op.drop_index("ix_notifications_exercise_id")
        batch_op.drop_column("exercise_id")
