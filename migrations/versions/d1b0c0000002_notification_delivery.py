"""notification delivery: e-mail sends, expiry

Revision ID: d1b0c0000002
Revises: d1a0c0000001
Create Date: 2026-11-24 09:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models.base

revision: str = "d1b0c0000002"
down_revision: str | None = "d1a0c0000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """E-mail sends of notifications (their idempotency record) and the expiry index."""
    op.create_table(
        "notification_mails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column(
            "recipients", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("audit_seq", sa.BigInteger(), nullable=True),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_mails_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_notification_mails_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_mails")),
        sa.UniqueConstraint("message_id", name=op.f("uq_notification_mails_message_id")),
        sa.UniqueConstraint("notification_id", name=op.f("uq_notification_mails_notification_id")),
    )
    with op.batch_alter_table("notification_mails", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_mails_due", ["state", "next_attempt_at"], unique=False
        )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_status_created", ["status", "created_at"], unique=False
        )


def downgrade() -> None:
    """Drop the e-mail sends and the expiry index."""
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_status_created")
    with op.batch_alter_table("notification_mails", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_mails_due")
    op.drop_table("notification_mails")
