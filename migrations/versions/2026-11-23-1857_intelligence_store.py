"""intelligence store: events, objects, attributes, sightings, versions, quarantine, releases

Revision ID: c6c8bdd42164
Revises: ed0397f898d0
Create Date: 2026-11-23 18:57:03.691269
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models.base

revision: str = "c6c8bdd42164"
down_revision: str | None = "ed0397f898d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("audit_seq", sa.BigInteger(), nullable=False),
        sa.Column("released_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recipient_uuid", sa.String(length=36), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("event_uuid", sa.String(length=36), nullable=False),
        sa.Column("event_version", sa.Integer(), nullable=True),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=48), nullable=False),
        sa.Column("tlp", sa.String(length=16), nullable=True),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_releases")),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index("ix_releases_event", ["event_uuid", "id"], unique=False)
        batch_op.create_index("ix_releases_recipient", ["recipient_uuid", "id"], unique=False)

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("info", sa.Text(), nullable=False),
        sa.Column("date", sa.String(length=10), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("publish_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("distribution", sa.Integer(), nullable=False),
        sa.Column("sg_members", sa.Text(), nullable=True),
        sa.Column("orgc_uuid", sa.String(length=36), nullable=False),
        sa.Column("orgc_name", sa.String(length=255), nullable=False),
        sa.Column("source_partner_id", sa.Integer(), nullable=False),
        sa.Column("tlp_rank", sa.Integer(), nullable=False),
        sa.Column("min_rank", sa.Integer(), nullable=True),
        sa.Column("chr", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("attribute_count", sa.Integer(), nullable=False),
        sa.Column("doc", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_partner_id"],
            ["partners.id"],
            name=op.f("fk_events_source_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("uuid", name=op.f("uq_events_uuid")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_changed", ["changed_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_events_orgc_uuid"), ["orgc_uuid"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_events_source_partner_id"), ["source_partner_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_events_tlp_rank"), ["tlp_rank"], unique=False)

    op.create_table(
        "quarantine_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("item_uuid", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source_partner_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column(
            "problems", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decided_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decision_label", sa.String(length=16), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_partner_id"],
            ["partners.id"],
            name=op.f("fk_quarantine_items_source_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine_items")),
        sa.UniqueConstraint("uuid", name=op.f("uq_quarantine_items_uuid")),
    )
    with op.batch_alter_table("quarantine_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_quarantine_items_item_uuid"), ["item_uuid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_quarantine_items_status"), ["status"], unique=False)

    op.create_table(
        "attributes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("object_uuid", sa.String(length=36), nullable=True),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_key", sa.String(length=200), nullable=False),
        sa.Column("to_ids", sa.Boolean(), nullable=False),
        sa.Column("distribution", sa.Integer(), nullable=False),
        sa.Column("sg_members", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("tlp_rank", sa.Integer(), nullable=False),
        sa.Column("doc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_attributes_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attributes")),
        sa.UniqueConstraint("uuid", name=op.f("uq_attributes_uuid")),
    )
    with op.batch_alter_table("attributes", schema=None) as batch_op:
        batch_op.create_index("ix_attributes_changed", ["timestamp", "id"], unique=False)
        batch_op.create_index(
            "ix_attributes_event_object", ["event_id", "object_uuid"], unique=False
        )
        batch_op.create_index("ix_attributes_value_key", ["value_key", "type"], unique=False)

    op.create_table(
        "event_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("distribution", sa.Integer(), nullable=False),
        sa.Column("sg_members", sa.Text(), nullable=True),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("tlp_rank", sa.Integer(), nullable=False),
        sa.Column("doc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_objects_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_objects")),
        sa.UniqueConstraint("uuid", name=op.f("uq_event_objects_uuid")),
    )
    with op.batch_alter_table("event_objects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_objects_event_id"), ["event_id"], unique=False)

    op.create_table(
        "event_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("arrived_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source_partner_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("event_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tlp_rank", sa.Integer(), nullable=False),
        sa.Column(
            "changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("snapshot", sa.LargeBinary(), nullable=False),
        sa.Column("original", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_versions_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_partner_id"],
            ["partners.id"],
            name=op.f("fk_event_versions_source_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_versions")),
    )
    with op.batch_alter_table("event_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_versions_event_version", ["event_id", "version"], unique=True
        )

    op.create_table(
        "sightings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("attribute_uuid", sa.String(length=36), nullable=False),
        sa.Column("org_uuid", sa.String(length=36), nullable=True),
        sa.Column("type", sa.Integer(), nullable=False),
        sa.Column("date_sighting", sa.BigInteger(), nullable=False),
        sa.Column("doc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_sightings_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sightings")),
        sa.UniqueConstraint("uuid", name=op.f("uq_sightings_uuid")),
    )
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sightings_attribute_uuid"), ["attribute_uuid"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sightings_event_id"), ["event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sightings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sightings_event_id"))
        batch_op.drop_index(batch_op.f("ix_sightings_attribute_uuid"))

    op.drop_table("sightings")
    with op.batch_alter_table("event_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_event_versions_event_version")

    op.drop_table("event_versions")
    with op.batch_alter_table("event_objects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_objects_event_id"))

    op.drop_table("event_objects")
    with op.batch_alter_table("attributes", schema=None) as batch_op:
        batch_op.drop_index("ix_attributes_value_key")
        batch_op.drop_index("ix_attributes_event_object")
        batch_op.drop_index("ix_attributes_changed")

    op.drop_table("attributes")
    with op.batch_alter_table("quarantine_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quarantine_items_status"))
        batch_op.drop_index(batch_op.f("ix_quarantine_items_item_uuid"))

    op.drop_table("quarantine_items")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_events_tlp_rank"))
        batch_op.drop_index(batch_op.f("ix_events_source_partner_id"))
        batch_op.drop_index(batch_op.f("ix_events_orgc_uuid"))
        batch_op.drop_index("ix_events_changed")

    op.drop_table("events")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index("ix_releases_recipient")
        batch_op.drop_index("ix_releases_event")

    op.drop_table("releases")
