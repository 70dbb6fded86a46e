"""Property-based fuzzing of every operation in the app's OpenAPI document (schemathesis),
with an operator key and a partner key, over a store holding real events: every answer must
be one the document declares, in its media type and its schema, and none a 5xx (issues #13,
#14).

Bounded: a few examples per operation, inputs that fit the document and inputs that do not,
derandomised so a failure reproduces; 30-60 s per database on two cores (~750 requests).
Schemathesis' strategies are driven directly: its pytest integration does not run on this
pytest.

Not among the checks, on purpose: ``negative_data_rejection`` (``/misp`` takes any filter
object and ignores keys it does not know, as MISP does, so input outside the document is
often accepted there). Each operation is called with the keys whose role it lets in; refusals
by role are tests/hub/test_routes.py's.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from hub.vocabulary import Role
from tests.hub.test_routes import api_routes

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
FIXTURES = Path(__file__).parents[1] / "fixtures"
EXAMPLES = 3  # per operation and mode


# Operations whose fuzzed inputs would make the hub resolve made-up host names (connection
# URLs): no test sends DNS queries out. tests/hub/connections/test_outbound.py covers them.
RESOLVES_NAMES = {
    ("POST", "/api/v1/admin/connections"),
    ("PATCH", "/api/v1/admin/connections/{ref}"),
}


def distinct(operations: list[Any], app: Any) -> list[tuple[Any, Any]]:
    """One operation per endpoint, method and path shape, with its route: MISP's other
    spellings of a path (``.json``, camelCase) reach the same code."""
    routes = {
        (method, re.sub(r":[^}]+\}", "}", path)): route for method, path, route in api_routes(app)
    }
    seen, out = set(), []
    for operation in operations:
        if operation.path.endswith(".json") or (operation.method.upper(), operation.path) in (
            RESOLVES_NAMES
        ):
            continue
        route = routes[(operation.method.upper(), operation.path)]
        key = (route.endpoint, operation.method, "{params}" in operation.path)
        if key not in seen:
            seen.add(key)
            out.append((operation, route))
    return out


def seed(client: Any, key: str) -> None:
    """Real events behind the listings and searches (the fuzzer's own are mostly refused)."""
    for name in ("misp/events/pymisp-mainly_objects_1.json", "misp/events/misp-tests-event.json"):
        doc = json.loads((FIXTURES / name).read_text())
        event = doc.get("Event", doc)
        for owned in ("Org", "Orgc", "org_id", "orgc_id", "id"):
            event.pop(owned, None)
        r = client.post("/api/v1/events", json={"Event": event}, headers={"Authorization": key})
        assert r.status_code == 201, r.text
    bundle = (FIXTURES / "stix/misp-stix-test-event2-stix21.json").read_bytes()
    r = client.post(
        "/api/v1/events",
        content=bundle,
        headers={"Authorization": key, "Content-Type": "application/stix+json"},
    )
    assert r.status_code == 201, r.text


def test_answers_conform_to_the_document(
    app: Any, client: Any, factory: Any, operator_key: str
) -> None:
    partner = factory.partner("Fuzzing CSIRT", type="sectoral-csirt")
    keys = {Role.OPERATOR: operator_key, Role.PARTNER: factory.key(Role.PARTNER, partner)}
    seed(client, keys[Role.PARTNER])
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = distinct([result.ok() for result in schema.get_all_operations()], app)
    assert len(operations) > 60
    failures: list[str] = []
    calls = 0
    statuses: Counter[int] = Counter()
    for operation, route in operations:
        # each key where its role is let in: refusals by role are tests/hub/test_routes.py's
        callers = [k for role, k in keys.items() if route.is_public or role in route.allowed_roles]
        assert callers, operation.label
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
                for key in callers:  # noqa: B023 - run at once, within this iteration
                    calls += 1
                    response = case.call(headers={"Authorization": key})
                    statuses[response.status_code] += 1
                    case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            except Unsatisfiable:  # nothing to get wrong: no parameters or body to break
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception as err:  # collect every operation's failure
                failures.append(f"{operation.label} ({mode.value}): {err}"[:2000])
    assert not failures, f"{len(failures)} of {len(operations)} operations:\n" + "\n".join(failures)
    assert calls > len(operations) * 2
    # the document is checked on answers that carry data, not only on refusals
    assert sum(n for status, n in statuses.items() if status < 300) > len(operations) // 2
