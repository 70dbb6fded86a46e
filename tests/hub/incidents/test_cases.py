"""Incident cases: who sees a case (its opener, the partners referred in it, operators;
anyone else 404), items linked only when the linker may receive them and shown to each
viewer only when it may, referrals checked against the case's label, closing with lessons
learned, every write audited."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.lineage import service as lineage
from hub.models import AuditEntry
from hub.vocabulary import Role
from tests.builders import event

BASE = "/api/v1/incidents"
CASE = {
    "title": "Ransomware at a hospital",
    "sector": "health",
    "tlp": "amber",
    "description": "Encrypted file servers.",
}


@pytest.fixture
def orgs(factory: Any) -> dict[str, Any]:
    a = factory.partner("Opener org")
    b = factory.partner("Helper CERT")
    c = factory.partner("Bystander")
    return {
        "a": a,
        "b": b,
        "c": c,
        "ka": {"Authorization": factory.key(Role.PARTNER, a)},
        "kb": {"Authorization": factory.key(Role.PARTNER, b)},
        "kc": {"Authorization": factory.key(Role.PARTNER, c)},
    }


def opened(client: TestClient, key: dict, **change: Any) -> str:
    r = client.post(BASE, json={**CASE, **change}, headers=key)
    assert r.status_code == 201, r.text
    return str(r.json()["uuid"])


def test_only_opener_referred_partners_and_operators_see_a_case(
    client: TestClient, orgs: dict, auth: dict, factory: Any
) -> None:
    case = opened(client, orgs["ka"])
    assert client.get(f"{BASE}/{case}", headers=orgs["ka"]).json()["opener"]["name"] == "Opener org"
    assert client.get(f"{BASE}/{case}", headers=orgs["kb"]).status_code == 404
    assert client.get(f"{BASE}/{case}", headers=orgs["kc"]).status_code == 404
    assert client.get(f"{BASE}/{case}", headers=auth).status_code == 200
    auditor = {"Authorization": factory.key(Role.AUDITOR)}
    assert client.get(f"{BASE}/{case}", headers=auditor).status_code == 403
    r = client.post(
        f"{BASE}/{case}/referrals",
        json={"referred": "Hospital X", "to_partner": orgs["b"].uuid, "note": "forensics"},
        headers=orgs["ka"],
    )
    assert r.status_code == 201, r.text
    referral = r.json()["referrals"][0]
    assert referral["referred"] == "Hospital X"
    assert referral["to"]["name"] == "Helper CERT" and referral["by"]["name"] == "Opener org"
    assert client.get(f"{BASE}/{case}", headers=orgs["kb"]).status_code == 200
    assert client.get(f"{BASE}/{case}", headers=orgs["kc"]).status_code == 404
    assert client.get(f"{BASE}/{uuid.uuid4()}", headers=orgs["ka"]).status_code == 404


def test_a_referral_the_case_label_may_not_reach_is_refused(
    client: TestClient, orgs: dict, factory: Any
) -> None:
    no_agreement = factory.partner("No agreement", tlp=False)
    suspended = factory.partner("Suspended", status="suspended")
    case = opened(client, orgs["ka"])
    answers = []
    for target in (no_agreement.uuid, suspended.uuid, "6d1f7a34-9b1e-4c39-8a55-1f0e7c3b2a90"):
        r = client.post(
            f"{BASE}/{case}/referrals",
            json={"referred": "Hospital X", "to_partner": target},
            headers=orgs["ka"],
        )
        assert r.status_code == 409 and r.json()["field"] == "to_partner", r.text
        answers.append(r.json())
    # A partner cannot probe the registry: an unknown uuid, a partner without the agreement
    # and a suspended one get the same answer, naming nobody (found by a black-box attack).
    assert answers[0] == answers[1] == answers[2], answers
    assert "No agreement" not in str(answers) and "Suspended" not in str(answers)
    clear = opened(client, orgs["ka"], tlp="clear")
    r = client.post(
        f"{BASE}/{clear}/referrals",
        json={"referred": "Hospital X", "to_partner": no_agreement.uuid},
        headers=orgs["ka"],
    )
    assert r.status_code == 201


def test_items_are_linked_and_shown_only_where_the_release_path_allows(
    client: TestClient, orgs: dict, auth: dict, maker: sessionmaker[Session]
) -> None:
    shared = event("community GREEN", tlp="green", distribution=1)
    only_a = event("for the opener only", tlp="amber", distribution=4, members=[orgs["a"].uuid])
    only_c = event("for the bystander only", tlp="amber", distribution=4, members=[orgs["c"].uuid])
    for doc in (shared, only_a, only_c):
        assert client.post("/api/v1/events", json=doc, headers=auth).status_code == 201
    case = opened(client, orgs["ka"])
    client.post(
        f"{BASE}/{case}/referrals",
        json={"referred": "Hospital X", "to_partner": orgs["b"].uuid},
        headers=orgs["ka"],
    )
    for doc in (shared, only_a):
        r = client.post(
            f"{BASE}/{case}/items", json={"event_uuid": doc["Event"]["uuid"]}, headers=orgs["ka"]
        )
        assert r.status_code == 201, r.text
    hidden = client.post(
        f"{BASE}/{case}/items", json={"event_uuid": only_c["Event"]["uuid"]}, headers=orgs["ka"]
    )
    assert hidden.status_code == 404
    missing = client.post(
        f"{BASE}/{case}/items", json={"event_uuid": str(uuid.uuid4())}, headers=orgs["ka"]
    )
    assert missing.status_code == 404 and missing.json()["detail"].startswith("no event")
    again = client.post(
        f"{BASE}/{case}/items", json={"event_uuid": shared["Event"]["uuid"]}, headers=orgs["ka"]
    )
    assert again.status_code == 409
    seen_a = [
        i["event_uuid"] for i in client.get(f"{BASE}/{case}", headers=orgs["ka"]).json()["items"]
    ]
    assert seen_a == [shared["Event"]["uuid"], only_a["Event"]["uuid"]]
    r = client.get(f"{BASE}/{case}", headers=orgs["kb"])
    assert [i["event_uuid"] for i in r.json()["items"]] == [shared["Event"]["uuid"]]
    assert only_a["Event"]["uuid"] not in r.text
    with maker() as s:
        forward = lineage.forward(s, item_uuid=shared["Event"]["uuid"])
    cases_found = [a for a in forward["artifacts"] if a["kind"] == "incident-case"]
    assert [a["external_id"] for a in cases_found] == [case]


def test_closing_records_lessons_and_ends_the_case(
    client: TestClient, orgs: dict, maker: sessionmaker[Session]
) -> None:
    case = opened(client, orgs["ka"])
    client.post(
        f"{BASE}/{case}/referrals",
        json={"referred": "Hospital X", "to_partner": orgs["b"].uuid},
        headers=orgs["ka"],
    )
    lessons = {"lessons_learned": "Offline backups saved the day."}
    assert client.post(f"{BASE}/{case}/close", json=lessons, headers=orgs["kb"]).status_code == 403
    r = client.post(f"{BASE}/{case}/close", json=lessons, headers=orgs["ka"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "closed" and body["closed_by"] == "Opener org"
    assert body["lessons_learned"] == "Offline backups saved the day."
    assert client.post(f"{BASE}/{case}/close", json=lessons, headers=orgs["ka"]).status_code == 409
    r = client.post(
        f"{BASE}/{case}/referrals",
        json={"referred": "Hospital Y", "to_partner": orgs["b"].uuid},
        headers=orgs["ka"],
    )
    assert r.status_code == 409
    with maker() as s:
        actions = set(
            s.scalars(select(AuditEntry.action).where(AuditEntry.object_ref == f"incident:{case}"))
        )
    assert {"incidents.case.open", "incidents.case.referral", "incidents.case.close"} <= actions


def test_operator_opens_a_case_for_the_hub(client: TestClient, auth: dict, hub_org: Any) -> None:
    r = client.post(BASE, json=CASE, headers=auth)
    assert r.status_code == 201
    assert r.json()["opener"]["uuid"] == hub_org.uuid


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tlp": "purple"}, "tlp"),
        ({"sector": "hospitals"}, "sector"),
        ({"title": ""}, "title"),
        ({"description": "a\x00b"}, "description"),
    ],
)
def test_bad_case_input_names_the_field(
    client: TestClient, orgs: dict, change: dict, field: str
) -> None:
    r = client.post(BASE, json={**CASE, **change}, headers=orgs["ka"])
    assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_the_case_list_holds_only_cases_the_caller_sees(
    client: TestClient, orgs: dict, auth: dict
) -> None:
    mine = [opened(client, orgs["ka"], title=f"case {n}") for n in range(3)]
    other = opened(client, orgs["kc"], title="bystander's case")
    client.post(
        f"{BASE}/{mine[0]}/referrals",
        json={"referred": "Hospital X", "to_partner": orgs["b"].uuid},
        headers=orgs["ka"],
    )
    first = client.get(BASE, params={"limit": 2}, headers=orgs["ka"]).json()
    assert [c["uuid"] for c in first["items"]] == [mine[2], mine[1]]
    rest = client.get(
        BASE, params={"limit": 2, "cursor": first["next_cursor"]}, headers=orgs["ka"]
    ).json()
    assert [c["uuid"] for c in rest["items"]] == [mine[0]] and rest["next_cursor"] is None
    assert [c["uuid"] for c in client.get(BASE, headers=orgs["kb"]).json()["items"]] == [mine[0]]
    assert [c["uuid"] for c in client.get(BASE, headers=orgs["kc"]).json()["items"]] == [other]
    assert len(client.get(BASE, headers=auth).json()["items"]) == 4


@pytest.mark.parametrize("label", ["amber", "amber+strict", "red"])
def test_only_the_opener_widens_a_case_that_names_its_recipients(
    client: TestClient, orgs: dict, auth: dict, label: str
) -> None:
    """A partner referred in a case does not refer others to it (found by a black-box attack:
    a referred partner shared a RED case onwards); nor does an operator, for a case above
    GREEN: who receives it is the opener's choice (DESIGN.md §3)."""
    case = opened(client, orgs["ka"], tlp=label)
    refer = {"referred": "Helper", "to_partner": orgs["b"].uuid}
    assert client.post(f"{BASE}/{case}/referrals", json=refer, headers=orgs["ka"]).is_success
    onwards = {"referred": "Bystander", "to_partner": orgs["c"].uuid}
    for key in (orgs["kb"], auth):
        r = client.post(f"{BASE}/{case}/referrals", json=onwards, headers=key)
        assert r.status_code == 403, r.text
    assert client.get(f"{BASE}/{case}", headers=orgs["kc"]).status_code == 404
    green = opened(client, orgs["ka"], tlp="green")
    r = client.post(f"{BASE}/{green}/referrals", json=onwards, headers=auth)
    assert r.status_code == 201, r.text


def test_only_the_opener_turns_its_lessons_into_a_product(
    client: TestClient, orgs: dict, auth: dict
) -> None:
    """An operator does not publish a partner's lessons (found by a black-box attack: an
    operator made a community product of a case addressed to the hub alone, naming its
    opener)."""
    case = opened(client, orgs["ka"], tlp="green")
    closed = client.post(
        f"{BASE}/{case}/close", json={"lessons_learned": "ours"}, headers=orgs["ka"]
    )
    assert closed.status_code == 200, closed.text
    r = client.post(f"{BASE}/{case}/knowledge", json={"name_opener": True}, headers=auth)
    assert r.status_code == 403, r.text
    r = client.post(f"{BASE}/{case}/knowledge", json={}, headers=orgs["ka"])
    assert r.status_code == 201, r.text
