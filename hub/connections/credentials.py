"""Connection credentials at rest: Fernet (AES-128-CBC + HMAC) under a key derived from
HUB_SECRET_KEY with HKDF, so a database dump alone does not give away partners' keys."""

from __future__ import annotations

import base64
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import HubError

_INFO = b"cwn-hub connection credentials v1"


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(credentials: dict[str, Any], *, secret: str) -> bytes:
    return _fernet(secret).encrypt(orjson.dumps(credentials))


def unseal(token: bytes, *, secret: str) -> dict[str, Any]:
    try:
        return orjson.loads(_fernet(secret).decrypt(token))  # type: ignore[no-any-return]
    except InvalidToken:
        raise HubError(
            "the connection's credentials cannot be decrypted: HUB_SECRET_KEY changed since "
            "they were stored; set them again"
        ) from None
