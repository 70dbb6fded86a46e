"""exercises: isolated, measured practice on the real hub (#20)

An exercise, its participants and its scenario's injects; the exercise an event or a key
belongs to (null: real traffic). Existing rows are real traffic.

Revision ID: e20c00000001
Revises: e20b00000001
Create Date: 2026-12-03 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from hub.models.base import UTCDateTime

revision: str = "e20c00000001"
down_revision: str | None = "e20b00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exercises",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("controller", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("match_real_constituencies", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("closed_by", sa.String(length=255), nullable=True),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exercises")),
        sa.UniqueConstraint("uuid", name=op.f("uq_exercises_uuid")),
    )
    op.create_table(
        "exercise_participants",
        sa.Column("exercise_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("added_at", UTCDateTime(), nullable=False),
        sa.Column("added_by", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["exercise_id"],
            ["exercises.id"],
            name=op.f("fk_exercise_participants_exercise_id_exercises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_exercise_participants_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("exercise_id", "partner_id", name=op.f("pk_exercise_participants")),
    )
    op.create_index(
        op.f("ix_exercise_participants_partner_id"),
        "exercise_participants",
        ["partner_id"],
        unique=False,
    )
    op.create_table(
        "exercise_injects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exercise_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("send_at", UTCDateTime(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("event_uuid", sa.String(length=36), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["exercise_id"],
            ["exercises.id"],
            name=op.f("fk_exercise_injects_exercise_id_exercises"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exercise_injects")),
    )
    op.create_index(
        op.f("ix_exercise_injects_exercise_id"), "exercise_injects", ["exercise_id"], unique=False
    )
    for table in ("api_keys", "events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("exercise_id", sa.String(length=36), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_{table}_exercise_id"), ["exercise_id"])
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_exercise_id_exercises"),
                "exercises",
                ["exercise_id"],
                ["uuid"],
                ondelete="RESTRICT",
            )


def downgrade() -> None:
    for table in ("events", "api_keys"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"fk_{table}_exercise_id_exercises", type_="foreignkey")
            batch_op.drop_index(f"ix_{table}_exercise_id")
            batch_op.drop_column("exercise_id")
    op.drop_index(op.f("ix_exercise_injects_exercise_id"), table_name="exercise_injects")
    op.drop_table("exercise_injects")
    op.drop_index(op.f("ix_exercise_participants_partner_id"), table_name="exercise_participants")
    op.drop_table("exercise_participants")
    op.drop_table("exercises")
