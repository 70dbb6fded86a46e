"""What the audit routes answer: an entry's exact bytes, inclusion and consistency proofs,
checkpoints. ``org`` is the caller's organisation when it may see only entries about itself
(partners and their machines: entries whose recipient it is), None when it sees all
(operators, auditors). An entry the caller may not see is answered as a missing one.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.audit import addressing, tree
from hub.errors import InvalidField, NotFound
from hub.models import AuditCheckpoint, AuditEntry


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    leaf: bytes

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "leaf": _b64(self.leaf)}


def _positive(value: int, field: str) -> None:
    if value < 1:
        raise InvalidField(f"{field} must be at least 1", field=field)


def entry(session: Session, *, seq: int, org: str | None, exercise: str | None = None) -> Entry:
    """The entry's exact leaf bytes (its canonical body), if the caller may see it: a
    partner sees its organisation's entries of its own scope (``exercise``: an exercise
    key's, None: real traffic's), so neither reaches the other through the audit log."""
    _positive(seq, "seq")
    row = session.execute(
        select(AuditEntry.recipient_uuid, AuditEntry.actor, tree.BODY_TEXT).where(
            AuditEntry.seq == seq
        )
    ).first()
    if row is None:
        raise NotFound(f"no audit entry {seq}")
    leaf = tree.entry_bytes(row[2])
    if org is not None and (
        row.recipient_uuid != org
        or exercise_of(row.actor) != exercise
        or not _speaks_only_of_deliveries(leaf)
    ):
        raise NotFound(f"no audit entry {seq}")
    return Entry(seq, leaf)


def _speaks_only_of_deliveries(leaf: bytes) -> bool:
    """A partner reads an entry about itself only if it tells nothing of what was withheld
    from it (``hub.audit.addressing``): else it is the operators' and auditors'."""
    try:
        body = orjson.loads(leaf)
    except orjson.JSONDecodeError:
        return False
    details = body.get("details") if isinstance(body, dict) else None
    if not isinstance(details, dict):
        return False
    return addressing.readable_by_recipient(body.get("decision"), details)


_EXERCISE_ACTOR = re.compile(r", exercise ([0-9a-f-]{36})\)$")


def exercise_of(actor: str | None) -> str | None:
    """The exercise an entry was made for: its actor is an exercise key (``Principal.actor``
    ends ``, exercise <uuid>)``; a partner's name cannot, the role follows it)."""
    found = _EXERCISE_ACTOR.search(actor or "")
    return found.group(1) if found else None


def _proof_size(session: Session, size: int | None) -> tuple[int, int]:
    """(the size asked for, or the latest checkpoint's; the tree's size)."""
    built = tree.tree_size(session)
    if size is None:
        latest = tree.latest_checkpoint(session)
        size = latest.tree_size if latest is not None else built
    else:
        _positive(size, "size")
    if size > built:
        raise InvalidField(
            f"size {size} is beyond the tree, which holds {built} entries", field="size"
        )
    return size, built


def inclusion(
    session: Session, *, seq: int, size: int | None, org: str | None, exercise: str | None = None
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of entry ``seq`` in the tree of ``size`` entries (default:
    the latest checkpoint's size)."""
    _positive(seq, "seq")
    size, _ = _proof_size(session, size)
    if seq > size:
        raise InvalidField(
            f"entry {seq} is not in the tree of {size} entries"
            + ("" if size else " (nothing is in a tree yet)"),
            field="seq",
        )
    entry(session, seq=seq, org=org, exercise=exercise)  # visible to the caller, else 404
    hashes = tree.inclusion_proof(session, seq=seq, size=size)
    return {"leaf_index": seq - 1, "tree_size": size, "hashes": [_b64(h) for h in hashes]}


def consistency(session: Session, *, old: int, new: int) -> dict[str, Any]:
    """RFC 9162 consistency proof from the tree of ``old`` entries to that of ``new``."""
    _positive(old, "from")
    _positive(new, "to")
    if old > new:
        raise InvalidField(f"from ({old}) must not be larger than to ({new})", field="from")
    built = tree.tree_size(session)
    if new > built:
        raise InvalidField(f"to {new} is beyond the tree, which holds {built} entries", field="to")
    hashes = tree.consistency_proof(session, old=old, new=new)
    return {"from": old, "to": new, "hashes": [_b64(h) for h in hashes]}


def checkpoint(session: Session, *, size: int | None) -> AuditCheckpoint:
    """The latest signed checkpoint, or the one of exactly ``size`` entries."""
    if size is None:
        found = tree.latest_checkpoint(session)
        if found is None:
            raise NotFound("no checkpoint has been signed yet")
        return found
    _positive(size, "size")
    found = tree.checkpoint_at(session, size)
    if found is None:
        raise NotFound(f"no checkpoint of size {size}")
    return found
