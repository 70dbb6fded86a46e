"""The shape of the STIX objects the store keeps: timestamps as the hub writes them, and how
an object loses references to objects a recipient may not see (``prune_references``), shared
by the projection (``hub.intel.projection``), the release path and TAXII."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson

import tlp
from hub.errors import BadRequest

_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:\d{2})$"
)


def parse_timestamp(value: str, *, field: str) -> datetime:
    """An RFC 3339 timestamp (any sub-second precision, kept to microseconds) as UTC."""
    m = _TIMESTAMP.match(value.strip())
    if m is None:
        raise BadRequest(f"{field}: {value!r} is not an RFC 3339 timestamp")
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    offset = "+00:00" if zone in ("Z", "z") else zone
    try:
        stamp = datetime.fromisoformat(
            f"{year}-{month}-{day}T{hour}:{minute}:{second}.{micro:06d}{offset}"
        )
    except ValueError:
        raise BadRequest(f"{field}: {value!r} is not a valid timestamp") from None
    return stamp.astimezone(UTC)


def timestamp(when: datetime) -> str:
    """The form the server writes: ``2026-11-23T19:30:00.123456Z``."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}Z"


def normalise_version(value: str) -> str:
    return timestamp(parse_timestamp(value, field="version"))


CONTAINERS = frozenset({"report", "grouping", "note", "opinion"})
PRUNABLE = frozenset(
    {"created_by_ref", "object_marking_refs", "where_sighted_refs", "observed_data_refs"}
)
REFERENCE_WITHHELD = "reference-withheld"


def prune_references(doc: bytes, gone: set[str]) -> tuple[bytes | None, str]:
    """The object without its references to ``gone``; None when it cannot stand without them."""
    obj = orjson.loads(doc)
    container = obj.get("type") in CONTAINERS
    for key in list(obj):
        value = obj[key]
        if key.endswith("_ref") and isinstance(value, str) and value in gone:
            if key not in PRUNABLE:
                return None, REFERENCE_WITHHELD
            del obj[key]
        elif key.endswith("_refs") and isinstance(value, list):
            kept = [v for v in value if v not in gone]
            if len(kept) == len(value):
                continue
            if key not in PRUNABLE and not (container and key == "object_refs"):
                return None, REFERENCE_WITHHELD
            if kept:
                obj[key] = kept
            elif key == "object_refs":
                return None, tlp.Reason.NOTHING_LEFT.value  # a container left empty
            else:
                del obj[key]
    return orjson.dumps(obj), ""
