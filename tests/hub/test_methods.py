"""Undeclared methods: 405 with an ``Allow`` naming every method the path takes (RFC 9110
§15.5.6), in the interface's error shape (REST, MISP, TAXII), on every path of the OpenAPI
document (#14)."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from starlette.routing import compile_path

from hub.vocabulary import Role

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
SAMPLE = {"params": "limit:1", "context": "event"}


def concrete(template: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), str(uuid.uuid4())), template)


def documented(spec: dict) -> dict[str, set[str]]:
    return {
        path: {m.upper() for m in ops if m.upper() in (*METHODS, "HEAD")}
        for path, ops in spec["paths"].items()
    }


def expected_allow(paths: dict[str, set[str]], concrete_path: str) -> set[str]:
    """Every documented method of every documented path the concrete path matches."""
    allowed: set[str] = set()
    for template, methods in paths.items():
        regex, _, _ = compile_path(template)
        if regex.match(concrete_path):
            allowed |= methods
    return allowed


def assert_shape(path: str, body: dict) -> None:
    if path.startswith("/misp/"):
        assert body["saved"] is False and body["error"] == "method_not_allowed", body
        assert {"name", "message", "url", "errors"} <= set(body)
    elif path.startswith("/taxii2/"):
        assert body["error_code"] == "method_not_allowed" and body["http_status"] == "405"
        assert body["title"]
    else:
        assert body["error"] == "method_not_allowed" and body["field"] is None
        assert set(body) == {"error", "detail", "field"}


def test_every_undeclared_method_is_a_405_with_a_complete_allow(
    client: TestClient, auth: dict[str, str]
) -> None:
    paths = documented(client.get("/openapi.json").json())
    checked = 0
    for template in paths:
        path = concrete(template)
        allowed = expected_allow(paths, path)
        for method in sorted(set(METHODS) - allowed):
            for headers in (auth, {}):  # the method is refused before the key is looked at
                r = client.request(method, path, headers=headers, content=b"{}")
                assert r.status_code == 405, (method, path, r.status_code, r.text[:200])
                assert set(r.headers["allow"].split(", ")) == allowed, (method, path)
                assert_shape(path, r.json())
                checked += 1
    assert checked > 300


@pytest.mark.parametrize(
    ("method", "path", "allow", "media"),
    [
        ("DELETE", "/api/v1/admin/partners", "GET, POST", "application/json"),
        ("PUT", "/api/v1/admin/partners/{u}", "GET, PATCH", "application/json"),
        ("PATCH", "/api/v1/events", "GET, POST", "application/json"),
        ("HEAD", "/api/v1/me", "GET", None),
        ("PUT", "/misp/events/add", "GET, POST", "application/json"),  # GET: events/{eventId}
        ("DELETE", "/misp/events/view/{u}", "GET, HEAD, POST", "application/json"),
        ("GET", "/misp/attributes/restSearch", "POST", "application/json"),
        ("DELETE", "/taxii2/cwn/collections/{u}/objects/", "GET, POST", "application/taxii+json"),
        ("POST", "/taxii2/", "GET", "application/taxii+json"),
    ],
)
def test_allow_names_every_method_of_the_path(
    client: TestClient, factory, method: str, path: str, allow: str, media: str | None
) -> None:
    key = factory.key(Role.PARTNER)
    r = client.request(
        method, path.replace("{u}", str(uuid.uuid4())), headers={"Authorization": key}
    )
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    if media is not None:
        assert r.headers["content-type"].startswith(media)


def test_a_path_no_route_serves_is_still_misps_404_after_the_key(
    client: TestClient, factory
) -> None:
    assert client.get("/misp/servers/serverSettings").status_code == 401
    key = factory.key(Role.SYNC)
    for method in METHODS:
        r = client.request(method, "/misp/servers/serverSettings", headers={"Authorization": key})
        assert r.status_code == 404 and r.json()["error"] == "not_found", method
        assert "allow" not in r.headers
