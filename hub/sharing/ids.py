"""Numeric ids as one organisation sees them: a keyed permutation of the hub's row ids.

MISP clients address events, attributes, objects and sightings by numeric id, but the hub's
own row ids are global and sequential: handed out as they are, the gaps between the ids a
partner receives count what it does not receive (DESIGN.md §3, "What leaves the hub"). Each
organisation therefore gets its own bijection of the 32-bit range, keyed by the hub secret
and the organisation, different per kind of element: the ids one partner sees say nothing
about rows it does not see, and mean nothing to another partner (MISP ids are local to an
instance anyway, reference/misp-sync.md §5.3).

The permutation is a balanced Feistel network on two 16-bit halves whose round functions are
random tables drawn from SHAKE-256 of (secret, organisation): a few table lookups per id, so
numbering the 10^5 attributes of a large event stays cheap. Public ids run from 1 to 2^32.
"""

from __future__ import annotations

import hashlib
from array import array
from functools import lru_cache

_ROUNDS = 6
_HALF = 0xFFFF
_SPACE = 1 << 32
_MAX_ROW_ID = (1 << 31) - 1  # row ids are 32-bit signed integers in both databases
KINDS = ("event", "attribute", "object", "sighting", "report", "proposal")


class IdScope:
    """The public ids of one organisation (see the module doc)."""

    __slots__ = ("_tables", "_whiten")

    def __init__(self, secret: str, org_uuid: str) -> None:
        seed = hashlib.sha256(b"cwn-hub/ids/v1\x00" + secret.encode() + b"\x00" + org_uuid.encode())
        stream = hashlib.shake_256(seed.digest()).digest(_ROUNDS * 65536 * 2 + 4 * len(KINDS))
        self._tables = tuple(
            array("H", stream[i * 131072 : (i + 1) * 131072]) for i in range(_ROUNDS)
        )
        tail = stream[_ROUNDS * 131072 :]
        self._whiten = {
            kind: int.from_bytes(tail[4 * i : 4 * i + 4], "big") for i, kind in enumerate(KINDS)
        }

    def public(self, kind: str, row_id: int) -> int:
        """The id this organisation sees for row ``row_id`` of ``kind``."""
        x = row_id ^ self._whiten[kind]
        left, right = x >> 16, x & _HALF
        for table in self._tables:
            left, right = right, left ^ table[right]
        return ((left << 16) | right) + 1

    def row(self, kind: str, public_id: int) -> int | None:
        """The row id behind a public id, or None when it cannot be one this scope handed out."""
        if not 1 <= public_id <= _SPACE:
            return None
        x = public_id - 1
        left, right = x >> 16, x & _HALF
        for table in reversed(self._tables):
            left, right = right ^ table[left], left
        row_id = ((left << 16) | right) ^ self._whiten[kind]
        return row_id if 1 <= row_id <= _MAX_ROW_ID else None

    def public_str(self, kind: str, row_id: int) -> str:
        return str(self.public(kind, row_id))


@lru_cache(maxsize=64)
def scope_for(secret: str, org_uuid: str) -> IdScope:
    """The id scope of an organisation (tables are built once per worker and organisation)."""
    return IdScope(secret, org_uuid)


def parse_public(text: str) -> int | None:
    """A public id as MISP clients send it (ASCII digits only), or None."""
    text = text.strip()
    if not text or len(text) > 12 or not text.isascii() or not text.isdigit():
        return None
    return int(text)
