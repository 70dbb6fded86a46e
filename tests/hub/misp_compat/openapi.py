"""A small structural validator for the MISP OpenAPI schemas (no jsonschema dependency):
``$ref``, ``allOf``/``oneOf``/``anyOf``, ``type``, ``nullable``, ``enum``, ``pattern``,
``maxLength``, ``required``, ``properties`` and ``items``; formats are not checked."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SPEC = Path(__file__).parents[2] / "fixtures" / "misp" / "openapi.yaml"
_TYPES = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec()
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


# Vocabularies that grew after the 2.4 spec was written (PyMISP's describeTypes is newer):
# their enums are examples, not limits.
OPEN_ENUMS = {"AttributeType", "AttributeCategory"}


def problems(value: Any, schema: dict[str, Any], path: str = "$") -> list[str]:
    ref = str(schema.get("$ref", "")).rsplit("/", 1)[-1]
    schema = _resolve(schema)
    out: list[str] = []
    for sub in schema.get("allOf", []):
        out += problems(value, sub, path)
    for key in ("oneOf", "anyOf"):
        if key in schema and all(problems(value, sub, path) for sub in schema[key]):
            out.append(f"{path}: matches none of {key}")
    if value is None:
        return out if schema.get("nullable") or "type" not in schema else [f"{path}: null"]
    kind = schema.get("type")
    if kind:
        expected = _TYPES[kind]
        if not isinstance(value, expected) or (
            kind in ("integer", "number") and isinstance(value, bool)
        ):
            return [*out, f"{path}: {value!r} is not {kind}"]
    if "enum" in schema and ref not in OPEN_ENUMS and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum'][:10]}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{path}: {name} is required")
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                out += problems(value[name], sub, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += problems(item, schema["items"], f"{path}[{i}]")
    return out


def response_schema(path: str, method: str = "get", status: str = "200") -> dict[str, Any]:
    op = spec()["paths"][path][method]
    response = _resolve(op["responses"][status])
    return response["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def assert_valid(value: Any, path: str, method: str = "get", status: str = "200") -> None:
    found = problems(value, response_schema(path, method, status))
    assert not found, found[:10]


def assert_schema(value: Any, name: str) -> None:
    found = problems(value, {"$ref": f"#/components/schemas/{name}"})
    assert not found, found[:10]
