"""Key material: generation, the keyed hash, and the accepted header forms."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

KEY_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"[A-Za-z0-9]{40}")


def generate_key() -> str:
    """A fresh 40-character key from [A-Za-z0-9] (the only form MISP accepts), ~238 bits."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(KEY_LENGTH))


def is_well_formed(key: str) -> bool:
    return _KEY_RE.fullmatch(key) is not None


def hash_key(key: str, *, secret: str) -> str:
    """HMAC-SHA256 under the hub secret.

    Keys are long random strings, so a fast keyed hash is enough (no password KDF): a
    stolen database without the secret yields nothing to try offline.
    """
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_from_headers(authorization: str | None, misp_auth: str | None) -> str | None:
    """The key from ``Authorization: <key>``, ``Authorization: Bearer <key>`` or ``X-MISP-AUTH``."""
    if authorization:
        value = authorization.strip()
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() == "bearer":
            return rest.strip()
        return value
    if misp_auth:
        return misp_auth.strip()
    return None
