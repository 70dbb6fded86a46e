"""Drafts (``hub.intel.drafts``): a new event's version is built before the unit of work,
and what it stores is exactly what building it in the unit stores; a draft that no longer
fits (the event was stored meanwhile, another creator) is ignored, never trusted."""

from __future__ import annotations

import copy
import uuid as uuid_mod
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import tlp
from hub.db import session_scope
from hub.intel import service
from hub.intel.submission import parse_misp_payload
from hub.models import Attribute, Event, EventObject, EventVersion, Partner, Sighting
from hub.vocabulary import Role
from tests.builders import attr, event

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "misp" / "events").glob("*.json"))
_NOT_COMPARED = {"id", "event_id", "changed_at", "created_at"}  # ids, write times


def _stored(session: Session, uuid: str) -> dict[str, Any]:
    """Everything the unit wrote for an event, without database ids and write times."""
    row = session.scalar(select(Event).where(Event.uuid == uuid))
    assert row is not None
    version = session.scalar(select(EventVersion).where(EventVersion.event_id == row.id))

    def plain(obj: Any) -> dict[str, Any]:
        return {
            c.key: getattr(obj, c.key) for c in obj.__table__.columns if c.key not in _NOT_COMPARED
        }

    def rows(model: Any) -> list[dict[str, Any]]:
        found = session.scalars(select(model).where(model.event_id == row.id).order_by(model.id))
        return [plain(r) for r in found]

    return {
        "event": plain(row),
        "attributes": rows(Attribute),
        "objects": rows(EventObject),
        "sightings": rows(Sighting),
        "snapshot": orjson.loads(zlib.decompress(version.snapshot)),
        "changes": version.changes,
        "content_hash": version.content_hash,
    }


def _differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two stored states differ (a readable failure instead of two huge dicts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in a.keys() | b.keys() for d in _differences(a.get(k), b.get(k), f"{where}.{k}")
        ]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{where}.{i}")
        ]
    return [] if a == b else [f"{where}: {a!r:.200} != {b!r:.200}"]


def _ingest(session: Session, prepared: service.Prepared, source: Partner) -> list[Any]:
    return service.ingest_events(
        session,
        payloads=prepared,
        source=source,
        actor="test",
        channel="rest",
        policy=tlp.DEFAULT_POLICY,
    )


def _with_sighting(payloads: list[Any]) -> None:
    first = payloads[0].get("Event", payloads[0])
    for a in first.get("Attribute") or []:
        a["Sighting"] = [
            {"uuid": str(uuid_mod.uuid4()), "type": "0", "date_sighting": "1700000000"}
        ]
        break


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_a_drafted_event_is_stored_as_the_unit_would_build_it(
    maker: sessionmaker[Session], factory: Any, backend: str, path: Path
) -> None:
    source = factory.partner("Drafting CSIRT", type="sectoral-csirt")
    payloads = parse_misp_payload(path.read_bytes())
    _with_sighting(payloads)
    # Normalised once, so that what normalising makes up (a missing uuid) is the same twice.
    fixed = [i.event for i in service.prepare_events(payloads, now=1_800_000_000).items]
    uuids = [e["uuid"] for e in fixed]
    seen = []
    for drafted in (True, False):
        prepared = service.prepare_events(copy.deepcopy(fixed), now=1_800_000_000)
        if drafted:
            service.draft_new_events(
                prepared, source=source, policy=tlp.DEFAULT_POLICY, sqlite=backend == "sqlite"
            )
            assert all(i.draft is not None and i.draft.new is not None for i in prepared.items)
        with maker() as session, session.begin():
            unit_source = session.get(Partner, source.id)
            outcomes = _ingest(session, prepared, unit_source)
            session.flush()
            seen.append(([o.status for o in outcomes], [_stored(session, u) for u in uuids]))
            session.rollback()  # the other way next, on the same empty store
    assert _differences(seen[0], seen[1]) == []
    assert seen[0][0] == ["stored"] * len(uuids)


