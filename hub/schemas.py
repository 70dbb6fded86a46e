"""Shared schema base and the list-page shape every REST list uses."""

from __future__ import annotations

import base64
from typing import Generic, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict

from hub.errors import InvalidField

T = TypeVar("T")


class Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(position: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_cursor(cursor: str, *, keys: tuple[str, ...]) -> dict[str, object]:
    """Decode an opaque cursor made by encode_cursor; anything else is a 422 on ``cursor``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as err:
        raise InvalidField("cursor is not one this API handed out", field="cursor") from err
    if not isinstance(position, dict) or set(position) != set(keys):
        raise InvalidField("cursor is not one this API handed out", field="cursor")
    for value in position.values():  # cursors hold text and 64-bit ids, nothing else
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise InvalidField("cursor is not one this API handed out", field="cursor")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise InvalidField("cursor is not one this API handed out", field="cursor")
    return position


def decode_id_cursor(cursor: str | None) -> int | None:
    """The row id in a cursor made by ``encode_cursor({"id": …})``; None for the first page."""
    if not cursor:
        return None
    value = decode_cursor(cursor, keys=("id",))["id"]
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidField("cursor is not one this API handed out", field="cursor")
    return value
