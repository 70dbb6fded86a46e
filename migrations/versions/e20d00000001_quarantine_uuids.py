"""uuids reserved by held input

A quarantined STIX bundle reserved only the bundle's own uuid, not the uuid of the event it
converts to, and a quarantined event reserved only its own uuid, not its elements': another
organisation could claim them before the operator released the held input. Each held item's
uuids are now kept here, reserved for its source.

Revision ID: e20d00000001
Revises: e20c00000001
Create Date: 2026-12-03 14:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e20d00000001"
down_revision: str | None = "e20c00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quarantine_uuids",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source_partner_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["quarantine_items.id"],
            name=op.f("fk_quarantine_uuids_item_id_quarantine_items"),
        ),
        sa.ForeignKeyConstraint(
            ["source_partner_id"],
            ["partners.id"],
            name=op.f("fk_quarantine_uuids_source_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("item_id", "uuid", name=op.f("pk_quarantine_uuids")),
    )
    op.create_index(op.f("ix_quarantine_uuids_uuid"), "quarantine_uuids", ["uuid"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_quarantine_uuids_uuid"), table_name="quarantine_uuids")
    op.drop_table("quarantine_uuids")
