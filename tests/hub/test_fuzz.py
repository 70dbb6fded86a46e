"""Property-based fuzzing of every operation in the app's OpenAPI document (schemathesis),
with an operator key and a partner key: no input may produce a 5xx (issues #13, #14).

Bounded: a few examples per operation, inputs that fit the document and inputs that do not,
derandomised so a failure reproduces; about a minute per database. Status codes and
response shapes beyond "not a 5xx" are a later task (the document does not describe them
yet). Schemathesis' strategies are driven directly: its pytest integration does not run on
this pytest.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from hub.vocabulary import Role
from tests.hub.test_routes import api_routes

EXAMPLES = 2  # per operation, mode and database: ~800 requests, well under a minute idle


# Operations whose fuzzed inputs would make the hub resolve made-up host names (connection
# URLs): no test sends DNS queries out. tests/hub/connections/test_outbound.py covers them.
RESOLVES_NAMES = {
    ("POST", "/api/v1/admin/connections"),
    ("PATCH", "/api/v1/admin/connections/{ref}"),
}


def distinct(operations: list[Any], app: Any) -> list[Any]:
    """One operation per endpoint, method and path shape: MISP's other spellings of a path
    (``.json``, camelCase) reach the same code."""
    endpoints = {
        (method, re.sub(r":[^}]+\}", "}", path)): route.endpoint
        for method, path, route in api_routes(app)
    }
    seen, out = set(), []
    for operation in operations:
        if operation.path.endswith(".json") or (operation.method.upper(), operation.path) in (
            RESOLVES_NAMES
        ):
            continue
        endpoint = endpoints.get((operation.method.upper(), operation.path), operation.path)
        key = (endpoint, operation.method, "{params}" in operation.path)
        if key not in seen:
            seen.add(key)
            out.append(operation)
    return out


def test_no_input_makes_a_server_error(app: Any, factory: Any, operator_key: str) -> None:
    partner = factory.partner("Fuzzing CSIRT", type="sectoral-csirt")
    keys = [operator_key, factory.key(Role.SYNC, partner)]
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = distinct([result.ok() for result in schema.get_all_operations()], app)
    assert len(operations) > 60
    failures: list[str] = []
    calls = 0
    for operation in operations:
        modes = [GenerationMode.POSITIVE]
        if len(operation.query) or operation.body:  # negative path strings are only filtered
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                nonlocal calls
                for key in keys:
                    calls += 1
                    response = case.call(headers={"Authorization": key})
                    case.validate_response(response, checks=[not_a_server_error])

            try:
                fuzz()
            except Unsatisfiable:  # nothing to get wrong: no parameters or body to break
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as err:  # collect every operation's failure
                failures.append(f"{operation.label} ({mode.value}): {err}"[:2000])
    assert not failures, f"{len(failures)} of {len(operations)} operations:\n" + "\n".join(failures)
    assert calls > len(operations) * 2
