"""released view: what every channel needs to answer over released elements only

- ``events.profile``, ``events.narrowed``: what a recipient receives of an event whose
  elements all go where the event goes can be told from its row (listings then need no
  element rows);
- ``events.meta_timestamp``: when the event's own fields last changed or an element was
  withdrawn, so the timestamp a recipient sees moves only with what it receives;
- ``events.tags`` without local tags (they never leave the hub, not even as a filter);
- ``element_withdrawals``: which recipient received an element that was withdrawn since, so
  its deletion goes to them and nobody else;
- ``stix_objects.element_uuid``: the MISP element a STIX object is named after (revocations);
- ``attributes.changed_ts``, ``event_objects.changed_ts``: the event timestamp of the version
  that last added or replaced the element.

Existing events are marked "narrowed" without a profile, so they take the exact (slower)
path until their next version; ``meta_timestamp`` starts as their timestamp.

Revision ID: e13a00000001
Revises: d1e0c0000005
Create Date: 2026-12-02 18:30:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hub.models.base

revision: str = "e13a00000001"
down_revision: str | None = "d1e0c0000005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("profile", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("narrowed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("meta_timestamp", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.alter_column("narrowed", server_default=None)
        batch_op.alter_column("meta_timestamp", server_default=None)
    op.execute("UPDATE events SET meta_timestamp = timestamp")

    for table in ("attributes", "event_objects"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("changed_ts", sa.BigInteger(), nullable=False, server_default="0")
            )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("changed_ts", server_default=None)
        op.execute(f"UPDATE {table} SET changed_ts = timestamp")

    bind = op.get_bind()
    events = sa.table(
        "events",
        sa.column("id", sa.Integer),
        sa.column("tags", sa.Text),
        sa.column("doc", sa.LargeBinary),
    )
    for event_id, doc in bind.execute(sa.select(events.c.id, events.c.doc)).all():
        tags = json.loads(bytes(doc)).get("Tag") or []
        names = sorted(
            {
                t["name"]
                for t in tags
                if isinstance(t, dict) and isinstance(t.get("name"), str) and not t.get("local")
            }
        )
        bind.execute(events.update().where(events.c.id == event_id).values(tags=json.dumps(names)))

    op.create_table(
        "element_withdrawals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("element_uuid", sa.String(length=36), nullable=False),
        sa.Column("recipient_uuid", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("recorded_at", hub.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_element_withdrawals_event_recipient",
        "element_withdrawals",
        ["event_id", "recipient_uuid", "element_uuid"],
        unique=True,
    )
    op.create_index(
        op.f("ix_element_withdrawals_element_uuid"), "element_withdrawals", ["element_uuid"]
    )

    with op.batch_alter_table("stix_objects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("element_uuid", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_stix_objects_element_uuid"), ["element_uuid"])
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE stix_objects SET element_uuid = split_part(stix_id, '--', 2) "
            "WHERE length(split_part(stix_id, '--', 2)) = 36"
        )
    else:
        op.execute(
            "UPDATE stix_objects SET element_uuid = substr(stix_id, instr(stix_id, '--') + 2) "
            "WHERE length(substr(stix_id, instr(stix_id, '--') + 2)) = 36"
        )


def downgrade() -> None:
    with op.batch_alter_table("stix_objects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stix_objects_element_uuid"))
        batch_op.drop_column("element_uuid")
    op.drop_index(op.f("ix_element_withdrawals_element_uuid"), table_name="element_withdrawals")
    op.drop_index("ix_element_withdrawals_event_recipient", table_name="element_withdrawals")
    op.drop_table("element_withdrawals")
    for table in ("attributes", "event_objects"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("changed_ts")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("meta_timestamp")
        batch_op.drop_column("narrowed")
        batch_op.drop_column("profile")
