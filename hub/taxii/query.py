"""TAXII 2.1 filtering (§3.4): ``added_after``, ``match[...]``, ``limit``, and the ``next`` cursor.

``next`` is opaque, signed and stateless (reference: tlp-stix-taxii §5.3): the keyset position
(``date_added``, row id), bound to the query it continues and to the caller, under an HMAC of
the hub secret. Any worker can continue any page; a cursor that was altered or that belongs to
another query or caller is a 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

import orjson

from hub.errors import BadRequest
from hub.intel.stix_shape import normalise_version, parse_timestamp

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
VERSION_KEYWORDS = ("last", "first", "all")


def _split(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))


@dataclass(frozen=True, slots=True)
class Filters:
    """One request's filters; ``version`` is last, first, all, or ``at`` (``versions`` given)."""

    added_after: datetime | None = None
    ids: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    version: str = "last"
    versions: tuple[str, ...] = ()
    spec_versions: tuple[str, ...] = ()

    def fingerprint(self, scope: str) -> str:
        """What a ``next`` cursor is bound to: the endpoint, collection and every filter."""
        doc = [
            scope,
            self.added_after.isoformat() if self.added_after else None,
            self.ids,
            self.types,
            self.version,
            self.versions,
            self.spec_versions,
        ]
        return hashlib.sha256(orjson.dumps(doc)).hexdigest()[:24]


def parse_filters(
    *,
    added_after: str | None = None,
    ids: str | None = None,
    types: str | None = None,
    version: str | None = None,
    spec_version: str | None = None,
    default_version: str = "last",
) -> Filters:
    after = parse_timestamp(added_after, field="added_after") if added_after else None
    mode, versions = default_version, ()
    wanted = _split(version)
    if wanted:
        keywords = [v for v in wanted if v in VERSION_KEYWORDS]
        stamps = tuple(sorted({normalise_version(v) for v in wanted if v not in VERSION_KEYWORDS}))
        if "all" in keywords:
            mode, versions = "all", ()
        elif stamps and keywords:
            raise BadRequest("match[version]: give keywords (last, first, all) or timestamps")
        elif stamps:
            mode, versions = "at", stamps
        elif len(keywords) == 1:
            mode = keywords[0]
        else:
            mode = "all"  # first,last: both ends are wanted; the query keeps every version
    return Filters(
        added_after=after,
        ids=_split(ids),
        types=_split(types),
        version=mode,
        versions=versions,
        spec_versions=_split(spec_version),
    )


def page_size(limit: int | None) -> int:
    """The requested size capped at MAX_LIMIT (the spec lets the server return fewer)."""
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise BadRequest("limit must be a positive integer")
    return min(limit, MAX_LIMIT)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), b"taxii-next\x00" + payload, hashlib.sha256).digest()[:18]


def sign_cursor(secret: str, *, fingerprint: str, caller: str, after: tuple[datetime, int]) -> str:
    payload = orjson.dumps(
        {"f": fingerprint, "c": caller, "t": after[0].isoformat(), "i": after[1]}
    )
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def open_cursor(secret: str, token: str, *, fingerprint: str, caller: str) -> tuple[datetime, int]:
    """The position a ``next`` token continues from (400 unless this server signed it for
    this caller and this query)."""
    try:
        head, _, mac = token.partition(".")
        payload = _unb64(head)
        good = hmac.compare_digest(_unb64(mac), _mac(secret, payload))
    except (ValueError, TypeError):
        good = False
    if not good:
        raise BadRequest("next: not a token this server handed out", field="next")
    position = orjson.loads(payload)
    if position.get("c") != caller or position.get("f") != fingerprint:
        raise BadRequest(
            "next: this token continues another query; repeat the query it came with",
            field="next",
        )
    return datetime.fromisoformat(position["t"]), int(position["i"])
