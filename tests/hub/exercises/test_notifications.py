"""Exercise injects go out from the worker, and notify only the exercise's participants
(issue #20): an inject matching a participant's constituency becomes a notification that
only that participant's exercise key sees (not its real key, not a non-participant whose
constituency matches too), mailed only to the participant with the subject prefixed
``[OEFENING/EXERCISE]``; a real event matching the same constituency notifies as before and
never reaches an exercise key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from hub.db import session_scope
from hub.models import Event, ExerciseInject, Notification
from hub.models.base import utcnow
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr
from tests.hub.exercises.test_isolation import _ok, event
from tests.hub.notifications.test_mail import contact, json_of, text_of

INJECT_IP = "203.0.113.7"
REAL_IP = "203.0.113.8"
NET = {"ip_prefixes": ["203.0.113.0/24"]}


def _exercise(client: Any, auth: Any, participants: list[str], *, real: bool = False) -> str:
    """An exercise; ``real``: its items are matched against the participants' real
    constituencies too (``match_real_constituencies``)."""
    body = {
        "name": "Ransomware at hospital X",
        "participants": participants,
        "match_real_constituencies": real,
    }
    ex = _ok(
        client.post("/api/v1/admin/exercises", json=body, headers=auth),
        201,
    )
    return str(ex["uuid"])


def _inject(client: Any, auth: Any, eid: str, ip: str, send_at: str) -> dict[str, Any]:
    body = {
        "name": "IOC drop",
        "event": event("Ransomware IOC", attributes=[attr(ip)]),
        "send_at": send_at,
    }
    return _ok(client.post(f"/api/v1/admin/exercises/{eid}/injects", json=body, headers=auth), 201)


def _sent(maker: Any) -> dict[str, bool]:
    with session_scope(maker) as session:
        return {i.name: i.sent_at is not None for i in session.scalars(select(ExerciseInject))}


def test_the_worker_sends_due_injects_and_only_those(client, factory, auth, maker, settings):
    from hub.runtime import Runtime
    from tlp import DEFAULT_POLICY

    p = factory.partner("P CSIRT")
    eid = _exercise(client, auth, [p.uuid])
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    future = (utcnow() + timedelta(days=1)).isoformat()
    body = {"event": event("due", attributes=[attr("192.0.2.1")]), "send_at": past}
    _ok(
        client.post(
            f"/api/v1/admin/exercises/{eid}/injects", json={**body, "name": "due"}, headers=auth
        ),
        201,
    )
    body = {"event": event("later", attributes=[attr("192.0.2.2")]), "send_at": future}
    _ok(
        client.post(
            f"/api/v1/admin/exercises/{eid}/injects", json={**body, "name": "later"}, headers=auth
        ),
        201,
    )
    assert _sent(maker) == {"due": False, "later": False}
    done = run_due(maker, Runtime(settings=settings, policy=DEFAULT_POLICY))
    assert done["exercise-injects"] == 1
    assert _sent(maker) == {"due": True, "later": False}
    with session_scope(maker) as session:
        [stored] = session.scalars(select(Event).where(Event.exercise_id == eid)).all()
        assert stored.info == "EXERCISE: due"
    # a second round sends nothing again
    assert (
        run_due(maker, Runtime(settings=settings, policy=DEFAULT_POLICY))["exercise-injects"] == 0
    )


def _tickets(client: Any, key: str) -> dict[str, dict[str, Any]]:
    out = {}
    for via in ("", "?via=me"):
        items = _ok(client.get(f"/api/v1/notifications{via}", headers={"Authorization": key}))
        out.update({n["ticket"]: n for n in items["items"]})
    return out


def test_exercise_notifications_reach_only_the_participants_exercise_key(
    client, factory, auth, maker, sink, mailing
):
    p = factory.partner("P CSIRT", constituency=NET, contacts=[contact("desk@p.example")])
    n = factory.partner("N ISP", constituency=NET, contacts=[contact("desk@n.example")])
    real = {"P": factory.key(Role.PARTNER, p), "N": factory.key(Role.PARTNER, n)}
    eid = _exercise(client, auth, [p.uuid], real=True)
    p_exercise = _ok(
        client.post(f"/api/v1/admin/exercises/{eid}/keys", json={"partner": p.uuid}, headers=auth),
        201,
    )["key"]
    _inject(client, auth, eid, INJECT_IP, (utcnow() - timedelta(seconds=5)).isoformat())
    real_event = event("Real incident", attributes=[attr(REAL_IP)])
    _ok(client.post("/api/v1/events", json={"Event": real_event}, headers=auth), 201)
    run_due(maker, mailing)  # sends the inject, matches both events, mails

    with session_scope(maker) as session:
        notes = session.scalars(select(Notification)).all()
        by_scope = {(x.via_partner_id, x.exercise_id) for x in notes}
    # the exercise item: one notification, the participant's; the real one: both partners'
    assert by_scope == {(p.id, eid), (p.id, None), (n.id, None)}

    # e-mail: the participant alone gets the exercise's, prefixed; both get the real one
    mails = [(to, msg) for to, msg in sink.received]
    exercise_mails = [(to, m) for to, m in mails if INJECT_IP in text_of(m) + str(json_of(m))]
    assert [to for to, _ in exercise_mails] == [["desk@p.example"]]
    assert str(exercise_mails[0][1]["Subject"]).startswith("[OEFENING/EXERCISE] ")
    real_mails = [(to, m) for to, m in mails if REAL_IP in text_of(m)]
    assert sorted(to[0] for to, _ in real_mails) == ["desk@n.example", "desk@p.example"]
    assert not any("OEFENING" in str(m["Subject"]) for _, m in real_mails)
    assert len(mails) == 3
    # the text says so too: it is what a participant passes on (a black-box attack found the
    # subject alone marked)
    assert "OEFENING / EXERCISE" in text_of(exercise_mails[0][1])
    assert not any("OEFENING" in text_of(m) for _, m in real_mails)

    # REST: the exercise key sees the exercise's notification, marked, and nothing real
    seen = _tickets(client, p_exercise)
    assert len(seen) == 1
    [(ticket, note)] = seen.items()
    assert note["route"] == "via"
    assert INJECT_IP in str(note) and REAL_IP not in str(note)
    got = client.get(f"/api/v1/notifications/{ticket}", headers={"Authorization": p_exercise})
    assert got.status_code == 200 and INJECT_IP in got.text
    assert got.json()["exercise"] == eid  # marked as exercise traffic
    passed_on = client.get(
        f"/api/v1/notifications/{ticket}?via=me", headers={"Authorization": p_exercise}
    )
    assert passed_on.status_code == 200 and "OEFENING / EXERCISE" in passed_on.json()["text"]
    real_tickets = set()
    # real keys (the participant's own and the non-participant's) never see it
    for name, key in real.items():
        theirs = _tickets(client, key)
        assert ticket not in theirs, name
        assert len(theirs) == 1 and REAL_IP in str(theirs) and INJECT_IP not in str(theirs)
        real_tickets |= set(theirs)
        missing = client.get(f"/api/v1/notifications/{ticket}", headers={"Authorization": key})
        assert missing.status_code == 404, (name, missing.text)
        assert INJECT_IP not in missing.text and eid not in missing.text
        r = client.post(
            f"/api/v1/notifications/{ticket}/feedback",
            json={"kind": "ack"},
            headers={"Authorization": key},
        )
        assert r.status_code == 404, (name, r.text)

    # and the real notifications are no exercise key's: missing, as another's
    assert len(real_tickets) == 2
    for real_ticket in real_tickets:
        r = client.get(
            f"/api/v1/notifications/{real_ticket}", headers={"Authorization": p_exercise}
        )
        assert r.status_code == 404 and REAL_IP not in r.text


def test_real_constituencies_only_when_the_exercise_says_so(client, factory, auth, maker, settings):
    """By default an exercise item is matched against its participants' own registered
    targets only (a direct notification to the participant), never against the
    organisations they serve: no real constituent is named in an exercise. With
    ``match_real_constituencies`` the participants' constituencies are matched too; a
    non-participant's entries never are, either way."""
    from hub.runtime import Runtime
    from tlp import DEFAULT_POLICY

    p = factory.partner("P CSIRT", constituency=NET)
    q = factory.partner("Q ISP")  # a participant with a registered target of its own
    n = factory.partner("N ISP", constituency=NET)  # matches everything, takes no part
    for who in (q, n):
        _ok(
            client.put(
                f"/api/v1/admin/notifications/targets/{who.uuid}",
                json={"ip_prefixes": ["192.0.2.0/24"]},
                headers=auth,
            )
        )
    default = _exercise(client, auth, [p.uuid, q.uuid])
    wider = _exercise(client, auth, [p.uuid, q.uuid], real=True)
    now = (utcnow() - timedelta(seconds=5)).isoformat()
    for eid in (default, wider):
        body = {
            "name": "IOC drop",
            "event": event("IOCs", attributes=[attr(INJECT_IP), attr("192.0.2.7")]),
            "send_at": now,
        }
        _ok(client.post(f"/api/v1/admin/exercises/{eid}/injects", json=body, headers=auth), 201)
    now_settings = settings.model_copy(update={"notify_interval_seconds": 0})
    run_due(maker, Runtime(settings=now_settings, policy=DEFAULT_POLICY))
    with session_scope(maker) as session:
        notes = session.scalars(select(Notification)).all()
        found = {
            (x.exercise_id, x.route, x.recipient_partner_id or x.via_partner_id) for x in notes
        }
    assert found == {
        (default, "direct", q.id),  # Q's own target; P's constituency is not matched
        (wider, "direct", q.id),
        (wider, "via", p.id),  # with the flag: P's constituency too, through P
    }, found


