"""Ingest: fixtures, round trip, MISP's update rule, versions, all-or-nothing, quarantine."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import service as audit
from hub.models import Attribute, AuditEntry, Event, EventObject, EventVersion, QuarantineItem
from hub.vocabulary import Role
from tests.builders import attr, event

FIXTURES = Path(__file__).parents[2] / "fixtures"
MISP_FILES = sorted((FIXTURES / "misp" / "events").glob("*.json"))
STIX_FILES = sorted((FIXTURES / "stix").glob("*.json"))
STIX_QUARANTINED = {"schemas-interop-objectmarking-test.json", "tlp2-extension-definition.json"}
URL = "/api/v1/events"


def counts(maker: sessionmaker[Session]) -> tuple[int, ...]:
    with maker() as s:
        return tuple(
            s.scalar(select(func.count()).select_from(m)) or 0
            for m in (Event, Attribute, EventObject, EventVersion, QuarantineItem)
        )


@pytest.fixture
def source(factory):
    partner = factory.partner("CSIRT-A", type="sectoral-csirt")
    return partner, {"Authorization": factory.key(Role.PARTNER, partner)}


def submit(client: TestClient, headers: dict, body, *, stix: bool = False):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    media = "application/stix+json" if stix else "application/json"
    return client.post(URL, content=content, headers={**headers, "Content-Type": media})


class TestFixtures:
    @pytest.mark.parametrize("path", MISP_FILES, ids=lambda p: p.name)
    def test_every_misp_fixture_is_stored(self, client, source, maker, path: Path) -> None:
        r = submit(client, source[1], path.read_bytes())
        assert r.status_code == 201, r.text
        assert r.json()["stored"] and not r.json()["quarantined"]
        with maker() as s:
            assert audit.verify(s).ok

    @pytest.mark.parametrize("path", STIX_FILES, ids=lambda p: p.name)
    def test_every_stix_fixture_is_stored_or_quarantined(self, client, source, maker, path) -> None:
        r = submit(client, source[1], path.read_bytes(), stix=True)
        assert r.status_code == 201, r.text
        if path.name in STIX_QUARANTINED:
            assert r.json()["quarantined"] and not r.json()["stored"]
            assert counts(maker)[0] == 0
        else:
            assert r.json()["stored"], r.json()

    def test_misp_round_trip_keeps_the_content(self, client, source, auth) -> None:
        """What goes in comes back, apart from the documented normalisation."""
        raw = json.loads((FIXTURES / "misp/events/pymisp-mainly_objects_1.json").read_bytes())
        submit(client, source[1], raw)
        stored = client.get(
            f"/api/v1/admin/events/{raw['Event']['uuid']}/versions/1", headers=auth
        ).json()["Event"]
        original = raw["Event"]
        assert stored["info"] == original["info"] and stored["uuid"] == original["uuid"]
        assert stored["Orgc"]["name"] == "CSIRT-A"  # a partner's submission is the partner's
        assert len(stored["Object"]) == len(original["Object"])
        for before, after in zip(original["Object"], stored["Object"], strict=True):
            assert after["uuid"] == before["uuid"] and after["name"] == before["name"]
            assert [
                (a["uuid"], a["type"], str(a["value"]), a["object_relation"])
                for a in after["Attribute"]
            ] == [
                (a["uuid"], a["type"], str(a["value"]), a["object_relation"])
                for a in before["Attribute"]
            ]
            assert [r["referenced_uuid"] for r in after["ObjectReference"]] == [
                r["referenced_uuid"] for r in before.get("ObjectReference", [])
            ]
        assert "id" not in stored and all("id" not in o for o in stored["Object"])


def _attribute_keys(event: dict) -> set[tuple]:
    attrs = list(event.get("Attribute") or [])
    attrs += [a for o in event.get("Object") or [] for a in o.get("Attribute") or []]
    return sorted((a.get("uuid", "generated"), a["type"], str(a["value"])) for a in attrs)


@pytest.mark.parametrize(
    "path", [p for p in MISP_FILES if "search_index" not in p.name], ids=lambda p: p.name
)
def test_every_misp_fixture_round_trips(client, source, auth, path) -> None:
    raw = json.loads(path.read_bytes())
    original = raw["response"][0] if "response" in raw else raw
    original = original.get("Event", original)
    uuid = submit(client, source[1], raw).json()["stored"][0]
    stored = client.get(f"/api/v1/admin/events/{uuid}/versions/1", headers=auth).json()["Event"]
    if "uuid" not in original:  # the hub gives an event without uuids its own, as MISP does
        for a in original.get("Attribute", []):
            a.setdefault("uuid", "generated")
        for a in stored["Attribute"]:
            a["uuid"] = "generated"
    assert _attribute_keys(stored) == _attribute_keys(original)
    assert {t["name"] for t in original.get("Tag") or []} <= {t["name"] for t in stored["Tag"]}


def test_cli_ingest(settings, monkeypatch, maker, hub_org, tmp_path) -> None:
    from typer.testing import CliRunner

    from hub.cli import app as cli
    from hub.settings import get_settings

    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    try:
        files = [
            str(FIXTURES / "misp/events/pymisp-long_event.json"),
            str(FIXTURES / "stix/misp-stix-test-event2-stix21.json"),
            str(FIXTURES / "stix/schemas-interop-objectmarking-test.json"),
        ]
        result = CliRunner().invoke(cli, ["ingest", *files])
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.output.splitlines()]
        assert [line["status"] for line in lines] == ["stored", "stored", "quarantined"]
        again = CliRunner().invoke(cli, ["ingest", files[0]])
        assert json.loads(again.output)["status"] == "unchanged"
    finally:
        get_settings.cache_clear()
    with maker() as s:
        assert s.scalar(select(func.count(Event.id))) == 2


class TestUpdates:
    def test_newer_is_accepted_older_and_equal_are_not(self, client, source, maker, auth) -> None:
        body = event(timestamp=1_800_000_000)
        uuid = body["Event"]["uuid"]
        assert submit(client, source[1], body).json()["stored"] == [uuid]
        for stamp in (1_800_000_000, 1_700_000_000):
            stale = copy.deepcopy(body)
            stale["Event"]["timestamp"] = str(stamp)
            stale["Event"]["info"] = "changed"
            before = counts(maker)
            r = submit(client, source[1], stale)
            assert r.status_code == 200
            assert r.json()["items"][0]["status"] == "unchanged"
            assert "not newer" in r.json()["items"][0]["detail"]
            assert counts(maker) == before
        newer = copy.deepcopy(body)
        newer["Event"]["timestamp"] = "1800000100"
        newer["Event"]["info"] = "changed"
        newer["Event"]["Attribute"] = [attr("203.0.113.9")]
        r = submit(client, source[1], newer)
        assert r.json()["items"][0] == {"uuid": uuid, "status": "updated", "version": 2}
        versions = client.get(f"/api/v1/admin/events/{uuid}/versions", headers=auth).json()["items"]
        assert [v["version"] for v in versions] == [1, 2]
        assert versions[1]["changes"]["new"] == 1 and versions[1]["changes"]["updated"] == 0
        v2 = client.get(f"/api/v1/admin/events/{uuid}/versions/2", headers=auth).json()["Event"]
        assert v2["info"] == "changed" and len(v2["Attribute"]) == 2  # an edit is a merge
        v1 = client.get(f"/api/v1/admin/events/{uuid}/versions/1", headers=auth).json()["Event"]
        assert v1["info"] == "test event" and len(v1["Attribute"]) == 1

    def test_unchanged_reingest_writes_no_row(self, client, source, maker) -> None:
        body = event()
        submit(client, source[1], body)
        with maker() as s:
            entries = s.scalar(select(func.count(AuditEntry.seq)))
        before = counts(maker)
        r = submit(client, source[1], body)
        assert r.status_code == 200 and r.json()["unchanged"] == [body["Event"]["uuid"]]
        assert counts(maker) == before
        with maker() as s:
            assert s.scalar(select(func.count(AuditEntry.seq))) == entries

    def test_soft_delete_is_kept_and_hidden_from_partners(self, client, source, factory) -> None:
        keep, gone = attr("192.0.2.1"), attr("192.0.2.2")
        body = event(attributes=[keep, gone], timestamp=1_800_000_000)
        submit(client, source[1], body)
        had_it = {"Authorization": factory.key(Role.PARTNER, factory.partner())}
        first = client.get(f"{URL}/{body['Event']['uuid']}", headers=had_it).json()["Event"]
        assert {a["uuid"] for a in first["Attribute"]} == {keep["uuid"], gone["uuid"]}
        edit = copy.deepcopy(body)
        edit["Event"]["timestamp"] = "1800000001"
        deleted = dict(gone, deleted=True, timestamp="1800000001")
        edit["Event"]["Attribute"] = [deleted]
        submit(client, source[1], edit)
        newcomer = {"Authorization": factory.key(Role.PARTNER, factory.partner())}
        for reader in (had_it, newcomer):
            got = client.get(f"{URL}/{body['Event']['uuid']}", headers=reader).json()["Event"]
            assert [a["uuid"] for a in got["Attribute"]] == [keep["uuid"]]
        # The deletion goes to who had the element; for anyone else it never existed.
        with_deleted = client.get(
            f"{URL}/{body['Event']['uuid']}?include_deleted=true", headers=had_it
        ).json()["Event"]
        flags = {a["uuid"]: a.get("deleted", False) for a in with_deleted["Attribute"]}
        assert flags == {keep["uuid"]: False, gone["uuid"]: True}
        unseen = client.get(
            f"{URL}/{body['Event']['uuid']}?include_deleted=true", headers=newcomer
        ).json()["Event"]
        assert [a["uuid"] for a in unseen["Attribute"]] == [keep["uuid"]]

    def test_another_organisation_cannot_change_an_event(self, client, source, factory) -> None:
        body = event()
        submit(client, source[1], body)
        other = {"Authorization": factory.key(Role.PARTNER, factory.partner())}
        newer = copy.deepcopy(body)
        newer["Event"]["timestamp"] = str(int(body["Event"]["timestamp"]) + 10)
        r = submit(client, other, newer)
        assert r.status_code == 403

    def test_an_attribute_uuid_of_another_event_is_refused(self, client, source, maker) -> None:
        shared = attr("192.0.2.7")
        submit(client, source[1], event(attributes=[shared]))
        before = counts(maker)
        r = submit(client, source[1], event(attributes=[dict(shared)]))
        assert r.status_code == 422 and "in use elsewhere" in r.json()["detail"]
        assert counts(maker) == before


class TestBadInput:
    @pytest.mark.parametrize(
        ("mutate", "field"),
        [
            (lambda e: e.pop("info"), "Event.info"),
            (lambda e: e["Attribute"][0].update(type="no-such-type"), "Event.Attribute.0.type"),
            (lambda e: e["Attribute"][0].update(value=""), "Event.Attribute.0.value"),
            (lambda e: e["Attribute"][0].update(uuid="nope"), "Event.Attribute.0.uuid"),
            (lambda e: e.update(distribution="9"), "Event.distribution"),
            (lambda e: e.update(Attribute="many"), "Event.Attribute"),
            (lambda e: e["Attribute"][0].update(category="Gossip"), "Event.Attribute.0.category"),
            (lambda e: e.update(Tag=[{"colour": "#fff"}]), "Event.Tag.0"),
        ],
    )
    def test_names_the_field(self, client, source, maker, mutate, field) -> None:
        body = event()
        mutate(body["Event"])
        before = counts(maker)
        r = submit(client, source[1], body)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert counts(maker) == before

    def test_a_broken_event_in_a_batch_of_ten_writes_none(self, client, source, maker) -> None:
        batch = [event(info=f"event {i}") for i in range(10)]
        batch[7]["Event"]["Attribute"][0]["type"] = "bogus"
        before = counts(maker)
        r = submit(client, source[1], batch)
        assert r.status_code == 422
        assert r.json()["field"] == "7.Event.Attribute.0.type"
        assert counts(maker) == before
        assert submit(client, source[1], batch[:7]).status_code == 201
        assert counts(maker)[0] == 7

    @pytest.mark.parametrize(
        ("content", "media", "status"),
        [
            (b"{not json", "application/json", 400),
            (b"[]", "application/json", 422),
            (b'"just a string"', "application/json", 422),
            (b'{"type": "bundle", "objects": []}', "application/json", 422),
            (b'{"objects": [{"no": "id"}]}', "application/stix+json", 422),
            (b"<xml/>", "application/xml", 415),
        ],
    )
    def test_malformed_bodies(self, client, source, maker, content, media, status) -> None:
        before = counts(maker)
        r = client.post(URL, content=content, headers={**source[1], "Content-Type": media})
        assert r.status_code == status, r.text
        assert counts(maker) == before

    def test_over_size_body_is_413(self, client, source, maker) -> None:
        huge = event(attributes=[attr("192.0.2.1", comment="x" * (5 * 1024 * 1024))])
        r = submit(client, source[1], huge)
        assert r.status_code == 413
        assert counts(maker)[0] == 0

    def test_a_crash_between_steps_leaves_no_partial_event(
        self, client, source, maker, monkeypatch
    ) -> None:
        from hub.intel import versions

        def boom(*args, **kwargs):
            raise RuntimeError("disk full")

        monkeypatch.setattr(versions, "write_sightings", boom)
        body = event()
        body["Event"]["Attribute"][0]["Sighting"] = [
            {
                "uuid": "0e6e6f3c-4c35-4d2b-9f3e-1a1a1a1a1a1a",
                "date_sighting": "1700000000",
                "type": "0",
            }
        ]
        before = counts(maker)
        with pytest.raises(RuntimeError):
            submit(client, source[1], body)
        assert counts(maker) == before

    def test_submitters_must_be_active_and_have_accepted_tlp(self, client, factory) -> None:
        from hub.vocabulary import PartnerStatus

        for partner in (
            factory.partner(tlp=False),
            factory.partner(status=PartnerStatus.ONBOARDING),
        ):
            key = factory.key(Role.PARTNER, partner)
            r = submit(client, {"Authorization": key}, event())
            assert r.status_code == 403

    def test_auditors_cannot_submit(self, client, factory) -> None:
        r = submit(client, {"Authorization": factory.key(Role.AUDITOR)}, event())
        assert r.status_code == 403


class TestQuarantine:
    def test_unknown_marking_is_held_then_released_with_a_label(
        self, client, source, maker, auth
    ) -> None:
        body = event(tlp="yellow")
        r = submit(client, source[1], body)
        assert r.status_code == 201
        assert r.json()["quarantined"] == [body["Event"]["uuid"]]
        assert counts(maker)[0] == 0
        held = client.get("/api/v1/admin/quarantine?status=held", headers=auth).json()["items"]
        assert len(held) == 1 and "tlp:yellow" in json.dumps(held[0]["problems"])
        r = client.post(
            f"/api/v1/admin/quarantine/{held[0]['uuid']}/release",
            headers=auth,
            json={"reason": "source confirmed amber", "label": "amber"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["items"][0]["status"] == "stored"
        with maker() as s:
            stored = s.scalar(select(Event))
            assert stored is not None and stored.tlp_rank == 2
        again = client.post(
            f"/api/v1/admin/quarantine/{held[0]['uuid']}/reject",
            headers=auth,
            json={"reason": "too late"},
        )
        assert again.status_code == 409

    def test_reject_keeps_it_out(self, client, source, maker, auth) -> None:
        submit(client, source[1], event(tlp="amber-ish"))
        item = client.get("/api/v1/admin/quarantine", headers=auth).json()["items"][0]
        r = client.post(
            f"/api/v1/admin/quarantine/{item['uuid']}/reject",
            headers=auth,
            json={"reason": "not a TLP label we use"},
        )
        assert r.status_code == 200 and r.json()["quarantine"]["status"] == "rejected"
        assert counts(maker)[0] == 0
        with maker() as s:
            actions = [e.action for e in s.scalars(select(AuditEntry))]
        assert "quarantine" in actions and "quarantine.rejected" in actions

    def test_a_held_events_uuid_is_reserved_for_its_source(
        self, client, source, factory, maker, auth
    ) -> None:
        """Another organisation submitting a held event's uuid is refused as for another
        organisation's stored event (naming nothing, audited), on REST and ``/misp``, and
        the source's release is neither blocked nor overwritten."""
        held = event("held: unknown marking", tlp="yellow", attributes=[attr("198.51.100.80")])
        assert submit(client, source[1], held).json()["quarantined"] == [held["Event"]["uuid"]]
        stored = event("stored", attributes=[attr("198.51.100.81")])
        assert submit(client, source[1], stored).status_code == 201
        other = factory.partner("Squatter", type="isp")
        rest_key = {"Authorization": factory.key(Role.PARTNER, other)}
        sync_key = {"Authorization": factory.key(Role.SYNC, other)}

        def refusals(uuid: str) -> list[tuple[int, str]]:
            mine = event("squat", attributes=[attr("203.0.113.9")], uuid=uuid)
            answers = [
                submit(client, rest_key, mine),
                submit(client, rest_key, [event("mine too"), mine]),
                client.post("/misp/events/add", json=mine, headers=sync_key),
            ]
            return [(r.status_code, r.text.replace(uuid, "UUID")) for r in answers]

        as_stored = refusals(stored["Event"]["uuid"])
        assert [status for status, _ in as_stored] == [403, 403, 403]
        assert refusals(held["Event"]["uuid"]) == as_stored
        with maker() as s:
            refused = s.scalars(
                select(AuditEntry).where(AuditEntry.action == "submit.refused")
            ).all()
        assert len(refused) == 6 and all(e.recipient_uuid == other.uuid for e in refused)
        assert counts(maker)[0] == 1  # only the source's stored event
        item = client.get("/api/v1/admin/quarantine?status=held", headers=auth).json()["items"]
        r = client.post(
            f"/api/v1/admin/quarantine/{item[0]['uuid']}/release",
            headers=auth,
            json={"reason": "source confirmed amber", "label": "amber"},
        )
        assert r.status_code == 200 and r.json()["items"][0]["status"] == "stored", r.text
        with maker() as s:
            released = s.scalar(select(Event).where(Event.uuid == held["Event"]["uuid"]))
            assert released is not None and released.source_partner_id == source[0].id
            values = s.scalars(select(Attribute.value).where(Attribute.event_id == released.id))
            assert list(values) == ["198.51.100.80"]

    def test_a_held_events_element_uuids_are_reserved_for_its_source(
        self, client, source, factory, maker, auth
    ) -> None:
        """An attribute uuid of another organisation's held event is refused as one of a
        stored event would be (422 naming the field, nothing of the other event), and the
        source's release then stores it."""
        held_attr = attr("198.51.100.82")
        held = event("held", tlp="yellow", attributes=[held_attr])
        assert submit(client, source[1], held).json()["quarantined"] == [held["Event"]["uuid"]]
        stored_attr = attr("198.51.100.83")
        assert submit(client, source[1], event(attributes=[stored_attr])).status_code == 201
        rest_key = {"Authorization": factory.key(Role.PARTNER, factory.partner("Squatter"))}

        def claim(uuid: str) -> tuple[int, str]:
            mine = event("squat", attributes=[attr("203.0.113.9", uuid=uuid)])
            r = submit(client, rest_key, mine)
            return r.status_code, r.text.replace(mine["Event"]["uuid"], "UUID")

        as_stored = claim(stored_attr["uuid"])
        assert as_stored[0] == 422 and "Event.Attribute" in as_stored[1]
        assert claim(held_attr["uuid"]) == as_stored
        assert counts(maker)[0] == 1
        item = client.get("/api/v1/admin/quarantine?status=held", headers=auth).json()["items"]
        r = client.post(
            f"/api/v1/admin/quarantine/{item[0]['uuid']}/release",
            headers=auth,
            json={"reason": "source confirmed amber", "label": "amber"},
        )
        assert r.status_code == 200 and r.json()["items"][0]["status"] == "stored", r.text
        with maker() as s:
            row = s.scalar(select(Attribute).where(Attribute.uuid == held_attr["uuid"]))
            assert row is not None and row.value == "198.51.100.82"

    def test_a_held_bundle_reserves_the_event_it_converts_to(
        self, client, source, factory, maker
    ) -> None:
        """A held STIX bundle reserves the uuid of the event it converts to (misp-stix names
        the event after the bundle) and its elements' uuids: another organisation claiming
        them is refused as for stored ones."""
        bundle = json.loads((FIXTURES / "stix" / "misp-stix-test-event2-stix21.json").read_text())
        converted = "0d6f2c1e-4b5a-4c3d-9e8f-7a6b5c4d3e2f"
        bundle["id"] = f"bundle--{converted}"
        indicator = next(o for o in bundle["objects"] if o["type"] == "indicator")
        indicator["object_marking_refs"] = [
            "marking-definition--00000000-0000-4000-8000-000000000001"  # cannot be resolved
        ]
        r = submit(client, source[1], json.dumps(bundle).encode(), stix=True)
        assert r.status_code == 201 and r.json()["quarantined"], r.text
        rest_key = {"Authorization": factory.key(Role.PARTNER, factory.partner("Squatter"))}
        stored = event("stored", attributes=[attr("198.51.100.84")])
        assert submit(client, source[1], stored).status_code == 201

        def claim(uuid: str) -> tuple[int, str]:
            r = submit(
                client, rest_key, event("squat", attributes=[attr("203.0.113.9")], uuid=uuid)
            )
            return r.status_code, r.text.replace(uuid, "UUID")

        assert claim(converted) == claim(stored["Event"]["uuid"])
        assert claim(converted)[0] == 403
        taken = attr("203.0.113.10", uuid=indicator["id"].split("--")[1])
        r = submit(client, rest_key, event("squat attribute", attributes=[taken]))
        assert r.status_code == 422 and r.json()["field"] == "Event.Attribute", r.text
        assert counts(maker)[0] == 1

    def test_partners_cannot_see_the_quarantine(self, client, source) -> None:
        assert client.get("/api/v1/admin/quarantine", headers=source[1]).status_code == 403
