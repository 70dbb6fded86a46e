"""The ``releases`` index: one row per item delivered or refused, derived from audit entries.

A delivery's audit entry lists its items in ``details.releases`` ([event uuid, version,
allowed, reason, tlp, removed]); in an entry its recipient reads, the version is null and
the entry's internal part keeps it (``internal.versions``, one per row:
``hub.audit.addressing.versions_apart``), which the index takes instead. The entry is the
record, the index only makes "what went to whom" and "where did this item go" queryable.
Deriving it inside each delivery's transaction dirtied one random leaf of the event index
per listed item (50 per page), most of a page request's write cost, so it is derived in
batches instead: ``catch_up`` indexes every entry after the last indexed one. The worker runs
it periodically, and **every reader of the index calls it first**, so readers always see
every committed delivery.

Entries become visible in sequence order (appenders are serialised on the audit head until
they commit), so "everything after ``upto_seq``" never skips an entry that commits later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

COLUMNS = (
    "audit_seq, released_at, recipient_uuid, channel, event_uuid, event_version, allowed, "
    "reason, tlp, removed"
)

# One batch: entries (upto, until]; the state row is locked first, so two indexers never
# insert the same rows (PostgreSQL: FOR UPDATE; SQLite: the write lock).
_LOCK = {
    "postgresql": text("SELECT upto_seq FROM release_index_state WHERE id = 1 FOR UPDATE"),
    "sqlite": text("SELECT upto_seq FROM release_index_state WHERE id = 1"),
}
_LAST = text("SELECT MAX(seq) FROM audit_entries WHERE seq > :upto")
_INDEX = {
    "postgresql": text(f"""
        INSERT INTO releases ({COLUMNS})
        SELECT a.seq, a.recorded_at, a.recipient_uuid, a.channel, r.v->>0,
               COALESCE((r.v->>1)::integer, (a.internal->'versions'->>(r.n - 1)::integer)::integer),
               (r.v->>2)::boolean, r.v->>3, r.v->>4,
               COALESCE((r.v->>5)::integer, 0)
        FROM audit_entries AS a,
             jsonb_array_elements(COALESCE(a.body->'details'->'releases', '[]'::jsonb))
                 WITH ORDINALITY AS r(v, n)
        WHERE a.seq > :upto AND a.seq <= :until
        ORDER BY a.seq, r.n
    """),
    "sqlite": text(f"""
        INSERT INTO releases ({COLUMNS})
        SELECT a.seq, a.recorded_at, a.recipient_uuid, a.channel,
               json_extract(r.value, '$[0]'),
               COALESCE(json_extract(r.value, '$[1]'),
                        json_extract(a.internal, '$.versions[' || r.key || ']')),
               json_extract(r.value, '$[2]'), json_extract(r.value, '$[3]'),
               json_extract(r.value, '$[4]'), COALESCE(json_extract(r.value, '$[5]'), 0)
        FROM audit_entries AS a, json_each(a.body, '$.details.releases') AS r
        WHERE a.seq > :upto AND a.seq <= :until
        ORDER BY a.seq, r.key
    """),
}
_ADVANCE = text("UPDATE release_index_state SET upto_seq = :until WHERE id = 1")


def catch_up(conn: Connection | Session) -> int:
    """Index every audit entry not indexed yet; returns how many entries were indexed.
    Runs in the caller's transaction (its write lock on SQLite)."""
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    dialect = bind.dialect.name
    upto = conn.execute(_LOCK[dialect]).scalar()
    if upto is None:
        raise RuntimeError("release_index_state is missing its row; run `hub db upgrade`")
    until = conn.execute(_LAST, {"upto": upto}).scalar()
    if until is None:
        return 0
    params: dict[str, Any] = {"upto": upto, "until": until}
    conn.execute(_INDEX[dialect], params)
    conn.execute(_ADVANCE, params)
    return int(until - upto)
