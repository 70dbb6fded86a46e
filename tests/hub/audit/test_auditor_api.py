"""The auditor's API: search with filters and keyset paging, a streamed export pinned to a
signed checkpoint, summaries; every search, export and summary recorded in the log."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

import tlp
from hub.audit.note import Signer
from hub.models import AuditEntry
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr, event
from tests.hub.audit import rfc9162


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    key = tmp_path / "audit.key"
    key.write_text(str(Signer.generate("hub.test/audit")) + "\n")
    return settings.model_copy(
        update={"audit_signing_key_file": key, "checkpoint_interval_seconds": 0}
    )


@pytest.fixture
def world(client, factory, maker, settings):
    """Alice receives a green event over REST and /misp; Bob (connection tier) is refused an
    amber one; the worker builds the tree and signs."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    alice, bob = factory.partner("Alice"), factory.partner("Bob", tier="connection")
    keys = {"alice": factory.key(Role.PARTNER, alice), "bob": factory.key(Role.PARTNER, bob)}
    green = event(tlp="green", attributes=[attr("198.51.100.1")])
    amber = event(tlp="amber", attributes=[attr("198.51.100.2")])
    for ev in (green, amber):
        r = client.post(
            "/api/v1/events", json=ev, headers={"Authorization": factory.key(Role.PARTNER, source)}
        )
        assert r.status_code == 201
    g, a = green["Event"]["uuid"], amber["Event"]["uuid"]
    seqs = {
        "alice-rest": client.get(f"/api/v1/events/{g}", headers={"Authorization": keys["alice"]}),
        "alice-misp": client.get(
            f"/misp/events/view/{g}",
            headers={"Authorization": keys["alice"], "Accept": "application/json"},
        ),
        "bob-refused": client.get(f"/api/v1/events/{a}", headers={"Authorization": keys["bob"]}),
    }
    assert seqs["bob-refused"].status_code == 404
    run_due(maker, Runtime(settings=settings, policy=tlp.DEFAULT_POLICY))
    return {"green": g, "amber": a, "alice": alice, "bob": bob, "source": source}


def entries(client, auth, query: str = "", limit: int = 500) -> list[dict]:
    r = client.get(f"/api/v1/admin/audit/entries?limit={limit}&{query}", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"]  # type: ignore[no-any-return]


def test_search_filters_answer_who_got_what(client, auth, world) -> None:
    alice, bob = world["alice"].uuid, world["bob"].uuid
    got = entries(client, auth, f"recipient={alice}")
    assert {e["channel"] for e in got} == {"rest", "misp-sync"}
    assert all(e["recipient_uuid"] == alice and e["decision"] == "allow" for e in got)
    refused = entries(client, auth, "decision=deny")
    assert [e["recipient_uuid"] for e in refused] == [bob]
    assert refused[0]["details"]["releases"][0][0] == world["amber"]
    # An item: its own entries (ingest) and every delivery or refusal that listed it.
    about_green = entries(client, auth, f"item={world['green']}")
    assert {e["action"] for e in about_green} >= {"ingest"}
    assert {(e["recipient_uuid"], e["channel"]) for e in about_green if e["decision"]} == {
        (alice, "rest"),
        (alice, "misp-sync"),
    }
    assert [
        e["recipient_uuid"] for e in entries(client, auth, f"item={world['amber']}&decision=deny")
    ] == [bob]
    assert entries(client, auth, "action=ingest&channel=rest")
    assert all(e["action"] == "ingest" for e in entries(client, auth, "action=ingest"))
    actor = got[0]["actor"].split(" ")[0]  # key:<uuid>
    assert {e["actor"] for e in entries(client, auth, f"actor={actor}")} == {got[0]["actor"]}
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert entries(client, auth, f"since={later.replace('+', '%2B')}") == []
    assert entries(client, auth, f"until={later.replace('+', '%2B')}")


def test_search_pages_by_keyset_and_is_itself_recorded(client, auth, world, maker, factory):
    everything = entries(client, auth)
    seen, cursor = [], None
    while True:
        url = "/api/v1/admin/audit/entries?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=auth).json()
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert set(seen) >= {e["seq"] for e in everything}
    with maker() as s:
        searches = s.query(AuditEntry).filter(AuditEntry.action == "audit.search").all()
    assert len(searches) >= 2 and searches[0].actor.endswith("(NCSC-NL, operator)")
    bad = client.get("/api/v1/admin/audit/entries?cursor=nonsense", headers=auth)
    assert bad.status_code == 422 and bad.json()["field"] == "cursor"
    partner = {"Authorization": factory.key(Role.PARTNER, world["alice"])}
    for path in ("entries", "export", "summary"):
        assert client.get(f"/api/v1/admin/audit/{path}", headers=partner).status_code == 403


def test_export_is_pinned_to_a_signed_checkpoint_and_every_row_proves(
    client, auth, world, factory
) -> None:
    auditor = {"Authorization": factory.key(Role.AUDITOR)}
    r = client.get(f"/api/v1/admin/audit/export?recipient={world['alice'].uuid}", headers=auditor)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    head, rows = lines[0], lines[1:]
    verifier = client.get("/api/v1/audit/verifier").text.strip()
    _, size, root = rfc9162.read_checkpoint(rfc9162.open_signed_note(head["checkpoint"], verifier))
    assert size == head["tree_size"] and len(rows) == 2
    for row in rows:
        assert row["seq"] <= size and row["recipient_uuid"] == world["alice"].uuid
        leaf = base64.b64decode(row["leaf"])
        assert json.loads(leaf)["channel"] == row["channel"]
        proof = client.get(
            f"/api/v1/audit/proofs/inclusion?seq={row['seq']}&size={size}", headers=auditor
        ).json()
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert rfc9162.inclusion_ok(row["seq"] - 1, size, rfc9162.leaf(leaf), hashes, root)
    r = client.get(
        "/api/v1/admin/audit/export?format=csv&decision=deny",
        headers={**auditor, "Accept": "text/csv"},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["recipient_uuid"] for row in table] == [world["bob"].uuid]
    assert json.loads(table[0]["details"])["releases"][0][0] == world["amber"]
    note = base64.b64decode(r.headers["X-Hub-Audit-Checkpoint"]).decode()
    assert rfc9162.open_signed_note(note, verifier)
    exports = entries(client, auth, "action=audit.export")
    assert len(exports) == 2 and {e["details"]["format"] for e in exports} == {"jsonl", "csv"}
    assert exports[-1]["actor"].endswith("(NCSC-NL, auditor)")


def test_summary_counts_deliveries_and_refusals(client, auth, world) -> None:
    r = client.get("/api/v1/admin/audit/summary", headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    today = datetime.now(UTC).date().isoformat()
    alice = {
        (d["channel"], d["label"], d["delivered"], d["refused"])
        for d in body["deliveries"]
        if d["partner"] == world["alice"].uuid
    }
    assert alice == {("rest", "green", 1, 0), ("misp-sync", "green", 1, 0)}
    bob = [d for d in body["deliveries"] if d["partner"] == world["bob"].uuid]
    assert [(d["refused"], d["delivered"], d["day"]) for d in bob] == [(1, 0, today)]
    assert sum(r["count"] for r in body["refusals"]) == 1
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+", "%2B")
    empty = client.get(f"/api/v1/admin/audit/summary?since={later}", headers=auth).json()
    assert empty["deliveries"] == [] and empty["refusals"] == []
    assert entries(client, auth, "action=audit.summary")
