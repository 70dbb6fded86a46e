"""The Merkle tree over the audit log and its signed checkpoints, in the database.

Appending an entry stays one statement (``hub.audit.service.append``); the tree is built
after it, in batches, by the worker (``extend``), which stores every complete subtree it
closes (``audit_tree_nodes``: about two rows per entry). The tree's size is how many leaves
are stored. Any hash a proof or a root needs is a run of complete subtrees, so a proof is
one query of at most two nodes per level (``hub.audit.merkle``). Entries become visible in
sequence order (appenders are serialised on the audit head until they commit), so building
"everything after the tree's size" never skips one.

Checkpoints (``issue_checkpoint``) sign the tree's current root as a C2SP checkpoint, at
most one per ``HUB_CHECKPOINT_INTERVAL_SECONDS`` while the log grows; before signing, the
previous checkpoint's root is recomputed from the stored nodes, so the hub never signs a
tree that is not an extension of the one it signed before (C2SP: never sign inconsistent
checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Text, and_, cast, func, or_, select, text
from sqlalchemy.orm import Session

from hub.audit import merkle
from hub.audit.chain import canonical
from hub.audit.note import Checkpoint, NoteError, Signer, Verifier, verify_checkpoint
from hub.audit.service import Verification
from hub.models import AuditCheckpoint, AuditEntry, AuditTreeNode
from hub.models.base import utcnow
from hub.settings import Settings

BATCH = 2000  # SQLite holds its write lock only while one batch's nodes are inserted
# pg_try_advisory_xact_lock key: one tree builder at a time ("hubtree" in ASCII).
_BUILDER_LOCK = 0x6875_6274_7265_65


class TreeError(RuntimeError):
    """The stored tree cannot answer (nodes missing, or inconsistent with a checkpoint)."""


def entry_bytes(body: dict[str, Any] | str) -> bytes:
    """The exact bytes a leaf hashes: the entry's canonical body (as the chain hashes it),
    from the body or its stored JSON text (``BODY_TEXT``)."""
    return canonical(orjson.loads(body) if isinstance(body, str) else body)


# The stored body as JSON text: parsed with orjson (the JSON type's json.loads is most of
# the tree builder's time), on PostgreSQL from JSONB's text form.
BODY_TEXT = cast(AuditEntry.body, Text).label("body_text")


def tree_size(session: Session) -> int:
    """How many entries the stored tree holds (its leaves are entries 1..size)."""
    last = session.scalar(select(func.max(AuditTreeNode.idx)).where(AuditTreeNode.level == 0))
    return int(last) + 1 if last is not None else 0


def read_nodes(session: Session, nodes: Iterable[merkle.Node]) -> dict[merkle.Node, bytes]:
    """The stored hashes of ``nodes``, in one query."""
    wanted = sorted(set(nodes))
    if not wanted:
        return {}
    # An OR of (level, idx) pairs, written out for the driver: SQLite scans the table for a
    # row-value IN, and building the expression with SQLAlchemy cost more than the query.
    conn = session.connection()
    mark = _mark(conn)
    where = " OR ".join([f"(level = {mark} AND idx = {mark})"] * len(wanted))
    params = tuple(value for pair in wanted for value in pair)
    rows = conn.exec_driver_sql(
        f"SELECT level, idx, hash FROM audit_tree_nodes WHERE {where}", params
    )
    found = {(level, idx): bytes(digest) for level, idx, digest in rows}
    if len(found) != len(wanted):
        missing = sorted(set(wanted) - found.keys())[:3]
        raise TreeError(f"tree nodes missing (level, index): {missing}")
    return found


def _mark(conn: Any) -> str:
    """The driver's parameter placeholder (sqlite3: qmark; psycopg: format)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _hashes(session: Session, ranges: list[merkle.Range]) -> list[bytes]:
    stored = read_nodes(session, merkle.nodes_of(ranges))
    return [merkle.range_hash(lo, hi, stored) for lo, hi in ranges]


def root(session: Session, size: int) -> bytes:
    """The root hash of the tree of the first ``size`` entries (size ≤ the tree's size)."""
    return _hashes(session, [(0, size)])[0] if size else merkle.EMPTY_ROOT


