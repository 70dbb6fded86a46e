"""push connections in exercise mode; TAXII statuses keep their key's scope; scenario targets

A misp-push connection may be in exercise mode: it pushes that exercise's items only
(marked), never real traffic, and is named in the audit log as an exercise key is. A TAXII
status resource records the exercise of the key that submitted, so the same organisation's
key of the other scope does not read it (it names the submitted objects). An exercise's
scenario may name fictional constituents of its participants (exercise_targets), matched
for that exercise's items only.

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

    op.create_table(
        "exercise_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("exercise_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("family", sa.Integer(), nullable=True),
        sa.Column("prefix_len", sa.Integer(), nullable=True),
        sa.Column("net_start", sa.String(length=32), nullable=True),
        sa.Column("net_end", sa.String(length=32), nullable=True),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["exercise_id"],
            ["exercises.id"],
            name=op.f("fk_exercise_targets_exercise_id_exercises"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_exercise_targets_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exercise_targets")),
    )
    with op.batch_alter_table("exercise_targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exercise_targets_exercise_kind_value", ["exercise_id", "kind", "value"]
        )
        batch_op.create_index(batch_op.f("ix_exercise_targets_partner_id"), ["partner_id"])


def downgrade() -> None:
    with op.batch_alter_table("exercise_targets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exercise_targets_partner_id"))
        batch_op.drop_index("ix_exercise_targets_exercise_kind_value")
    op.drop_table("exercise_targets")
    with op.batch_alter_table("taxii_statuses", schema=None) as batch_op:
        batch_op.drop_column("exercise_id")
    with op.batch_alter_table("connections", schema=None) as batch_op:
        batch_op.drop_constraint("fk_connections_exercise_id_exercises", type_="foreignkey")
        batch_op.drop_index("ix_connections_exercise_id")
        batch_op.drop_column("exercise_id")
