"""push outbox: the release is recorded when the remote accepted it

A pending push has no audit entry yet (its decision is recorded as a release only once the
remote accepted what was sent, or as a denial when it is withheld), so ``audit_seq`` may be
empty until then.

Revision ID: d1e0c0000005
Revises: d1d0c0000004
Create Date: 2026-11-23 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d1e0c0000005"
down_revision: str | None = "d1d0c0000004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.alter_column("audit_seq", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    # Rows not yet recorded point at no entry; 0 is never a sequence number (they start at 1).
    op.execute("UPDATE push_outbox SET audit_seq = 0 WHERE audit_seq IS NULL")
    with op.batch_alter_table("push_outbox", schema=None) as batch_op:
        batch_op.alter_column("audit_seq", existing_type=sa.BigInteger(), nullable=False)