def inclusion_proof(session: Session, *, seq: int, size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of entry ``seq`` (leaf ``seq - 1``) in the tree of ``size``."""
    return _hashes(session, merkle.inclusion_ranges(seq - 1, size))


def consistency_proof(session: Session, *, old: int, new: int) -> list[bytes]:
    """RFC 9162 consistency proof from the tree of ``old`` entries to that of ``new``."""
    return _hashes(session, merkle.consistency_ranges(old, new))


def leaf_hash(session: Session, seq: int) -> bytes | None:
    found = session.scalar(
        select(AuditTreeNode.hash).where(AuditTreeNode.level == 0, AuditTreeNode.idx == seq - 1)
    )
    return bytes(found) if found is not None else None


def extend(session: Session, *, batch: int = BATCH) -> int:
    """Add the next entries (at most ``batch``) to the tree; returns how many were added.
    One builder at a time on PostgreSQL (an advisory lock: a second one does nothing). On
    SQLite the worker reads first and takes the write lock only to insert (``reads_first``),
    so appenders wait for the insert alone; two builders store the same nodes at most twice
    (the second insert is skipped)."""
    if session.get_bind().dialect.name == "postgresql":
        got = session.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _BUILDER_LOCK})
        if not got:
            return 0
    size = tree_size(session)
    frontier = merkle.Frontier.of(size, read_nodes(session, merkle.Frontier.needed(size)))
    conn = session.connection()
    rows = conn.execute(
        select(AuditEntry.seq, BODY_TEXT)
        .where(AuditEntry.seq > size)
        .order_by(AuditEntry.seq)
        .limit(batch)
    )
    closed: list[tuple[int, int, bytes]] = []
    for seq, body in rows:
        if seq != frontier.size + 1:
            break  # a gap: not visible yet (or removed: `hub audit verify` says so)
        closed += frontier.append(merkle.leaf_hash(entry_bytes(body)))
    if closed:
        # The driver's executemany: building SQLAlchemy parameters per row cost more than
        # reading and hashing the entries.
        mark = _mark(conn)
        # A node is a function of the entries: one another builder stored already is the
        # same, so a conflict is skipped (SQLite builders read before they lock; see the job).
        conn.exec_driver_sql(
            f"INSERT INTO audit_tree_nodes (level, idx, hash) VALUES ({mark}, {mark}, {mark}) "
            "ON CONFLICT (level, idx) DO NOTHING",
            closed,
        )
    return frontier.size - size


# --- checkpoints ------------------------------------------------------------------------------


def load_signer(path: Path) -> Signer:
    try:
        return Signer.parse(path.read_text())
    except OSError as err:
        raise NoteError(f"cannot read the audit signing key {path}: {err.strerror}") from err


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc()).limit(1)
    ).first()


def checkpoint_at(session: Session, size: int) -> AuditCheckpoint | None:
    return session.get(AuditCheckpoint, size)


def issue_checkpoint(
    session: Session, signer: Signer, *, interval: timedelta, now: datetime | None = None
) -> AuditCheckpoint | None:
    """Sign the tree as it is, if it grew since the last checkpoint and that one is at least
    ``interval`` old (or there is none); returns the new checkpoint, else None."""
    now = now or utcnow()
    size = tree_size(session)
    last = latest_checkpoint(session)
    if size == 0 or (last is not None and last.tree_size >= size):
        return None
    if last is not None and now - last.created_at < interval:
        return None
    if last is not None:
        proof = consistency_proof(session, old=last.tree_size, new=size)
        old_root, new_root = root(session, last.tree_size), root(session, size)
        if old_root != bytes(last.root_hash) or not merkle.verify_consistency(
            last.tree_size, size, proof, bytes(last.root_hash), new_root
        ):
            raise TreeError(
                f"the stored tree no longer matches checkpoint {last.tree_size}; "
                "refusing to sign (run `hub audit verify`)"
            )
    else:
        new_root = root(session, size)
    body = Checkpoint(signer.name, size, new_root).text()
    checkpoint = AuditCheckpoint(
        tree_size=size,
        root_hash=new_root,
        note=signer.sign(body),
        key_name=signer.name,
        created_at=now,
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


# --- verification -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeVerification(Verification):
    tree_size: int = 0
    checkpoints: int = 0
    pending: int = 0  # entries not in the tree yet


def verify(
    session: Session, *, verifier: Verifier | None = None, batch: int = BATCH
) -> TreeVerification:
    """Rebuild the tree from the entries and compare every stored node and every checkpoint
    (its root, its note, and its signature when ``verifier`` is given)."""
    size = tree_size(session)
    checkpoints = list(
        session.execute(
            select(
                AuditCheckpoint.tree_size, AuditCheckpoint.root_hash, AuditCheckpoint.note
            ).order_by(AuditCheckpoint.tree_size)
        )
    )

    def bad(seq: int | None, problem: str, checked: int) -> TreeVerification:
        return TreeVerification(False, checked, seq, problem, size, len(checkpoints))

    per_level = dict(
        session.execute(
            select(AuditTreeNode.level, func.count()).group_by(AuditTreeNode.level)
        ).all()
    )
    for level, count in sorted(per_level.items()):
        if count != size >> level:
            return bad(None, f"tree level {level} holds {count} nodes, expected {size >> level}", 0)
    if size and max(per_level) != size.bit_length() - 1:
        return bad(None, "the tree holds more levels than its size allows", 0)
    for cp_size, cp_root, note in checkpoints:
        problem = _check_note(note, cp_size, bytes(cp_root), verifier)
        if problem:
            return bad(None, f"checkpoint {cp_size}: {problem}", 0)
        if cp_size > size:
            return bad(cp_size, f"checkpoint {cp_size} is beyond the tree ({size} entries)", 0)

    frontier = merkle.Frontier()
    pending_cps = [(int(s), bytes(r)) for s, r, _ in checkpoints]
    mismatch: int | None = None
    for chunk in _entry_batches(session, upto=size, batch=batch):
        expected: dict[merkle.Node, bytes] = {}
        for seq, body in chunk:
            if seq != frontier.size + 1:
                return bad(frontier.size + 1, "entry missing from the log", frontier.size)
            for level, idx, digest in frontier.append(merkle.leaf_hash(entry_bytes(body))):
                expected[(level, idx)] = digest
            while pending_cps and pending_cps[0][0] == frontier.size:
                cp_size, cp_root = pending_cps.pop(0)
                if frontier.root() != cp_root and mismatch is None:
                    mismatch = cp_size
        stored = _stored_nodes(session, expected)
        for (level, idx), digest in expected.items():
            if stored.get((level, idx)) != digest:
                first = (idx << level) + 1
                what = "leaf hash" if level == 0 else f"tree node ({level}, {idx})"
                return bad(
                    first,
                    f"the stored {what} does not match the entries it covers",
                    first - 1,
                )
        if mismatch is not None:  # the stored tree fits the entries, the signed root does not
            return bad(
                None,
                f"checkpoint {mismatch} does not match the log's first {mismatch} entries: "
                "an entry was changed, removed, inserted or reordered since it was signed",
                frontier.size,
            )
    if frontier.size != size:
        return bad(frontier.size + 1, "entry missing from the log", frontier.size)
    pending = int(session.scalar(select(func.count()).where(AuditEntry.seq > size)) or 0)
    return TreeVerification(True, size, None, None, size, len(checkpoints), pending)


def _check_note(note: str, size: int, root_hash: bytes, verifier: Verifier | None) -> str | None:
    try:
        if verifier is not None:
            checkpoint = verify_checkpoint(note, verifier)
        else:
            checkpoint = Checkpoint.parse(note.rpartition("\n\n")[0] + "\n")
    except NoteError as err:
        return str(err)
    if (checkpoint.size, checkpoint.root) != (size, root_hash):
        return "its signed note names another size or root than its row"
    return None


def _entry_batches(session: Session, *, upto: int, batch: int) -> Iterator[list[tuple[int, str]]]:
    after = 0
    while after < upto:
        rows = [
            (int(seq), body)
            for seq, body in session.execute(
                select(AuditEntry.seq, BODY_TEXT)
                .where(AuditEntry.seq > after, AuditEntry.seq <= upto)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
        ]
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _stored_nodes(session: Session, expected: dict[merkle.Node, bytes]) -> dict[merkle.Node, bytes]:
    """The stored nodes of the levels and index ranges ``expected`` spans (one query)."""
    spans: dict[int, tuple[int, int]] = {}
    for level, idx in expected:
        lo, hi = spans.get(level, (idx, idx))
        spans[level] = (min(lo, idx), max(hi, idx))
    rows = session.execute(
        select(AuditTreeNode.level, AuditTreeNode.idx, AuditTreeNode.hash).where(
            or_(
                *(
                    and_(AuditTreeNode.level == lv, AuditTreeNode.idx.between(lo, hi))
                    for lv, (lo, hi) in spans.items()
                )
            )
        )
    )
    return {(level, idx): bytes(digest) for level, idx, digest in rows}


def configured_verifier(settings: Settings) -> Verifier | None:
    """The verifier key the hub publishes: HUB_AUDIT_VERIFIER_KEY, else the signing key's."""
    if settings.audit_verifier_key:
        return Verifier.parse(settings.audit_verifier_key)
    if settings.audit_signing_key_file is not None:
        return load_signer(settings.audit_signing_key_file).verifier
    return None
