"""Every route: 401 without a key, 403 for a role that may not use it, checks in contract order."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from hub.routing import HubRoute
from hub.vocabulary import Role

# DESIGN.md §2: /health, and the audit verifier key (so anyone can check a checkpoint).
# Issue #19 adds public routes DESIGN §2 did not foresee: "who helps me now" (rate-limited,
# CLEAR only) and the page and Atom feed of TLP:CLEAR knowledge products (Channel.FEED).
PUBLIC = {
    "/health",
    "/api/v1/audit/verifier",
    "/public/incident-help",
    "/public/knowledge",
    "/public/knowledge.atom",
}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def flatten(routes: list) -> list:
    """Routes of the app, looking into included routers (FastAPI ≥ 0.16x keeps them nested)."""
    out = []
    for route in routes:
        nested = getattr(route, "original_router", None)
        out += flatten(nested.routes) if nested is not None else [route]
    return out


def api_routes(app) -> list[tuple[str, str, HubRoute]]:
    out = []
    for route in flatten(app.routes):
        if isinstance(route, APIRoute):
            assert isinstance(route, HubRoute), f"{route.path} does not use HubRoute"
            for method in sorted(route.methods):
                out.append((method, route.path, route))
    return out


def error_code(r) -> str:
    """The hub's error code: ``error`` (REST, /misp) or ``error_code`` (TAXII error resources)."""
    body = r.json()
    return body.get("error", body.get("error_code"))


def test_the_walk_finds_the_routes_of_the_contract(app) -> None:
    paths = {path for _, path, _ in api_routes(app)}
    for expected in [
        "/api/v1/me",
        "/api/v1/admin/partners",
        "/api/v1/admin/partners/{uuid}",
        "/api/v1/admin/partners/{uuid}/status",
        "/api/v1/admin/partners/{uuid}/history",
        "/api/v1/admin/partners/{uuid}/keys",
        "/health",
        "/metrics",
    ]:
        assert expected in paths


def test_only_health_and_the_audit_verifier_key_are_public(app) -> None:
    public = {path for _, path, route in api_routes(app) if route.is_public}
    assert public == PUBLIC


def test_every_route_refuses_a_request_without_a_key(client: TestClient, app) -> None:
    for method, path, route in api_routes(app):
        if route.is_public:
            continue
        for headers in ({}, {"Accept": "text/html"}, {"Authorization": "nope"}):
            r = client.request(method, concrete(path), headers=headers, content=b"{broken")
            assert r.status_code == 401, (method, path, headers, r.status_code)
            assert method == "HEAD" or error_code(r) == "unauthenticated"


def test_every_route_refuses_roles_that_may_not_use_it(client: TestClient, app, factory) -> None:
    keys = {role: factory.key(role) for role in Role}
    checked = 0
    for method, path, route in api_routes(app):
        if route.is_public:
            continue
        for role in set(Role) - route.allowed_roles:
            r = client.request(
                method, concrete(path), headers={"Authorization": keys[role]}, content=b"{broken"
            )
            assert r.status_code == 403, (method, path, role, r.status_code)
            assert method == "HEAD" or error_code(r) == "forbidden"
            checked += 1
    assert checked > 10


def test_auditor_reads_admin_routes_but_changes_nothing(app) -> None:
    for method, path, route in api_routes(app):
        if path.startswith("/api/v1/admin"):
            if method == "GET":
                assert Role.AUDITOR in route.allowed_roles, path
            else:
                assert route.allowed_roles == {Role.OPERATOR}, (method, path)


def test_api_documentation_is_public_and_lists_every_route(client: TestClient, app) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    for method, _path, route in api_routes(app):
        path = route.path_format  # "{params:path}" is documented as "{params}"
        if getattr(route, "fallback", False):  # /misp's "not served" answer is no operation
            assert path not in spec["paths"], path
            continue
        assert method.lower() in spec["paths"][path], (method, path)
    assert "PartnerCreate" in spec["components"]["schemas"]


class TestOrderOfChecks:
    URL = "/api/v1/admin/partners"

    def test_wrong_role_before_body_validation(self, client: TestClient, factory) -> None:
        r = client.post(
            self.URL,
            content=b"{broken",
            headers={
                "Authorization": factory.key(Role.PARTNER),
                "Content-Type": "application/json",
            },
        )
        assert r.status_code == 403

    def test_unsupported_media_type_before_validation(self, client: TestClient, auth) -> None:
        r = client.post(
            self.URL,
            content=b"name=x",
            headers={**auth, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 415 and r.json()["error"] == "unsupported_media_type"

    def test_not_acceptable(self, client: TestClient, auth) -> None:
        r = client.get(self.URL, headers={**auth, "Accept": "text/html"})
        assert r.status_code == 406

    def test_validation_before_existence(self, client: TestClient, auth) -> None:
        r = client.patch(f"{self.URL}/{uuid.uuid4()}", json={"tier": "gold"}, headers=auth)
        assert r.status_code == 422
        r = client.patch(f"{self.URL}/{uuid.uuid4()}", json={"tier": "core"}, headers=auth)
        assert r.status_code == 404

    def test_unknown_path_is_a_json_404(self, client: TestClient, auth) -> None:
        r = client.get("/api/v1/nothing-here", headers=auth)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


@pytest.mark.parametrize("role", list(Role))
def test_me_answers_every_role(client: TestClient, factory, role: Role) -> None:
    r = client.get("/api/v1/me", headers={"Authorization": factory.key(role)})
    assert r.status_code == 200 and r.json()["role"] == role.value
