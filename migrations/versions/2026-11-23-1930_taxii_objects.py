"""taxii objects: STIX rendered once per event version, renderings, Add Objects statuses

Revision ID: a2a4313136b5
Revises: 5d1c0a7e9b21
Create Date: 2026-11-23 19:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models.base

revision: str = "a2a4313136b5"
down_revision: str | None = "5d1c0a7e9b21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stix_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_uuid", sa.String(length=36), nullable=False),
        sa.Column("event_version", sa.Integer(), nullable=False),
        sa.Column("source_partner_id", sa.Integer(), nullable=False),
        sa.Column("orgc_uuid", sa.String(length=36), nullable=False),
        sa.Column("stix_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("tlp_rank", sa.Integer(), nullable=False),
        sa.Column("distribution", sa.Integer(), nullable=False),
        sa.Column("sg_members", sa.Text(), nullable=True),
        sa.Column("refs", sa.LargeBinary(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("date_added", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("doc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_stix_objects_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_partner_id"],
            ["partners.id"],
            name=op.f("fk_stix_objects_source_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stix_objects")),
    )
    with op.batch_alter_table("stix_objects", schema=None) as batch_op:
        batch_op.create_index("ix_stix_objects_added", ["date_added", "id"], unique=False)
        batch_op.create_index(
            "ix_stix_objects_event_object", ["event_id", "stix_id", "version"], unique=True
        )
        batch_op.create_index(
            batch_op.f("ix_stix_objects_source_partner_id"), ["source_partner_id"], unique=False
        )
        batch_op.create_index("ix_stix_objects_stix_id", ["stix_id"], unique=False)

    op.create_table(
        "stix_renderings",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("event_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("object_count", sa.Integer(), nullable=False),
        sa.Column("rendered_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_stix_renderings_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_stix_renderings")),
    )

    op.create_table(
        "taxii_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("partner_uuid", sa.String(length=36), nullable=False),
        sa.Column("request_timestamp", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("failure_count", sa.Integer(), nullable=False),
        sa.Column("pending_count", sa.Integer(), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taxii_statuses")),
        sa.UniqueConstraint("uuid", name=op.f("uq_taxii_statuses_uuid")),
    )
    with op.batch_alter_table("taxii_statuses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_taxii_statuses_partner_uuid"), ["partner_uuid"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("taxii_statuses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_taxii_statuses_partner_uuid"))
    op.drop_table("taxii_statuses")
    op.drop_table("stix_renderings")
    with op.batch_alter_table("stix_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_stix_objects_stix_id")
        batch_op.drop_index(batch_op.f("ix_stix_objects_source_partner_id"))
        batch_op.drop_index("ix_stix_objects_event_object")
        batch_op.drop_index("ix_stix_objects_added")
    op.drop_table("stix_objects")
