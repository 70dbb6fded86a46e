"""Inputs the database cannot hold, or the parsers will not take, get a 4xx naming the field on
every route and every database alike — never a 500 (issues #13, #14).

The walks go over every route of the app, so a new route is covered without a new test:
NUL characters in bodies, query and path parameters; JSON nested 5,000 deep; half a UTF-16
surrogate pair; integers beyond 64 bits and ``1e309`` in bodies and integer parameters.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from hub.routing import MAX_JSON_DEPTH
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.test_routes import api_routes

BODY_METHODS = {"POST", "PUT", "PATCH"}
TAXII_MEDIA = "application/taxii+json;version=2.1"
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJECT = b'{"a":' * 5000 + b"1" + b"}" * 5000
INF = "__1e309__"  # written as the number 1e309 (see _dumps)


def concrete(path: str) -> str:
    """Path parameters filled in: MISP ids as numbers, everything else as a uuid."""
    return re.sub(
        r"\{([^}:]+)(:[^}]+)?\}",
        lambda m: (
            "1"
            if m.group(1) == "ident"
            else "event"
            if m.group(1) == "context"
            else str(uuid.uuid4())
        ),
        path,
    )


def routes_with(app: Any, methods: set[str]) -> list[tuple[str, str, Any]]:
    """One path per endpoint and method (MISP's spellings of the same endpoint left out)."""
    out, seen = [], set()
    for method, path, route in api_routes(app):
        if method not in methods or path.endswith(".json") or "{params:path}" in path:
            continue
        if "{anything:path}" in path or (route.endpoint, method) in seen:
            continue
        seen.add((route.endpoint, method))
        out.append((method, path, route))
    return out


@pytest.fixture
def keys(factory: Any, operator_key: str) -> dict[Role, str]:
    partner = factory.partner("Edge CSIRT", type="sectoral-csirt")
    sync = factory.key(Role.SYNC, partner)
    return {
        Role.OPERATOR: operator_key,
        Role.AUDITOR: factory.key(Role.AUDITOR),
        Role.PARTNER: factory.key(Role.PARTNER, partner),
        Role.SYNC: sync,
    }


def key_for(route: Any, keys: dict[Role, str]) -> dict[str, str]:
    for role in (Role.OPERATOR, Role.PARTNER, Role.SYNC, Role.AUDITOR):
        if role in route.allowed_roles:
            return {"Authorization": keys[role]}
    raise AssertionError(route.path)


def media_for(path: str) -> str:
    return TAXII_MEDIA if path.startswith("/taxii2/") else "application/json"


def refused(r: Any) -> tuple[int, str | None]:
    body = r.json()
    field = body.get("field", (body.get("details") or {}).get("field"))
    return r.status_code, field


# --- bodies ---------------------------------------------------------------------------------


NUL_BODIES = [
    (b'{"Event": {"info": "a\\u0000b"}}', "Event.info"),
    (b'{"name": "x\\u0000"}', "name"),
    (b'[{"k\\u0000ey": 1}]', "0.k\\0ey"),
]


def test_every_body_route_refuses_nul_deep_json_and_half_surrogates(
    client: TestClient, app: Any, keys: dict[Role, str]
) -> None:
    for method, path, route in routes_with(app, BODY_METHODS):
        headers = {**key_for(route, keys), "Content-Type": media_for(path)}
        url = concrete(path)
        for body, field in NUL_BODIES:
            r = client.request(method, url, content=body, headers=headers)
            assert refused(r) == (422, field), (method, path, r.status_code, r.text[:300])
        for body in (DEEP, DEEP_OBJECT):
            r = client.request(method, url, content=body, headers=headers)
            assert refused(r) == (422, "body"), (method, path, r.status_code, r.text[:300])
            assert str(MAX_JSON_DEPTH) in r.text
        r = client.request(method, url, content=b'{"info": "\\ud800"}', headers=headers)
        assert refused(r) == (422, "body"), (method, path, r.status_code, r.text[:300])


def test_a_escaped_backslash_before_u0000_is_not_a_nul(client: TestClient, keys) -> None:
    """``"\\\\u0000"`` is the six characters \\u0000, which every database stores."""
    ev = event("backslash", attributes=[attr("C:\\u0000\\temp", type="text")])
    body = orjson.dumps(ev)
    assert b"\\\\u0000" in body
    r = client.post("/api/v1/events", content=body, headers={"Authorization": keys[Role.PARTNER]})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "body",
    [
        b'{"Event": {"info": "x", "timestamp": 99999999999999999999999}}',
        b'{"Event": {"info": "x", "timestamp": 1e309}}',
        b'{"limit": 1e309, "page": 99999999999999999999999, "name": 1e309}',
        b'{"interval_seconds": 9223372036854775808, "role": "partner", "status": 1e309}',
        b"[1e309, -1e309, 99999999999999999999999]",
    ],
)
def test_every_body_route_takes_out_of_range_numbers_as_a_client_mistake(
    client: TestClient, app: Any, keys: dict[Role, str], body: bytes
) -> None:
    """Refused with a 4xx, or ignored by routes that do not read their body: never a 500."""
    for method, path, route in routes_with(app, BODY_METHODS):
        headers = {**key_for(route, keys), "Content-Type": media_for(path)}
        r = client.request(method, concrete(path), content=body, headers=headers)
        assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
        if b"99999999999999999999999" in body:  # no integer beyond 64 bits gets past the edge
            assert r.status_code == 422, (method, path, r.status_code, r.text[:300])


