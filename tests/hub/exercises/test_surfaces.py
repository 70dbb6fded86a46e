"""Surfaces that know no exercise refuse exercise-only keys (black-box attack on the merged
hub): knowledge products, incident cases and the organisation's incident support. Through
them an exercise key read the organisation's real drafts and cases, published exercise text
as real traffic and changed the public incident contact."""

from __future__ import annotations

from typing import Any

import pytest

from hub.vocabulary import Role

ROUTES = [
    ("GET", "/api/v1/knowledge?mine=true", None),
    ("POST", "/api/v1/knowledge", {"kind": "analysis", "title": "t", "body": "b", "tlp": "clear"}),
    ("GET", "/api/v1/knowledge/00000000-0000-4000-8000-000000000000", None),
    ("GET", "/api/v1/knowledge/taxonomy", None),
    ("GET", "/api/v1/incidents", None),
    ("POST", "/api/v1/incidents", {"title": "t", "sector": "health", "tlp": "green"}),
    ("GET", "/api/v1/incidents/00000000-0000-4000-8000-000000000000", None),
    ("GET", "/api/v1/me/incident-support", None),
    ("PUT", "/api/v1/me/incident-support", {"services": ["triage"]}),
    (
        "POST",
        "/api/v1/incidents/help",
        {"sector": "health", "region": "nl", "type": "company", "size": "large"},
    ),
]


@pytest.fixture
def keys(client: Any, factory: Any, auth: dict[str, str]) -> dict[str, str]:
    p1 = factory.partner("P1 CSIRT", type="sectoral-csirt")
    real = factory.key(Role.PARTNER, p1)
    r = client.post(
        "/api/v1/admin/exercises", json={"name": "Drill", "participants": [p1.uuid]}, headers=auth
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/admin/exercises/{r.json()['uuid']}/keys", json={"partner": p1.uuid}, headers=auth
    )
    assert r.status_code == 201, r.text
    return {"real": real, "exercise": r.json()["key"]}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_an_exercise_key_is_refused_where_no_exercise_is_known(
    client: Any, keys: dict[str, str], method: str, path: str, body: Any
) -> None:
    r = client.request(method, path, json=body, headers={"Authorization": keys["exercise"]})
    assert r.status_code == 403, (path, r.status_code, r.text)
    assert "exercise key" in r.json()["detail"]
    # the organisation's own key is not refused there (whatever the route answers then)
    real = client.request(method, path, json=body, headers={"Authorization": keys["real"]})
    assert real.status_code != 403 or "exercise key" not in real.text, (path, real.text)
