"""An audit entry a partner may read speaks only of what went to it (``hub.audit.addressing``).

Found by a black-box attack: the entry an answer named in ``X-Hub-Audit-Seq`` listed the uuids
of the elements withheld from the partner with their reasons (``above-tier-ceiling``,
``not-addressed``, ``hub-only``), and a search whose only match was withheld recorded an entry
(and named it) where a search matching nothing recorded none: an oracle on hidden values.
Each test failed before the refusal became an entry of its own, the operators' and auditors'.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from hub.audit import addressing
from hub.vocabulary import Role
from tests.builders import attr, event

MISP = {"Accept": "application/json", "Content-Type": "application/json"}


def _leaf(client: Any, key: str, seq: int) -> tuple[int, dict[str, Any] | None]:
    r = client.get(f"/api/v1/audit/entries/{seq}", headers={"Authorization": key})
    if r.status_code != 200:
        return r.status_code, None
    return 200, orjson.loads(base64.b64decode(r.json()["leaf"]))


def _scene(client: Any, factory: Any) -> tuple[Any, str, dict[str, Any], str]:
    """A GREEN event with an AMBER+STRICT attribute and one for the source's community only;
    a GREEN-ceiling partner (connection tier) receives the GREEN attribute only."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    partner = factory.partner("ISP", tier="connection", tlp=True)
    strict = attr("192.0.2.55", "amber+strict")
    local = attr("192.0.2.56", distribution=0)
    ev = event(tlp="green", distribution=3, attributes=[attr("198.51.100.55"), strict, local])
    src = {"Authorization": factory.key(Role.PARTNER, source)}
    assert client.post("/api/v1/events", json=ev, headers=src).status_code == 201
    hidden = [strict["uuid"], local["uuid"]]
    return partner, factory.key(Role.PARTNER, partner), ev, ",".join(hidden)


def test_the_entry_of_a_partial_delivery_names_nothing_withheld(client, factory, auth) -> None:
    partner, key, ev, hidden = _scene(client, factory)
    uuid = ev["Event"]["uuid"]
    r = client.get(f"/api/v1/events/{uuid}", headers={"Authorization": key})
    assert r.status_code == 200, r.text
    assert [a["value"] for a in r.json()["Event"]["Attribute"]] == ["198.51.100.55"]
    seq = int(r.headers["X-Hub-Audit-Seq"])
    status, body = _leaf(client, key, seq)
    assert status == 200 and body is not None
    text = orjson.dumps(body).decode()
    for gone in hidden.split(","):
        assert gone not in text, text
    assert not body["details"].get("removed") and body["decision"] == "allow"
    assert all(row[5] == 0 for row in body["details"]["releases"])
    # The refusal is recorded beside it, for operators and auditors only.
    r = client.get(
        f"/api/v1/admin/audit/entries?recipient={partner.uuid}&decision=deny", headers=auth
    )
    assert r.status_code == 200, r.text
    [refusal] = [e for e in r.json()["items"] if e["details"].get("delivery") == seq]
    listed = orjson.dumps(refusal["details"]).decode()
    assert all(gone in listed for gone in hidden.split(",")), listed
    assert _leaf(client, key, refusal["seq"])[0] == 404


def test_a_search_whose_only_match_is_withheld_answers_as_one_that_matched_nothing(
    client, factory
) -> None:
    _partner, key, _ev, _hidden = _scene(client, factory)
    h = {"Authorization": key}
    answers = []
    for value in ("192.0.2.55", "192.0.2.56", "192.0.2.57"):  # withheld, withheld, missing
        rest = client.get(f"/api/v1/attributes?value={value}", headers=h)
        misp = client.post(
            "/misp/attributes/restSearch", json={"value": value}, headers={**MISP, **h}
        )
        for r in (rest, misp):
            assert r.status_code == 200, r.text
            assert "X-Hub-Audit-Seq" not in r.headers, (value, r.url)
        answers.append((rest.json(), misp.json(), rest.headers["X-Hub-TLP"]))
    assert answers[0] == answers[1] == answers[2]


def test_only_deliveries_are_readable_by_their_recipient() -> None:
    """The rule itself, on the shapes the release path writes."""
    page = {
        "policy_version": "1",
        "releases": [
            ["e1", 3, True, "listed", "green", 2],
            ["e2", None, False, "hub-only", None, 0],
        ],
        "removed": [["attribute", "a1", "above-tier-ceiling"]],
        "removed_count": 1,
    }
    public, hidden = addressing.split("allow", page)
    assert public == {
        "policy_version": "1",
        "releases": [["e1", 3, True, "listed", "green", 0]],
        "removed": [],
        "removed_count": 0,
    }
    assert hidden is not None and hidden["releases"] == [page["releases"][1]]
    assert hidden["removed_from"] == [["e1", 2]] and hidden["removed_count"] == 1
    # what its recipient reads names no version either (``versions_apart``)
    assert not addressing.readable_by_recipient("allow", public)
    assert addressing.readable_by_recipient("allow", addressing.versions_apart(public)[0])
    assert not addressing.readable_by_recipient("allow", page)
    assert not addressing.readable_by_recipient("deny", {"releases": []})
    assert addressing.split("deny", {"reason": "x"}) == (None, {"reason": "x"})
    whole = {"releases": [["e1", 1, True, "listed", "green", 0]], "removed": []}
    assert addressing.split("allow", whole) == (whole, None)
    # the hub's own readers (retraction reach) see the whole decision again
    assert addressing.merged(public, hidden)["removed"] == page["removed"]