# --- query and path parameters ----------------------------------------------------------------


def test_every_route_refuses_a_nul_in_a_query_or_path_parameter(
    client: TestClient, app: Any, keys: dict[Role, str]
) -> None:
    for method, path, route in routes_with(app, {"GET", "POST", "PUT", "PATCH", "DELETE"}):
        if route.is_public:
            continue
        headers = {**key_for(route, keys), "Content-Type": media_for(path)}
        r = client.request(method, concrete(path) + "?value=a%00b", headers=headers)
        assert refused(r) == (422, "value"), (method, path, r.status_code, r.text[:300])
        names = re.findall(r"\{([^}:]+)", path)
        if names:
            nul_path = path.replace("{" + names[-1], "{NUL", 1)
            url = re.sub(r"\{NUL[^}]*\}", "x%00y", nul_path)
            r = client.request(method, concrete(url), headers=headers)
            assert refused(r) == (422, names[-1]), (method, url, r.status_code, r.text[:300])


def test_integer_parameters_beyond_64_bits_are_refused_by_name(
    client: TestClient, app: Any, keys: dict[Role, str]
) -> None:
    checked = 0
    for method, path, route in routes_with(app, {"GET", "POST", "PUT", "PATCH", "DELETE"}):
        for field in route.dependant.query_params:
            if "int" not in str(field.field_info.annotation):
                continue
            for value in ("9223372036854775808", "-9223372036854775809", "1" + "0" * 40):
                r = client.request(
                    method, f"{concrete(path)}?{field.alias}={value}", headers=key_for(route, keys)
                )
                assert refused(r) == (422, field.alias), (path, field.alias, r.text[:300])
            for value in ("١٢٣", "²", "1e309"):  # Unicode digits and floats are not integers
                r = client.request(
                    method, f"{concrete(path)}?{field.alias}={value}", headers=key_for(route, keys)
                )
                assert r.status_code == 422, (path, field.alias, value, r.text[:300])
            checked += 1
    assert checked >= 4  # since/limit on events and attributes, TAXII limit, ...


def test_misp_ids_and_named_parameters_out_of_range_are_not_found_or_422(
    client: TestClient, keys: dict[Role, str]
) -> None:
    headers = {"Authorization": keys[Role.SYNC]}
    for ident in ("99999999999999999999999", "2147483648", "١٢٣", "²", "-1"):
        r = client.get(f"/misp/events/view/{ident}", headers=headers)
        assert r.status_code == 404, (ident, r.text)
        r = client.head(f"/misp/events/view/{ident}", headers=headers)
        assert r.status_code == 404, ident
    for named in ("limit:99999999999999999999999", "page:1e309", "timestamp:1e309", "limit:²"):
        r = client.get(f"/misp/events/index/{named}", headers=headers)
        assert 400 <= r.status_code < 500 or r.status_code == 200, (named, r.text)
        assert r.status_code != 500
    for body in (
        {"limit": "1e309"},
        {"limit": "99999999999999999999999"},
        {"page": "99999999999999999999999", "limit": 1},
        {"timestamp": "1e309"},
        {"timestamp": ["1", "99999999999999999999999"]},
        {"eventid": ["99999999999999999999999", "١٢٣"]},
        {"last": "99999999999999999999d"},
        {"from": "99999999999999999999999"},
    ):
        for path in (
            "/misp/events/restSearch",
            "/misp/attributes/restSearch",
            "/misp/events/index",
        ):
            r = client.post(path, json=body, headers=headers)
            assert r.status_code == 200 or 400 <= r.status_code < 500, (path, body, r.text[:300])


def test_a_forged_cursor_is_a_422_on_cursor(client: TestClient, keys: dict[Role, str]) -> None:
    import base64

    headers = {"Authorization": keys[Role.PARTNER]}
    forged = [
        base64.urlsafe_b64encode(_dumps(p)).decode().rstrip("=")
        for p in (
            {"id": 2**70},
            {"id": -1},
            {"id": "1"},
            {"t": "2026-01-01T00:00:00", "id": 2**70},
            {"t": "not a time", "id": 1},
            {"t": 5, "id": 1},
        )
    ] + ["%%%", "AAAA", "e30"]
    for path in ("/api/v1/events", "/api/v1/attributes", "/api/v1/me/releases"):
        for cursor in forged:
            r = client.get(path, params={"cursor": cursor}, headers=headers)
            assert r.status_code in (200, 422), (path, cursor, r.text[:300])
            if r.status_code == 422:
                assert r.json()["field"] == "cursor"


# --- MISP events: malformed parts ---------------------------------------------------------------


def _with(**inner: Any) -> dict[str, Any]:
    ev = event("malformed parts")
    ev["Event"].update(inner)
    return ev


