"""knowledge products: versions, review and sources

Revision ID: e20b00000001
Revises: e20a00000001
Create Date: 2026-12-03 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models.base

revision: str = "e20b00000001"
down_revision: str | None = "e20a00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = hub.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "knowledge_products",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("owner_partner_id", sa.Integer(), nullable=False),
        sa.Column("owner_uuid", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("event_uuid", sa.String(length=36), nullable=False),
        sa.Column("report_uuid", sa.String(length=36), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("changed_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(["owner_partner_id"], ["partners.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_uuid"),
        sa.UniqueConstraint("uuid"),
    )
    op.create_index(
        "ix_knowledge_products_owner_partner_id", "knowledge_products", ["owner_partner_id"]
    )
    op.create_index("ix_knowledge_products_state", "knowledge_products", ["state"])
    op.create_table(
        "knowledge_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tlp", sa.String(length=16), nullable=False),
        sa.Column(
            "themes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("author", sa.String(length=255), nullable=False),
        sa.Column("author_org", sa.String(length=36), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("reviewed_by", sa.String(length=255), nullable=True),
        sa.Column("reviewed_org", sa.String(length=36), nullable=True),
        sa.Column("reviewed_at", _WHEN, nullable=True),
        sa.Column("review_note", sa.Text(), nullable=True),
        sa.Column("published_by", sa.String(length=255), nullable=True),
        sa.Column("published_at", _WHEN, nullable=True),
        sa.Column("event_version", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["product_id"], ["knowledge_products.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("product_id", "version"),
    )
    op.create_index("ix_knowledge_versions_product_id", "knowledge_versions", ["product_id"])
    op.create_table(
        "knowledge_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("item_uuid", sa.String(length=36), nullable=True),
        sa.Column("event_uuid", sa.String(length=36), nullable=True),
        sa.Column("org_uuid", sa.String(length=36), nullable=False),
        sa.Column("named", sa.Boolean(), nullable=False),
        sa.Column("credit", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["version_id"], ["knowledge_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    for column in ("version_id", "item_uuid", "event_uuid", "org_uuid"):
        op.create_index(f"ix_knowledge_sources_{column}", "knowledge_sources", [column])


def downgrade() -> None:
    op.drop_table("knowledge_sources")
    op.drop_table("knowledge_versions")
    op.drop_table("knowledge_products")
