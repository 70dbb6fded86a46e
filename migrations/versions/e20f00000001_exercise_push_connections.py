"""push connections in exercise mode; TAXII statuses keep their key's scope

A misp-push connection may be in exercise mode: it pushes that exercise's items only
(marked), never real traffic, and is named in the audit log as an exercise key is. A TAXII
status resource records the exercise of the key that submitted, so the same organisation's
key of the other scope does not read it (it names the submitted objects).

Revision ID: e20f00000001
Revises: e20e00000001
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e20f00000001"
down_revision: str | None = "e20e00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exercise_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_connections_exercise_id"), ["exercise_id"])
        batch_op.create_foreign_key(
            batch_op.f("fk_connections_exercise_id_exercises"),
            "exercises",
            ["exercise_id"],
            ["uuid"],
            ondelete="RESTRICT",
        )

    with op.batch_alter_table("taxii_statuses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exercise_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("taxii_statuses", schema=None) as batch_op:
        batch_op.drop_column("exercise_id")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_constraint("fk_connections_exercise_id_exercises", type_="foreignkey")
        batch_op.drop_index("ix_connections_exercise_id")
        batch_op.drop_column("exercise_id")