MALFORMED_EVENTS = [
    ("Event.timestamp", _with(timestamp="²")),
    ("Event.timestamp", _with(timestamp="١٢٣٤")),
    ("Event.timestamp", _with(timestamp="9223372036854775808")),
    ("Event.timestamp", _with(timestamp=9223372036854775808)),
    ("Event.timestamp", _with(timestamp=1.5e300)),
    ("Event.publish_timestamp", _with(publish_timestamp="99999999999999999999")),
    ("Event.distribution", _with(distribution="٣")),
    ("Event.EventReport.0", _with(EventReport=["not an object"])),
    ("Event.EventReport.0.name", _with(EventReport=[{"name": {"x": 1}, "content": "c"}])),
    ("Event.EventReport.0.content", _with(EventReport=[{"name": "r", "content": ["x"]}])),
    ("Event.Galaxy.0", _with(Galaxy=["not an object"])),
    ("Event.Galaxy.0.GalaxyCluster", _with(Galaxy=[{"name": "g", "GalaxyCluster": "x"}])),
    ("Event.Galaxy.0.GalaxyCluster.0", _with(Galaxy=[{"name": "g", "GalaxyCluster": [1]}])),
    ("Event.Attribute.0.Sighting.0", _with(Attribute=[attr("198.51.100.7", Sighting=["x"])])),
    (
        "Event.Attribute.0.Sighting.0.type",
        _with(Attribute=[attr("198.51.100.7", Sighting=[{"type": "abc"}])]),
    ),
    (
        "Event.Attribute.0.Sighting.0.date_sighting",
        _with(Attribute=[attr("198.51.100.7", Sighting=[{"date_sighting": 2**70}])]),
    ),
    (
        "Event.Attribute.0.Sighting.0.Organisation",
        _with(Attribute=[attr("198.51.100.7", Sighting=[{"Organisation": "x"}])]),
    ),
    (
        "Event.SharingGroup.SharingGroupOrg.0",
        _with(distribution="4", SharingGroup={"name": "sg", "SharingGroupOrg": ["x"]}),
    ),
    (
        "Event.SharingGroup.SharingGroupOrg.0.Organisation",
        _with(
            distribution="4", SharingGroup={"name": "sg", "SharingGroupOrg": [{"Organisation": 3}]}
        ),
    ),
    (
        "Event.SharingGroup.SharingGroupOrg",
        _with(distribution="4", SharingGroup={"name": "sg", "SharingGroupOrg": "x"}),
    ),
    ("Event.Attribute.0.timestamp", _with(Attribute=[attr("198.51.100.7", timestamp=2**64)])),
    ("Event.Attribute.0.distribution", _with(Attribute=[attr("198.51.100.7", distribution=INF)])),
    ("Event.Tag.0.name", _with(Tag=[{"name": "x" * 256}])),
    ("Event.date", _with(date="2026-13-45")),
    ("Event.date", _with(date="2026-02-30")),
]


@pytest.mark.parametrize(("field", "body"), MALFORMED_EVENTS, ids=[f for f, _ in MALFORMED_EVENTS])
def test_malformed_event_parts_are_422_naming_the_field(
    client: TestClient, keys: dict[Role, str], field: str, body: dict[str, Any]
) -> None:
    content = _dumps(body)
    r = client.post(
        "/api/v1/events", content=content, headers={"Authorization": keys[Role.PARTNER]}
    )
    assert refused(r) == (422, field), r.text[:400]
    r = client.post(
        "/misp/events/add",
        content=content,
        headers={"Authorization": keys[Role.SYNC], "Content-Type": "application/json"},
    )
    assert r.status_code == 422 and r.json()["errors"], r.text[:400]


def _dumps(value: Any) -> bytes:
    """JSON with integers of any size (orjson stops at 64 bits) and ``INF`` as ``1e309``."""
    import json

    return json.dumps(value).encode().replace(b'"' + INF.encode() + b'"', b"1e309")


STIX_BUNDLES = [
    {"type": "bundle", "id": "bundle--" + str(uuid.uuid4()), "objects": "x"},
    {"type": "bundle", "id": "bundle--" + str(uuid.uuid4()), "objects": [1, "x", None]},
    {
        "type": "bundle",
        "id": "bundle--" + str(uuid.uuid4()),
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--" + str(uuid.uuid4()),
                "created": "99999-01-01T00:00:00Z",
                "modified": 2**70,
                "pattern": "[ipv4-addr:value = '198.51.100.1']",
                "pattern_type": "stix",
                "valid_from": 1e300,
            }
        ],
    },
]


@pytest.mark.parametrize("bundle", STIX_BUNDLES)
def test_malformed_stix_is_refused_or_held_never_a_500(
    client: TestClient, keys: dict[Role, str], bundle: dict[str, Any]
) -> None:
    headers = {"Authorization": keys[Role.PARTNER], "Content-Type": "application/stix+json"}
    r = client.post("/api/v1/events", content=_dumps(bundle), headers=headers)
    assert 400 <= r.status_code < 500 or r.status_code in (200, 201), r.text[:400]