def test_rest_submission_of_a_new_event_builds_no_rows_in_the_unit(
    client: Any, factory: Any, maker: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CPU work of a new event is done before SQLite's write lock is taken: the unit
    never reaches the in-unit builder (``write_version``)."""
    partner = factory.partner("Fast CSIRT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, partner)

    def built_in_unit(*_a: Any, **_k: Any) -> None:
        raise AssertionError("rows built inside the unit of work")

    monkeypatch.setattr(service, "write_version", built_in_unit)
    body = event("drafted", attributes=[attr("198.51.100.7"), attr("evil.example", type="domain")])
    r = client.post("/api/v1/events", json=body, headers={"Authorization": key})
    assert r.status_code == 201, r.text
    with maker() as s:
        stored = s.scalar(select(Event).where(Event.uuid == body["Event"]["uuid"]))
        assert stored is not None and stored.attribute_count == 2
        assert stored.orgc_uuid == partner.uuid


def test_a_draft_for_an_event_stored_meanwhile_is_not_used(
    maker: sessionmaker[Session], factory: Any, backend: str
) -> None:
    """Between the draft and the unit another submission stored the event: the unit merges
    into the stored version (an edit), as without a draft."""
    source = factory.partner("Second CSIRT", type="sectoral-csirt")
    first = event(
        "first", attributes=[attr("198.51.100.1", timestamp="1700000000")], timestamp=1_700_000_000
    )
    later = copy.deepcopy(first)
    later["Event"]["timestamp"] = "1700000100"
    later["Event"]["Attribute"] = [attr("198.51.100.2", timestamp="1700000100")]
    prepared = service.prepare_events([later])
    service.draft_new_events(
        prepared, source=source, policy=tlp.DEFAULT_POLICY, sqlite=backend == "sqlite"
    )
    with session_scope(maker) as session:
        _ingest(session, service.prepare_events([first]), session.get(Partner, source.id))
    with session_scope(maker) as session:
        [outcome] = _ingest(session, prepared, session.get(Partner, source.id))
        assert (outcome.status, outcome.version) == ("updated", 2)
        values = set(
            session.scalars(
                select(Attribute.value).join(Event).where(Event.uuid == first["Event"]["uuid"])
            )
        )
        assert values == {"198.51.100.1", "198.51.100.2"}  # merged, not replaced by the draft


def test_a_draft_made_for_another_creator_is_not_used(
    maker: sessionmaker[Session], factory: Any, hub_org: Partner, backend: str
) -> None:
    drafted_for = factory.partner("Someone else", type="isp")
    body = event("whose", attributes=[attr("198.51.100.3")])
    prepared = service.prepare_events([body])
    service.draft_new_events(
        prepared, source=drafted_for, policy=tlp.DEFAULT_POLICY, sqlite=backend == "sqlite"
    )
    with session_scope(maker) as session:
        [outcome] = _ingest(session, prepared, session.get(Partner, hub_org.id))
        assert outcome.status == "stored"
        stored = session.scalar(select(Event).where(Event.uuid == body["Event"]["uuid"]))
        assert stored is not None
        assert (stored.orgc_uuid, stored.source_partner_id) == (hub_org.uuid, hub_org.id)


def test_a_bad_sighting_found_while_drafting_is_still_a_422_naming_it(
    client: Any, factory: Any, maker: sessionmaker[Session]
) -> None:
    partner = factory.partner("Sighting CSIRT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, partner)
    bad = attr("198.51.100.9")
    bad["Sighting"] = [{"type": "7", "date_sighting": "1"}]
    body = event("bad sighting", attributes=[bad])
    r = client.post("/api/v1/events", json=body, headers={"Authorization": key})
    assert r.status_code == 422, r.text
    assert "Sighting" in r.text
    with maker() as s:
        assert s.scalar(select(Event.id).where(Event.uuid == body["Event"]["uuid"])) is None
