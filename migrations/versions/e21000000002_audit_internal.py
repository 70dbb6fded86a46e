"""audit entries keep internal version numbers apart from what their recipient reads

A partner reads the exact bytes of the audit entries about its own organisation; their rows
named the event's internal version number, which also counts changes the partner could not
see. That number now goes to ``internal``, beside the entry and outside its bytes, which the
entry commits to by a salted hash (``details.sealed``). Plain ADD COLUMN (no table copy on
SQLite), so the triggers that refuse UPDATE and DELETE on audit entries stay.

Revision ID: e21000000002
Revises: e20f00000001
Create Date: 2026-12-03 21:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e21000000002"
down_revision: str | None = "e20f00000001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "audit_entries",
        sa.Column(
            "internal", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=True
        ),
    )


def downgrade() -> None:
    op.drop_column("audit_entries", "internal")
