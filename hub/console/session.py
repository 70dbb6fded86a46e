"""Console sign-in: a key is checked once, then a signed session cookie names it.

The cookie holds the key's uuid, an expiry and a random nonce, signed with HMAC-SHA256
under a key derived from HUB_SECRET_KEY; it never holds the key itself. Every request looks
the key up again (``hub.auth.service.principal_of_key``), so a revoked or expired key, or a
suspended organisation, ends its sessions at once. Forms carry a CSRF token derived from the
session (synchronizer token, bound to the cookie), and the cookie is HttpOnly,
SameSite=Strict and, behind HTTPS, Secure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import orjson

COOKIE = "hub_console"
SESSION_SECONDS = 8 * 3600  # a working day; signing in again after it is cheap


@dataclass(frozen=True, slots=True)
class Session:
    key_uuid: str
    expires: int
    token: str  # the cookie value, to derive the CSRF token from


def _signer(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"hub console session v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(*, key_uuid: str, secret: str, now: float | None = None) -> str:
    """A new cookie value for the key."""
    expires = int((now or time.time()) + SESSION_SECONDS)
    body = _b64(orjson.dumps({"k": key_uuid, "e": expires, "n": secrets.token_hex(8)}))
    mac = hmac.new(_signer(secret), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def read(value: str | None, *, secret: str, now: float | None = None) -> Session | None:
    """The session a cookie value stands for, or None (absent, forged, expired)."""
    if not value or value.count(".") != 1 or len(value) > 512:
        return None
    body, mac = value.split(".")
    expected = hmac.new(_signer(secret), body.encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(mac), expected):
            return None
        data = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("k"), str):
        return None
    expires = data.get("e")
    if not isinstance(expires, int) or expires <= (now or time.time()):
        return None
    return Session(key_uuid=data["k"], expires=expires, token=value)


def csrf_token(session: Session, *, secret: str) -> str:
    """The token every form of this session carries."""
    return hmac.new(_signer(secret), b"csrf|" + session.token.encode(), hashlib.sha256).hexdigest()


def csrf_ok(session: Session, given: str | None, *, secret: str) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(session, secret=secret), given or "")


def sign(text: str, *, secret: str) -> str:
    """A short signature for a message the console shows after a redirect."""
    return hmac.new(_signer(secret), b"msg|" + text.encode(), hashlib.sha256).hexdigest()[:32]


def signed(text: str, sig: str, *, secret: str) -> bool:
    return hmac.compare_digest(sign(text, secret=secret), sig)
