"""The pure parts of the connectors: MISP sync transformations, STIX grouping, errors."""

from __future__ import annotations

import requests

from connectors import AuthenticationFailed, RemoteRejected, SourceUnavailable, build
from connectors.http import classify
from connectors.misp import downgrade_for_pull, has_content, prepare_for_push
from connectors.taxii.convert import split_by_container


def _event() -> dict:
    return {
        "uuid": "e1",
        "id": "12",
        "org_id": "3",
        "distribution": "2",
        "Tag": [{"name": "tlp:green", "local": False}, {"name": "mine", "local": True}],
        "Attribute": [
            {"uuid": "a1", "id": "5", "distribution": "1", "Tag": [{"name": "x", "local": True}]},
            {"uuid": "a2", "distribution": "5", "deleted": True},
        ],
        "Object": [{"uuid": "o1", "distribution": "3", "Attribute": [{"uuid": "a3"}]}],
    }


def test_pull_downgrades_as_misp_does_and_strips_local_tags() -> None:
    out = downgrade_for_pull(_event())
    assert out["distribution"] == "1"
    assert [a["distribution"] for a in out["Attribute"]] == ["0", "5"]
    assert out["Object"][0]["distribution"] == "3"
    assert [t["name"] for t in out["Tag"]] == ["tlp:green"] and out["Attribute"][0]["Tag"] == []
    assert _event()["distribution"] == "2"  # a copy


def test_push_body_is_locked_without_local_fields() -> None:
    out = prepare_for_push(_event())
    assert out["locked"] is True and "id" not in out and "org_id" not in out
    assert "id" not in out["Attribute"][0]


def test_empty_events_are_recognised() -> None:
    assert has_content(_event())
    assert not has_content({"Attribute": [{"deleted": True}], "Object": []})


def test_stix_page_is_grouped_per_report() -> None:
    marking = {"type": "marking-definition", "id": "marking-definition--1"}
    report = {"type": "report", "id": "report--1", "object_refs": ["indicator--1"]}
    ind1 = {"type": "indicator", "id": "indicator--1"}
    ind2 = {"type": "indicator", "id": "indicator--2"}
    groups = split_by_container([marking, report, ind1, ind2])
    assert [[o["id"] for o in g] for g in groups] == [
        ["marking-definition--1", "report--1", "indicator--1"],
        ["marking-definition--1", "indicator--2"],
    ]


def _response(
    status: int, body: bytes = b"{}", retry_after: str | None = None
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body  # noqa: SLF001 - a requests.Response made by hand
    if retry_after:
        r.headers["Retry-After"] = retry_after
    r.url = "http://remote/x"
    return r


def test_status_codes_map_to_retriable_and_permanent_errors() -> None:
    assert classify(_response(200), what="x") is None
    busy = classify(_response(429, retry_after="7"), what="x")
    assert isinstance(busy, SourceUnavailable) and busy.retry_after == 7
    assert isinstance(classify(_response(503), what="x"), SourceUnavailable)
    assert isinstance(classify(_response(401), what="x"), AuthenticationFailed)
    assert isinstance(classify(_response(403), what="x"), AuthenticationFailed)
    refused = classify(_response(422, b'{"errors": "bad event"}'), what="push")
    assert isinstance(refused, RemoteRejected) and "bad event" in str(refused)


def test_build_validates_settings() -> None:
    try:
        build("misp-pull", {"url": "ftp://x", "api_key": "k"})
    except Exception as err:
        assert "http://" in str(err)
    else:
        raise AssertionError("a bad URL was accepted")
