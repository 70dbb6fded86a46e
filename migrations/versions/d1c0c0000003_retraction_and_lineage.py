"""retraction and lineage: STIX objects served as revoked tombstones

Revision ID: d1c0c0000003
Revises: d1b0c0000002
Create Date: 2026-11-24 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1c0c0000003"
down_revision: str | None = "d1b0c0000002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """A withdrawn STIX object stays as a ``revoked`` version (TAXII pollers are told)."""
    with op.batch_alter_table("stix_objects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("revoked", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    """Drop the tombstone flag (revoked rows stay as plain rows)."""
    with op.batch_alter_table("stix_objects", schema=None) as batch_op:
        batch_op.drop_column("revoked")
