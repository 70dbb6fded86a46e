"""auth throttle: failed authentications counted per source address and key hint

Shared by every API worker, so the limit holds however many processes serve requests.

Revision ID: e14e00000001
Revises: e13a00000001
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.models.base

revision: str = "e14e00000001"
down_revision: str | None = "e13a00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "auth_throttle",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("window_start", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("blocked_until", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "subject", name=op.f("pk_auth_throttle")),
    )


def downgrade() -> None:
    op.drop_table("auth_throttle")
