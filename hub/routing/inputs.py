"""Values the database cannot hold, refused alike on every database before a handler runs.

A NUL character (PostgreSQL cannot store one in text), an integer beyond 64 bits, half a
UTF-16 surrogate pair and JSON nested deeper than ``MAX_JSON_DEPTH`` are answered with a 422
naming where, in the query, the path or any JSON body; and the media types REST speaks.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import orjson
from fastapi import Request

from hub.errors import InvalidField

MAX_JSON_DEPTH = 64  # MISP events and STIX bundles nest ~10 deep; parsers and stores ~255+
INT64 = 2**63


def json_media(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*", "application/json") or media.endswith("+json"):
            return True
    return False


def _nul(where: str | None) -> InvalidField:
    return InvalidField(f"{where or 'request'}: contains a NUL character", field=where)


def check_parameters(request: Request, *, int_query: list[str], int_path: list[str]) -> None:
    """422 naming the parameter for a NUL character (PostgreSQL cannot store one in text)
    or an integer beyond 64 bits, in the query or the path."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise _nul(name.replace("\x00", "") or None)
    for name, value in request.path_params.items():
        if isinstance(value, str) and "\x00" in value:
            raise _nul(name)
    for name in int_query:
        for value in request.query_params.getlist(name):
            _check_int64(name, value)
    for name in int_path:
        if name in request.path_params:
            _check_int64(name, str(request.path_params[name]))


def _check_int64(name: str, value: str) -> None:
    text = value.strip()
    if not text.isascii():
        return  # not a number: validation says so
    try:
        number = int(text)
    except ValueError:
        return
    if not -INT64 <= number < INT64:
        raise InvalidField(f"{name}: {text[:40]} is out of range", field=name)


_DROP_BUT_NESTING = bytes(range(256)).translate(None, b'"[]{}')
_TO_PARENS = bytes.maketrans(b"[]{}", b"()()")
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")
# Digits → "0", what can come before a JSON number (":", ",", "[") → ":", "-" stays, the rest
# " "; whitespace is dropped. A number of 19 digits or more (2^63 has 19) outside a string then
# reads ":" followed by 19 "0" (or ":-"); digit runs inside strings (hashes) mostly do not.
_NUMBERS = bytes(
    48 if 48 <= b <= 57 else 58 if b in b":,[" else 45 if b == 45 else 32 for b in range(256)
)
_LONG_NUMBERS = (b":" + b"0" * 19, b":-" + b"0" * 19)


def nesting_exceeds(body: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than ``limit``, found in C-speed
    byte passes (a 15 MB event in ~0.1 s) so that no parser recurses into it first. Text
    that is not JSON answers False: the parser then says what is wrong."""
    if b"\\\\" in body:  # escaped backslashes and quotes cannot open or close anything
        body = body.replace(b"\\\\", b"")
    if b'\\"' in body:
        body = body.replace(b'\\"', b"")
    nesting = body.translate(None, _DROP_BUT_NESTING).replace(b'""', b"")
    if b'"' in nesting:  # strings holding brackets: drop their contents
        nesting = b"".join(nesting.split(b'"')[::2])
    nesting = nesting.translate(_TO_PARENS)
    for _ in range(limit):
        if not nesting:
            return False
        size = len(nesting)
        nesting = nesting.replace(b"()", b"")
        if len(nesting) == size:
            return False  # unbalanced: not JSON
    return bool(nesting)


def check_json_body(body: bytes) -> None:
    """422 for a JSON body nested deeper than MAX_JSON_DEPTH (parsers and walkers recurse),
    holding an integer beyond 64 bits, a NUL character or half a surrogate pair (no
    database stores them), naming where; every JSON body, REST, ``/misp`` and STIX alike.
    The common body costs a few byte passes; only a suspicious one is parsed here."""
    start = body.lstrip()[:1]
    if start not in (b"{", b"["):
        return
    if nesting_exceeds(body, MAX_JSON_DEPTH):
        raise InvalidField(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels", field="body")
    numbers = body.translate(_NUMBERS, b" \t\r\n")
    if any(run in numbers for run in _LONG_NUMBERS):  # rare: a superset of the wide integers
        document = _document(body)
        where = _wide_integer_path(document) if document is not None else None
        if where is not None:
            raise InvalidField(
                f"{where or 'body'}: the integer does not fit in 64 bits", field=where or "body"
            )
    suspicious = b"\\u0000" in body or (
        (b"\\ud" in body or b"\\uD" in body) and _SURROGATE.search(body) is not None
    )
    if not suspicious:
        return
    try:
        document = orjson.loads(body)  # refuses half surrogate pairs, unlike json
    except orjson.JSONDecodeError as err:
        if "surrogate" in str(err):
            raise InvalidField(
                "the JSON body holds half a UTF-16 surrogate pair, which is not text",
                field="body",
            ) from None
        return  # not JSON: the route's parser says so
    where = _nul_path(document)
    if where is not None:
        raise _nul(where or "body")


def _document(body: bytes) -> Any:
    """The body parsed with integers of any size (``1e309`` as infinity), or None."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        pass
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None  # not JSON: the route's parser says so


def _wide_integer_path(document: Any) -> str | None:
    """The dotted path of the first integer beyond 64 bits (neither database nor orjson
    holds one), else None."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT64 <= value < INT64:
                return path
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None


def _nul_path(document: Any) -> str | None:
    """The dotted path of the first key or string holding a NUL character, else None."""
    stack: list[tuple[str, Any]] = [("", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in key:
                    return where.replace("\x00", "\\0")
                stack.append((where, item))
        elif isinstance(value, list):
            stack.extend((f"{path}.{i}" if path else str(i), v) for i, v in enumerate(value))
    return None
