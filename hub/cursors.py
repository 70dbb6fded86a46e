"""Paging cursors: opaque, authenticated, bound to the caller and the query they continue.

A cursor carries a keyset position (row ids, timestamps) that must not be read by the caller
(row ids count what it does not see, DESIGN.md §3) nor forged (a made-up position would skip
the release path's paging). It is encrypted and authenticated with Fernet (AES-CBC + HMAC,
from ``cryptography``) under a key derived from HUB_SECRET_KEY, and names the caller and a
fingerprint of the query, so it continues only the query it came from, for whom it was made.
Any worker can continue any page: nothing is kept on the server.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import BadRequest, InvalidField

_INFO = b"cwn-hub paging cursors v1"
MAX_LENGTH = 512


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def fingerprint(*parts: Any) -> str:
    """A short digest of a query's parameters (what a cursor is bound to)."""
    return hashlib.sha256(orjson.dumps(parts, default=str)).hexdigest()[:16]


def seal(secret: str, *, caller: str, query: str, position: list[Any]) -> str:
    """A cursor for ``position`` (JSON-serialisable) in ``query`` for ``caller``."""
    payload = orjson.dumps([caller, query, position])
    return _fernet(secret).encrypt(payload).decode().rstrip("=")


def open_(
    secret: str,
    token: str,
    *,
    caller: str,
    query: str,
    field: str = "cursor",
    error: type[InvalidField] | type[BadRequest] = InvalidField,
) -> list[Any]:
    """The position a cursor continues from; ``error`` (a 4xx) naming ``field`` unless this
    server made it for this caller and this query."""
    if not token or len(token) > MAX_LENGTH or not token.isascii():
        raise error(f"{field}: not one this API handed out", field=field)
    try:
        payload = _fernet(secret).decrypt(token + "=" * (-len(token) % 4))
        who, what, position = orjson.loads(payload)
    except (InvalidToken, ValueError, TypeError, orjson.JSONDecodeError):
        raise error(f"{field}: not one this API handed out", field=field) from None
    if who != caller or what != query or not isinstance(position, list):
        raise error(
            f"{field}: this cursor continues another query; repeat the query it came with",
            field=field,
        )
    return position
