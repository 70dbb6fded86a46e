"""A retraction reaches exactly the recipients that received what was withdrawn: a notification
recipient, a TAXII poller (taxii2-client), a partner MISP the hub pushes to (a second hub as the
remote, over HTTP) and nobody else; each is recorded and shown by the forward lineage query."""

from __future__ import annotations

import hashlib
import json
import uuid as uuid_mod
from typing import Any

import orjson
from prov.model import ProvDocument
from sqlalchemy import select

from hub.db import session_scope
from hub.intel import stix
from hub.intel.snapshots import current_state
from hub.models import AuditEntry, Event, Notification
from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.connections.conftest import add_connection, run
from tests.hub.taxii.conftest import collection
from tests.hub.taxii.test_client import content


def _audited(maker: Any, action: str) -> set[str]:
    with session_scope(maker, write=False) as session:
        return set(
            session.scalars(select(AuditEntry.recipient_uuid).where(AuditEntry.action == action))
        )


def _remote_attribute(remote: Any, event_uuid: str, attribute_uuid: str) -> dict[str, Any]:
    with session_scope(remote.maker, write=False) as session:
        row = session.scalar(select(Event).where(Event.uuid == event_uuid))
        return next(
            a for a in current_state(session, row)["Attribute"] if a["uuid"] == attribute_uuid
        )


def test_deleting_upstream_corrects_exactly_the_affected_recipients(
    client, factory, desk, maker, auth, remote, server_url, hub_org
) -> None:
    source = hub_org  # the remote hub takes pushes of our own organisation's events only
    isp = factory.partner("ISP", constituency={"ip_prefixes": ["10.2.0.0/16"]})
    poller = factory.partner("TAXII poller")  # core: may see AMBER
    narrow = factory.partner("Narrow", tier="connection")  # GREEN at most: never had it
    pushed = factory.partner("Partner MISP", type="sectoral-csirt")
    factory.partner("Bystander", constituency={"ip_prefixes": ["11.0.0.0/8"]})
    keep = attr("10.3.0.1", timestamp="1700000001")
    gone = attr("10.2.0.2", "amber", timestamp="1700000001")
    # distribution 2: a pushing MISP does not push "this community only" (1)
    ev = event("two IPs", attributes=[keep, gone], timestamp=1_700_000_001, distribution=2)
    uuid = ev["Event"]["uuid"]
    desk.ingest(source, ev)
    desk.drain()

    # Version 1 goes out: a notification to the ISP, TAXII polls, a MISP push, REST fetches.
    isp_key = factory.key(Role.PARTNER, isp)
    notes = client.get("/api/v1/notifications?via=me", headers={"Authorization": isp_key})
    assert [o["value"] for o in notes.json()["items"][0]["observations"]] == ["10.2.0.2"]
    polls = {}
    for who in (poller, narrow):
        coll = collection(server_url, factory.key(Role.SYNC, who), "all")
        got = content([coll.get_objects()])
        polls[who.uuid] = (coll, max(m["date_added"] for m in coll.get_manifest()["objects"]))
        assert any(o["id"].endswith(gone["uuid"]) for o in got) == (who is poller)
    narrow_get = client.get(
        f"/api/v1/events/{uuid}", headers={"Authorization": factory.key(Role.PARTNER, narrow)}
    )
    assert [a["uuid"] for a in narrow_get.json()["Event"]["Attribute"]] == [keep["uuid"]]
    push = add_connection(
        maker, name="partner", kind="misp-push", url=remote.misp_url, partner=pushed, key=remote.key
    )
    assert run(maker, push).stats.get("added") == 1
    assert not _remote_attribute(remote, uuid, gone["uuid"]).get("deleted")

    # Upstream deletes the AMBER attribute.
    edit = event(
        uuid=uuid,
        timestamp=1_700_000_100,
        distribution=2,
        attributes=[{**gone, "deleted": True, "timestamp": "1700000100"}],
    )
    desk.ingest(source, edit)
    desk.drain()

    # Recorded for exactly those who had it, each on its own route.
    assert _audited(maker, "release.retract") == {poller.uuid, pushed.uuid}
    assert _audited(maker, "notify.retract") == {isp.uuid}
    forward = client.get(f"/api/v1/admin/lineage/items/{uuid}", headers=auth).json()
    routes = {(r["recipient"], r.get("via") or "notification") for r in forward["retractions"]}
    assert routes == {
        (isp.uuid, "notification"),
        (poller.uuid, "taxii"),
        (pushed.uuid, "misp-push"),
    }
    by_route = {r.get("via"): r for r in forward["retractions"]}
    releases: dict[tuple[str, str], list[int]] = {}
    for x in forward["releases"]:
        releases.setdefault((x["recipient"], x["channel"]), []).append(x["audit_seq"])
    assert by_route["taxii"]["corrects"] == sorted(
        releases[(poller.uuid, "taxii")]
    )  # objects, manifest
    # the push as sent (decided again just before sending), not its first decision
    assert by_route["misp-push"]["corrects"] == [max(releases[(pushed.uuid, "misp-sync")])]
    assert by_route["misp-push"]["elements"] == [gone["uuid"]]
    arts = {(a["kind"], a["version"]) for a in forward["graph"]["artifacts"]}
    assert ("release", 1) in arts  # the corrected releases, derived from version 1
    prov = client.get(f"/api/v1/admin/lineage/items/{uuid}?format=prov-json", headers=auth)
    doc = ProvDocument.deserialize(content=json.dumps(prov.json()), format="json")
    assert sum(1 for r in doc.get_records() if "retract" in str(r)) >= 3

    # Each gets its correction through its own channel.
    coll, mark = polls[poller.uuid]
    revoked = [o for o in content([coll.get_objects(added_after=mark)]) if o.get("revoked")]
    assert revoked and all(
        o["id"].endswith(gone["uuid"]) or o["type"] == "relationship" for o in revoked
    )
    coll, mark = polls[narrow.uuid]
    assert not [o for o in content([coll.get_objects(added_after=mark)]) if o.get("revoked")]
    assert run(maker, push).stats.get("edited") == 1
    assert _remote_attribute(remote, uuid, gone["uuid"])["deleted"] is True
    after = client.get("/api/v1/notifications?via=me", headers={"Authorization": isp_key})
    assert after.json()["items"][0]["corrections"][0]["kind"] == "retraction"


