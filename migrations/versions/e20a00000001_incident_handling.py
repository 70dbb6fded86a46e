"""incident handling: incident support, reporting obligations (seeded), incident cases

The reporting obligations are seeded from ``hub/incidents/data/reporting_obligations.json``
(NIS2 art. 23 and the Cbw, sources named in the file); operators maintain them afterwards.

Revision ID: e20a00000001
Revises: e19c00000001
Create Date: 2026-12-03 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from hub.models.base import JSONType, UTCDateTime

revision: str = "e20a00000001"
down_revision: str | None = "e19c00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _partner_fk(name: str) -> sa.Column:
    return sa.Column(name, sa.Integer(), sa.ForeignKey("partners.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "incident_support",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "partner_id",
            sa.Integer(),
            sa.ForeignKey("partners.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column("services", JSONType, nullable=False),
        sa.Column("audience", JSONType, nullable=False),
        sa.Column("sectors", JSONType, nullable=False),
        sa.Column("regions", JSONType, nullable=False),
        sa.Column("availability", sa.String(16), nullable=False),
        sa.Column("contact_name", sa.String(200), nullable=False),
        sa.Column("contact_email", sa.String(320), nullable=False),
        sa.Column("contact_phone", sa.String(32), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    obligations = op.create_table(
        "reporting_obligations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sector", sa.String(48), nullable=False, index=True),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("deadline", sa.String(64), nullable=False),
        sa.Column("deadline_hours", sa.Integer(), nullable=False),
        sa.Column("report_to", JSONType, nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.String(500), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("sector", "step"),
    )
    op.create_table(
        "incident_cases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("sector", sa.String(48), nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opener_id", sa.Integer(), sa.ForeignKey("partners.id"), nullable=False),
        sa.Column("opened_by", sa.String(255), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("closer_id", sa.Integer(), sa.ForeignKey("partners.id"), nullable=True),
        sa.Column("closed_by", sa.String(255), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("lessons_learned", sa.Text(), nullable=True),
    )
    op.create_index("ix_incident_cases_opener_id", "incident_cases", ["opener_id"])
    op.create_table(
        "incident_case_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("incident_cases.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("event_uuid", sa.String(36), nullable=False),
        _partner_fk("linker_id"),
        sa.Column("linked_by", sa.String(255), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("case_id", "event_uuid"),
    )
    op.create_table(
        "incident_referrals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "case_id",
            sa.Integer(),
            sa.ForeignKey("incident_cases.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("referred", sa.String(200), nullable=False),
        sa.Column(
            "to_partner_id", sa.Integer(), sa.ForeignKey("partners.id"), nullable=False, index=True
        ),
        _partner_fk("referrer_id"),
        sa.Column("referred_by", sa.String(255), nullable=False),
        sa.Column("referred_at", UTCDateTime(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
    )
    _seed(obligations)


def _seed(table: sa.Table) -> None:
    # The rows as shipped at this revision's time are read from the package: later changes
    # to the data file do not reach a database migrated before them (operators own it).
    from hub.incidents.seed import obligation_rows

    op.bulk_insert(table, obligation_rows(datetime.now(UTC)))


def downgrade() -> None:
    op.drop_table("incident_referrals")
    op.drop_table("incident_case_items")
    op.drop_index("ix_incident_cases_opener_id", table_name="incident_cases")
    op.drop_table("incident_cases")
    op.drop_table("reporting_obligations")
    op.drop_table("incident_support")
