"""audit head (one-statement appends) and the releases index derived from audit entries

Revision ID: 5d1c0a7e9b21
Revises: c6c8bdd42164
Create Date: 2026-11-23 19:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1c0a7e9b21"
down_revision: str | None = "c6c8bdd42164"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    # Start from the log as it stands (empty on a new database).
    op.execute(f"""
        INSERT INTO audit_head (id, seq, prev_hash, entry_hash)
        SELECT 1, COALESCE(MAX(seq), 0), '{GENESIS}',
               COALESCE((SELECT entry_hash FROM audit_entries ORDER BY seq DESC LIMIT 1),
                        '{GENESIS}')
        FROM audit_entries
    """)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_entries_index_releases() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO releases (audit_seq, released_at, recipient_uuid, channel, event_uuid,
                                      event_version, allowed, reason, tlp, removed)
                SELECT NEW.seq, NEW.recorded_at, NEW.recipient_uuid, NEW.channel, r->>0,
                       (r->>1)::integer, (r->>2)::boolean, r->>3, r->>4,
                       COALESCE((r->>5)::integer, 0)
                FROM jsonb_array_elements(COALESCE(NEW.body->'details'->'releases', '[]'::jsonb)) AS r;
                RETURN NULL;
            END $$
        """)
        op.execute("""
            CREATE TRIGGER audit_entries_releases AFTER INSERT ON audit_entries
            FOR EACH ROW EXECUTE FUNCTION audit_entries_index_releases()
        """)
    else:
        op.execute("""
            CREATE TRIGGER audit_entries_move_head AFTER INSERT ON audit_entries
            BEGIN
                UPDATE audit_head SET seq = NEW.seq, prev_hash = NEW.prev_hash,
                                      entry_hash = NEW.entry_hash
                WHERE id = 1;
            END
        """)
        op.execute("""
            CREATE TRIGGER audit_entries_releases AFTER INSERT ON audit_entries
            BEGIN
                INSERT INTO releases (audit_seq, released_at, recipient_uuid, channel, event_uuid,
                                      event_version, allowed, reason, tlp, removed)
                SELECT NEW.seq, NEW.recorded_at, NEW.recipient_uuid, NEW.channel,
                       json_extract(r.value, '$[0]'), json_extract(r.value, '$[1]'),
                       json_extract(r.value, '$[2]'), json_extract(r.value, '$[3]'),
                       json_extract(r.value, '$[4]'), COALESCE(json_extract(r.value, '$[5]'), 0)
                FROM json_each(NEW.body, '$.details.releases') AS r;
            END
        """)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_entries_releases ON audit_entries")
        op.execute("DROP FUNCTION audit_entries_index_releases()")
    else:
        op.execute("DROP TRIGGER audit_entries_releases")
        op.execute("DROP TRIGGER audit_entries_move_head")
    op.drop_table("audit_head")
