"""create partners and keys

Revision ID: 19a89efa9aa3
Revises: (none)
Create Date: 2026-11-23 18:41:46.445876
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hub.models.base

revision: str = "19a89efa9aa3"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "partners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("legal_status", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("tlp_accepted_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("is_hub_org", sa.Boolean(), nullable=False),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partners")),
        sa.UniqueConstraint("name_key", name=op.f("uq_partners_name_key")),
        sa.UniqueConstraint("uuid", name=op.f("uq_partners_uuid")),
    )
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partners_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_partners_tier"), ["tier"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_hint", sa.String(length=4), nullable=False),
        sa.Column("comment", sa.String(length=200), nullable=True),
        sa.Column("created_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("expires_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=255), nullable=True),
        sa.Column("last_used_at", hub.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_api_keys_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("uuid", name=op.f("uq_api_keys_uuid")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "constituency_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("family", sa.Integer(), nullable=True),
        sa.Column("prefix_len", sa.Integer(), nullable=True),
        sa.Column("net_start", sa.String(length=32), nullable=True),
        sa.Column("net_end", sa.String(length=32), nullable=True),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_constituency_entries_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_constituency_entries")),
    )
    with op.batch_alter_table("constituency_entries", schema=None) as batch_op:
        batch_op.create_index("ix_constituency_entries_kind_value", ["kind", "value"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_constituency_entries_partner_id"), ["partner_id"], unique=False
        )
        batch_op.create_index(
            "ix_constituency_entries_range", ["family", "net_start", "net_end"], unique=False
        )

    op.create_table(
        "partner_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "changes", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_changes_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_changes")),
    )
    with op.batch_alter_table("partner_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_changes_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "partner_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=100), nullable=True),
        sa.Column("pgp_key", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_contacts_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_contacts")),
    )
    with op.batch_alter_table("partner_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_contacts_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "partner_functions",
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("function", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_functions_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("partner_id", "function", name=op.f("pk_partner_functions")),
    )
    with op.batch_alter_table("partner_functions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_partner_functions_function"), ["function"], unique=False
        )

    op.create_table(
        "partner_sectors",
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("sector", sa.String(length=48), nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"],
            ["partners.id"],
            name=op.f("fk_partner_sectors_partner_id_partners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("partner_id", "sector", name=op.f("pk_partner_sectors")),
    )
    with op.batch_alter_table("partner_sectors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_sectors_sector"), ["sector"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("partner_sectors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_sectors_sector"))

    op.drop_table("partner_sectors")
    with op.batch_alter_table("partner_functions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_functions_function"))

    op.drop_table("partner_functions")
    with op.batch_alter_table("partner_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_contacts_partner_id"))

    op.drop_table("partner_contacts")
    with op.batch_alter_table("partner_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_changes_partner_id"))

    op.drop_table("partner_changes")
    with op.batch_alter_table("constituency_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_constituency_entries_range")
        batch_op.drop_index(batch_op.f("ix_constituency_entries_partner_id"))
        batch_op.drop_index("ix_constituency_entries_kind_value")

    op.drop_table("constituency_entries")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_partner_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partners_tier"))
        batch_op.drop_index(batch_op.f("ix_partners_status"))

    op.drop_table("partners")