def test_backward_query_reaches_the_submission_and_the_converter(
    client, factory, desk, maker, auth
) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    factory.partner("ISP", constituency={"ip_prefixes": ["10.0.0.0/8"]})
    body = orjson.dumps(_bundle("10.4.0.1"))
    r = client.post(
        "/api/v1/events",
        content=body,
        headers={
            "Authorization": factory.key(Role.PARTNER, source),
            "Content-Type": "application/stix+json",
        },
    )
    assert r.status_code == 201, r.text
    desk.drain()
    with session_scope(maker, write=False) as session:
        ticket = session.scalar(select(Notification.ticket))
    graph = client.get(f"/api/v1/admin/lineage/notifications/{ticket}", headers=auth).json()
    graph = graph["graph"]
    acts = {a["kind"]: a for a in graph["activities"]}
    ingest, convert = acts["ingest"], acts["convert"]
    assert ingest["on_behalf_of"] == convert["on_behalf_of"] == source.uuid
    assert ingest["agent"].startswith("key:") and ingest["plan"] == "ingest:rest"
    assert convert["plan"] == stix.CONVERTER and convert["plan"].startswith("misp-stix@")
    [submission] = [a for a in graph["artifacts"] if a["kind"] == "submission"]
    assert submission["external_id"] == hashlib.sha256(body).hexdigest()
    [stored] = [a for a in graph["artifacts"] if a["kind"] == "event"]
    assert stored["generated_by"] == ingest["id"]
    assert {
        "derived": stored["id"],
        "source": submission["id"],
        "rel": "derived_from",
        "activity": convert["id"],
    } in graph["derivations"]


def _bundle(ip: str) -> dict[str, Any]:
    """A partner's own STIX: one indicator for a compromised address, marked TLP:GREEN."""
    indicator = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid_mod.uuid4()}",
        "created": "2026-11-20T10:00:00.000Z",
        "modified": "2026-11-20T10:00:00.000Z",
        "name": "compromised host",
        "pattern": f"[ipv4-addr:value = '{ip}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-20T10:00:00Z",
        "object_marking_refs": ["marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"],
    }
    return {"type": "bundle", "id": f"bundle--{uuid_mod.uuid4()}", "objects": [indicator]}
