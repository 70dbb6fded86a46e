"""notifications (matching, routing, tickets), feedback and lineage

Revision ID: c8d2f1e3a4b5
Revises: b7c1e0d2f3a4
Create Date: 2026-11-23 19:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models.base

revision: str = "c8d2f1e3a4b5"
down_revision: str | None = "b7c1e0d2f3a4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lineage_activities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("agent", sa.String(length=255), nullable=False),
        sa.Column("on_behalf_of", sa.String(length=36), nullable=True),
        sa.Column("plan", sa.String(length=128), nullable=False),
        sa.Column(
            "params", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_activities")),
    )
    with op.batch_alter_table("lineage_activities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lineage_activities_kind"), ["kind"], unique=False)

    op.create_table(
        "notify_ticket_counters",
        sa.Column("day", sa.String(length=8), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_notify_ticket_counters")),
    )
    op.create_table(
        "lineage_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.Column("source_uuid", sa.String(length=36), nullable=True),
        sa.Column("tlp", sa.String(length=16), nullable=True),
        sa.Column("generated_by", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["generated_by"],
            ["lineage_activities.id"],
            name=op.f("fk_lineage_artifacts_generated_by_lineage_activities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_artifacts")),
        sa.UniqueConstraint(
            "kind", "external_id", "version", name=op.f("uq_lineage_artifacts_kind")
        ),
    )
    with op.batch_alter_table("lineage_artifacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_artifacts_external_id"), ["external_id"], unique=False
        )

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket", sa.String(length=24), nullable=False),
        sa.Column("route", sa.String(length=8), nullable=False),
        sa.Column("recipient_ref", sa.String(length=64), nullable=False),
        sa.Column("recipient_name", sa.String(length=255), nullable=False),
        sa.Column("recipient_partner_id", sa.Integer(), nullable=True),
        sa.Column("via_partner_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("tlp", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("body_sha256", sa.String(length=64), nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["recipient_partner_id"],
            ["partners.id"],
            name=op.f("fk_notifications_recipient_partner_id_partners"),
        ),
        sa.ForeignKeyConstraint(
            ["via_partner_id"],
            ["partners.id"],
            name=op.f("fk_notifications_via_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("ticket", name=op.f("uq_notifications_ticket")),
        sa.UniqueConstraint("uuid", name=op.f("uq_notifications_uuid")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notifications_recipient", ["recipient_partner_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_notifications_ref_created", ["recipient_ref", "created_at"], unique=False
        )
        batch_op.create_index("ix_notifications_via", ["via_partner_id", "id"], unique=False)

    op.create_table(
        "notify_target_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("family", sa.Integer(), nullable=True),
        sa.Column("prefix_len", sa.Integer(), nullable=True),
        sa.Column("net_start", sa.String(length=32), nullable=True),
        sa.Column("net_end", sa.String(length=32), nullable=True),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_notify_target_entries_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_target_entries")),
    )
    with op.batch_alter_table("notify_target_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notify_target_entries_kind_value", ["kind", "value"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notify_target_entries_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            "ix_notify_target_entries_range", ["family", "net_start", "net_end"], unique=False
        )

    op.create_table(
        "lineage_derivations",
        sa.Column("derived_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("rel", sa.String(length=16), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["lineage_activities.id"],
            name=op.f("fk_lineage_derivations_activity_id_lineage_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["derived_id"],
            ["lineage_artifacts.id"],
            name=op.f("fk_lineage_derivations_derived_id_lineage_artifacts"),
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["lineage_artifacts.id"],
            name=op.f("fk_lineage_derivations_source_id_lineage_artifacts"),
        ),
        sa.PrimaryKeyConstraint(
            "derived_id", "source_id", "rel", name=op.f("pk_lineage_derivations")
        ),
    )
    with op.batch_alter_table("lineage_derivations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lineage_derivations_source", ["source_id", "derived_id"], unique=False
        )

    op.create_table(
        "lineage_uses",
        sa.Column("activity_id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["lineage_activities.id"],
            name=op.f("fk_lineage_uses_activity_id_lineage_activities"),
        ),
        sa.ForeignKeyConstraint(
            ["artifact_id"],
            ["lineage_artifacts.id"],
            name=op.f("fk_lineage_uses_artifact_id_lineage_artifacts"),
        ),
        sa.PrimaryKeyConstraint("activity_id", "artifact_id", name=op.f("pk_lineage_uses")),
    )
    with op.batch_alter_table("lineage_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lineage_uses_artifact_id"), ["artifact_id"], unique=False
        )

    op.create_table(
        "notification_corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "attribute_uuids",
            sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            nullable=False,
        ),
        sa.Column("event_version", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_corrections_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_corrections")),
    )
    with op.batch_alter_table("notification_corrections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_corrections_notification_id"),
            ["notification_id"],
            unique=False,
        )

    op.create_table(
        "notification_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("from_partner_id", sa.Integer(), nullable=False),
        sa.Column("source_partner_id", sa.Integer(), nullable=True),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("forward", sa.String(length=16), nullable=False),
        sa.Column("received_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_partner_id"],
            ["partners.id"],
            name=op.f("fk_notification_feedback_from_partner_id_partners"),
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_feedback_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_partner_id"],
            ["partners.id"],
            name=op.f("fk_notification_feedback_source_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_feedback")),
        sa.UniqueConstraint("uuid", name=op.f("uq_notification_feedback_uuid")),
    )
    with op.batch_alter_table("notification_feedback", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_feedback_notification_id"),
            ["notification_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notification_feedback_source_partner_id"),
            ["source_partner_id"],
            unique=False,
        )

    op.create_table(
        "notify_marks",
        sa.Column("event_version_id", sa.Integer(), nullable=False),
        sa.Column("matched_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_version_id"],
            ["event_versions.id"],
            name=op.f("fk_notify_marks_event_version_id_event_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_version_id", name=op.f("pk_notify_marks")),
    )
    op.create_table(
        "notify_observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_version_id", sa.Integer(), nullable=False),
        sa.Column("event_uuid", sa.String(length=36), nullable=False),
        sa.Column("event_version", sa.Integer(), nullable=False),
        sa.Column("attribute_uuid", sa.String(length=36), nullable=True),
        sa.Column("attribute_type", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("tlp_rank", sa.Integer(), nullable=False),
        sa.Column("distribution", sa.Integer(), nullable=False),
        sa.Column("sg_members", sa.Text(), nullable=True),
        sa.Column("source_uuid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_version_id"],
            ["event_versions.id"],
            name=op.f("fk_notify_observations_event_version_id_event_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_observations")),
    )
    with op.batch_alter_table("notify_observations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notify_observations_event", ["event_uuid", "attribute_uuid"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notify_observations_event_version_id"),
            ["event_version_id"],
            unique=False,
        )

    op.create_table(
        "notify_directives",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("observation_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("entry_table", sa.String(length=16), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("entry_kind", sa.String(length=16), nullable=False),
        sa.Column("entry_value", sa.String(length=255), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=8), nullable=False),
        sa.Column("recipient_ref", sa.String(length=64), nullable=False),
        sa.Column("recipient_partner_id", sa.Integer(), nullable=True),
        sa.Column("via_partner_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("hops", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("activity_id", sa.Integer(), nullable=True),
        sa.Column("notification_id", sa.Integer(), nullable=True),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notify_directives_notification_id_notifications"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["notify_observations.id"],
            name=op.f("fk_notify_directives_observation_id_notify_observations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["recipient_partner_id"],
            ["partners.id"],
            name=op.f("fk_notify_directives_recipient_partner_id_partners"),
        ),
        sa.ForeignKeyConstraint(
            ["via_partner_id"],
            ["partners.id"],
            name=op.f("fk_notify_directives_via_partner_id_partners"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_directives")),
    )
    with op.batch_alter_table("notify_directives", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notify_directives_notification_id"), ["notification_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notify_directives_observation_id"), ["observation_id"], unique=False
        )
        batch_op.create_index(
            "ix_notify_directives_pending", ["state", "recipient_ref"], unique=False
        )
        batch_op.create_index(
            "ix_notify_directives_repeat", ["recipient_ref", "kind", "field", "value"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_notify_directives_via_partner_id"), ["via_partner_id"], unique=False
        )

    op.create_table(
        "notification_items",
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("directive_id", sa.Integer(), nullable=False),
        sa.Column("observation_id", sa.Integer(), nullable=False),
        sa.Column("retracted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["directive_id"],
            ["notify_directives.id"],
            name=op.f("fk_notification_items_directive_id_notify_directives"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_items_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["notify_observations.id"],
            name=op.f("fk_notification_items_observation_id_notify_observations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "notification_id", "directive_id", name=op.f("pk_notification_items")
        ),
    )
    with op.batch_alter_table("notification_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_items_observation_id"), ["observation_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_items_observation_id"))

    op.drop_table("notification_items")
    with op.batch_alter_table("notify_directives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_directives_via_partner_id"))
        batch_op.drop_index("ix_notify_directives_repeat")
        batch_op.drop_index("ix_notify_directives_pending")
        batch_op.drop_index(batch_op.f("ix_notify_directives_observation_id"))
        batch_op.drop_index(batch_op.f("ix_notify_directives_notification_id"))

    op.drop_table("notify_directives")
    with op.batch_alter_table("notify_observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_observations_event_version_id"))
        batch_op.drop_index("ix_notify_observations_event")

    op.drop_table("notify_observations")
    op.drop_table("notify_marks")
    with op.batch_alter_table("notification_feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_feedback_source_partner_id"))
        batch_op.drop_index(batch_op.f("ix_notification_feedback_notification_id"))

    op.drop_table("notification_feedback")
    with op.batch_alter_table("notification_corrections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_corrections_notification_id"))

    op.drop_table("notification_corrections")
    with op.batch_alter_table("lineage_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_uses_artifact_id"))

    op.drop_table("lineage_uses")
    with op.batch_alter_table("lineage_derivations", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_derivations_source")

    op.drop_table("lineage_derivations")
    with op.batch_alter_table("notify_target_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_target_entries_range")
        batch_op.drop_index(batch_op.f("ix_notify_target_entries_partner_id"))
        batch_op.drop_index("ix_notify_target_entries_kind_value")

    op.drop_table("notify_target_entries")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_via")
        batch_op.drop_index("ix_notifications_ref_created")
        batch_op.drop_index("ix_notifications_recipient")

    op.drop_table("notifications")
    with op.batch_alter_table("lineage_artifacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_artifacts_external_id"))

    op.drop_table("lineage_artifacts")
    op.drop_table("notify_ticket_counters")
    with op.batch_alter_table("lineage_activities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lineage_activities_kind"))

    op.drop_table("lineage_activities")