def test_a_closed_exercise_mails_nothing_more(client, factory, auth, maker, sink, mailing):
    """A notification of an exercise closed before its mail went is withheld, not mailed."""
    p = factory.partner("P CSIRT", constituency=NET, contacts=[contact("desk@p.example")])
    eid = _exercise(client, auth, [p.uuid], real=True)
    _inject(client, auth, eid, INJECT_IP, (utcnow() - timedelta(seconds=5)).isoformat())
    no_mail = mailing.settings.model_copy(update={"smtp_host": None})
    run_due(maker, type(mailing)(settings=no_mail, policy=mailing.policy))
    with session_scope(maker) as session:
        assert session.scalars(select(Notification.exercise_id)).all() == [eid]
    _ok(client.post(f"/api/v1/admin/exercises/{eid}/close", json={}, headers=auth))
    run_due(maker, mailing)
    assert sink.received == []


def test_an_inject_that_cannot_be_stored_does_not_stop_the_worker(
    client, factory, auth, maker, settings
):
    """An inject refused by ingest (here: a marking the hub cannot read, which an exercise may
    not hold in quarantine) is taken off the schedule and recorded; the round goes on and a
    valid inject after it still goes out. Before, it failed every round, and the worker's
    other jobs with it."""
    from hub.models import AuditEntry
    from hub.runtime import Runtime
    from tlp import DEFAULT_POLICY

    p = factory.partner("P CSIRT")
    eid = _exercise(client, auth, [p.uuid])
    first = (utcnow() - timedelta(minutes=2)).isoformat()
    then = (utcnow() - timedelta(minutes=1)).isoformat()
    bad = event("unreadable", attributes=[attr("192.0.2.9")])
    bad["Tag"] = [{"name": "tlp:ultraviolet"}]
    for name, ev, at in (
        ("bad", bad, first),
        ("good", event("fine", attributes=[attr("192.0.2.10")]), then),
    ):
        body = {"name": name, "event": ev, "send_at": at}
        _ok(client.post(f"/api/v1/admin/exercises/{eid}/injects", json=body, headers=auth), 201)
    done = run_due(maker, Runtime(settings=settings, policy=DEFAULT_POLICY))
    assert done["exercise-injects"] == 2
    assert _sent(maker) == {"bad": False, "good": True}
    with session_scope(maker) as session:
        bad_row = session.scalars(select(ExerciseInject).where(ExerciseInject.name == "bad")).one()
        assert bad_row.send_at is None  # left for the controller to send by hand
        failed = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "exercise.inject-failed")
        ).all()
        assert len(failed) == 1 and failed[0].object_ref == f"exercise:{eid}"
    assert (
        run_due(maker, Runtime(settings=settings, policy=DEFAULT_POLICY))["exercise-injects"] == 0
    )


def test_scenario_targets_are_matched_for_their_exercise_only(
    client, factory, auth, maker, settings
):
    """A scenario's fictional constituent (hospital X's network, a participant's in the
    exercise only) makes the exercise's notification through that participant, by default;
    a non-participant whose real constituency covers it too gets nothing of the exercise, a
    real event in that network never meets the fictional entry, and another exercise's item
    does not either."""
    from hub.runtime import Runtime
    from tlp import DEFAULT_POLICY

    p = factory.partner("P CSIRT")  # no real entries at all
    n = factory.partner("N ISP", constituency={"ip_prefixes": ["192.0.2.0/24"]})
    body = {
        "name": "Hospital X",
        "participants": [p.uuid],
        "targets": {p.name: {"ip_prefixes": ["192.0.2.0/25"], "domains": ["hospital-x.example"]}},
    }
    eid = _ok(client.post("/api/v1/admin/exercises", json=body, headers=auth), 201)["uuid"]
    other = _exercise(client, auth, [p.uuid])  # no targets
    # a target for a non-participant is refused, naming the field
    bad = {**body, "targets": {n.name: {"ip_prefixes": ["192.0.2.0/24"]}}}
    r = client.post("/api/v1/admin/exercises", json=bad, headers=auth)
    assert r.status_code == 422 and r.json()["field"] == f"targets.{n.name}", r.text
    now = (utcnow() - timedelta(seconds=5)).isoformat()
    for ex in (eid, other):
        inject = {
            "name": "IOC",
            "event": event(
                "IOC", attributes=[attr("192.0.2.7"), attr("www.hospital-x.example", type="domain")]
            ),
            "send_at": now,
        }
        _ok(client.post(f"/api/v1/admin/exercises/{ex}/injects", json=inject, headers=auth), 201)
    real_event = event("Real", attributes=[attr("192.0.2.8")])
    _ok(client.post("/api/v1/events", json={"Event": real_event}, headers=auth), 201)
    now_settings = settings.model_copy(update={"notify_interval_seconds": 0})
    run_due(maker, Runtime(settings=now_settings, policy=DEFAULT_POLICY))
    with session_scope(maker) as session:
        notes = session.scalars(select(Notification)).all()
        found = {(x.exercise_id, x.route, x.via_partner_id) for x in notes}
    assert found == {(eid, "via", p.id), (None, "via", n.id)}, found
