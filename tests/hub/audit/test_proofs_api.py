"""The audit proof routes of DESIGN.md §2, as a partner and an auditor use them: a partner
receives an event (REST, and /misp through PyMISP's own session), takes the response's
X-Hub-Audit-Seq, fetches its entry, the inclusion proof and the signed checkpoint, and checks
them with the independent verifier (tests/hub/audit/rfc9162.py) and the published verifier key.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from pymisp import PyMISP
from typer.testing import CliRunner

import tlp
from hub.audit.note import Signer
from hub.cli import app as cli
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr, event
from tests.hub.audit import rfc9162
from tests.hub.misp_compat.conftest import MISP_HEADERS, misp_url  # noqa: F401

TAXII = "application/taxii+json;version=2.1"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    path.write_text(str(Signer.generate("hub.test/audit")) + "\n")
    return path


@pytest.fixture
def settings(settings: Settings, key_file: Path) -> Settings:
    """The conftest's settings with a signing key, and a checkpoint at every worker round."""
    return settings.model_copy(
        update={"audit_signing_key_file": key_file, "checkpoint_interval_seconds": 0}
    )


def work(maker: Any, settings: Settings) -> None:
    """What `hub worker --once` does: the tree grows and a checkpoint is signed."""
    run_due(maker, Runtime(settings=settings, policy=tlp.DEFAULT_POLICY))


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


class Auditee:
    """A partner checking what the hub says it recorded, with only the public verifier key."""

    def __init__(self, client: Any, key: str) -> None:
        self.client, self.headers = client, {"Authorization": key}
        r = client.get("/api/v1/audit/verifier")  # public: no key
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        self.verifier = r.text.strip()

    def checkpoint(self, size: int | None = None) -> tuple[str, int, bytes, str]:
        url = "/api/v1/audit/checkpoint" + (f"?size={size}" if size else "")
        r = self.client.get(url, headers={**self.headers, "Accept": "text/plain"})
        assert r.status_code == 200, r.text
        origin, tree_size, root = rfc9162.read_checkpoint(
            rfc9162.open_signed_note(r.text, self.verifier)
        )
        assert origin == self.verifier.split("+")[0]
        return origin, tree_size, root, r.text

    def entry(self, seq: int) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/audit/entries/{seq}", headers=self.headers)
        assert r.status_code == 200, r.text
        assert r.json()["seq"] == seq
        return r.json()  # type: ignore[no-any-return]

    def proves(self, seq: int) -> dict[str, Any]:
        """Entry ``seq`` is in the latest signed tree; returns the entry's body."""
        _, size, root, _ = self.checkpoint()
        leaf = b64(self.entry(seq)["leaf"])
        r = self.client.get(
            f"/api/v1/audit/proofs/inclusion?seq={seq}&size={size}", headers=self.headers
        )
        assert r.status_code == 200, r.text
        proof = r.json()
        assert (proof["leaf_index"], proof["tree_size"]) == (seq - 1, size)
        hashes = [b64(h) for h in proof["hashes"]]
        assert rfc9162.inclusion_ok(seq - 1, size, rfc9162.leaf(leaf), hashes, root)
        assert not rfc9162.inclusion_ok(seq - 1, size, rfc9162.leaf(leaf + b" "), hashes, root)
        return json.loads(leaf)  # type: ignore[no-any-return]


def test_a_partner_proves_what_it_received_over_rest_and_misp(
    client,
    factory,
    maker,
    settings,
    misp_url,  # noqa: F811
) -> None:
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    partner = factory.partner("Z-CERT", type="sectoral-csirt")
    key = factory.key(Role.PARTNER, partner)
    ev = event(tlp="green", attributes=[attr("198.51.100.7")])
    uuid = ev["Event"]["uuid"]
    r = client.post(
        "/api/v1/events", json=ev, headers={"Authorization": factory.key(Role.PARTNER, source)}
    )
    assert r.status_code == 201, r.text

    rest = client.get(f"/api/v1/events/{uuid}", headers={"Authorization": key})
    assert rest.status_code == 200
    rest_seq = int(rest.headers["X-Hub-Audit-Seq"])
    # PyMISP's own session and request building, as a partner's scripts use it.
    misp = PyMISP(misp_url, key, ssl=False, timeout=30)
    # PyMISP answers parsed JSON; its request method is the one that keeps the headers.
    viewed = misp._prepare_request("GET", f"events/view/{uuid}")  # noqa: SLF001
    assert viewed.status_code == 200 and viewed.json()["Event"]["uuid"] == uuid
    misp_seq = int(viewed.headers["X-Hub-Audit-Seq"])
    assert misp_seq > rest_seq

    work(maker, settings)
    me = Auditee(client, key)
    _, first_size, first_root, first_note = me.checkpoint()
    assert first_size >= misp_seq
    for seq, channel in ((rest_seq, "rest"), (misp_seq, "misp-sync")):
        body = me.proves(seq)
        assert body["recipient_uuid"] == partner.uuid and body["channel"] == channel
        assert body["object_ref"] == f"event:{uuid}" and body["decision"] == "allow"

    # More deliveries, a new checkpoint: the later tree extends the one the partner kept.
    assert client.get("/api/v1/events", headers={"Authorization": key}).status_code == 200
    work(maker, settings)
    _, second_size, second_root, _ = me.checkpoint()
    assert second_size > first_size
    r = client.get(
        f"/api/v1/audit/proofs/consistency?from={first_size}&to={second_size}", headers=me.headers
    )
    assert r.status_code == 200
    proof = r.json()
    assert (proof["from"], proof["to"]) == (first_size, second_size)
    hashes = [b64(h) for h in proof["hashes"]]
    assert rfc9162.consistency_ok(first_size, second_size, hashes, first_root, second_root)
    assert not rfc9162.consistency_ok(first_size, second_size, hashes[1:], first_root, second_root)
    # The earlier checkpoint is kept and answered by size.
    assert me.checkpoint(first_size)[3] == first_note


def test_partners_see_only_entries_about_their_own_organisation(client, factory, maker, settings):
    source = factory.partner("Source CSIRT")
    alice, bob = factory.partner("Alice"), factory.partner("Bob")
    alice_key, bob_key = factory.key(Role.PARTNER, alice), factory.key(Role.SYNC, bob)
    ev = event(tlp="green")
    client.post(
        "/api/v1/events", json=ev, headers={"Authorization": factory.key(Role.PARTNER, source)}
    )
    r = client.get(f"/api/v1/events/{ev['Event']['uuid']}", headers={"Authorization": alice_key})
    seq = int(r.headers["X-Hub-Audit-Seq"])
    work(maker, settings)
    size = client.get("/api/v1/audit/checkpoint", headers={"Authorization": bob_key}).text
    size = int(size.split("\n")[1])
    for url in (f"/api/v1/audit/entries/{seq}", f"/api/v1/audit/proofs/inclusion?seq={seq}"):
        assert client.get(url, headers={"Authorization": alice_key}).status_code == 200
        refused = client.get(url, headers={"Authorization": bob_key})
        missing = client.get(
            url.replace(str(seq), str(size + 50)), headers={"Authorization": bob_key}
        )
        assert refused.status_code == 404, refused.text  # as if it did not exist
        assert refused.json()["error"] == "not_found"
        if "entries" in url:
            assert missing.status_code == 404
        for role in (Role.OPERATOR, Role.AUDITOR):
            assert client.get(url, headers={"Authorization": factory.key(role)}).status_code == 200
    # Consistency proofs and checkpoints concern no one entry: any key.
    r = client.get(
        f"/api/v1/audit/proofs/consistency?from=1&to={size}", headers={"Authorization": bob_key}
    )
    assert r.status_code == 200
    assert client.get("/api/v1/audit/checkpoint").status_code == 401


@pytest.mark.parametrize(
    ("url", "status", "field"),
    [
        ("/api/v1/audit/entries/0", 422, "seq"),
        ("/api/v1/audit/proofs/inclusion?seq=1&size=999", 422, "size"),
        ("/api/v1/audit/proofs/inclusion?seq=5&size=3", 422, "seq"),
        ("/api/v1/audit/proofs/inclusion?seq=0", 422, "seq"),
        ("/api/v1/audit/proofs/inclusion?seq=x", 422, "seq"),
        ("/api/v1/audit/proofs/inclusion", 422, "seq"),
        ("/api/v1/audit/proofs/consistency?from=4&to=2", 422, "from"),
        ("/api/v1/audit/proofs/consistency?from=1&to=999", 422, "to"),
        ("/api/v1/audit/proofs/consistency?from=0&to=2", 422, "from"),
        ("/api/v1/audit/proofs/consistency?to=2", 422, "from"),
        ("/api/v1/audit/checkpoint?size=0", 422, "size"),
        ("/api/v1/audit/checkpoint?size=2", 404, None),
    ],
)
def test_bad_parameters_answer_the_rest_error_shape(
    client, auth, maker, settings, url, status, field
):
    for _ in range(3):  # three entries: partner registry changes
        client.post(
            "/api/v1/admin/partners",
            json={"name": f"P{_}", "type": "isp", "tier": "core", "region": "nl"},
            headers=auth,
        )
    work(maker, settings)
    r = client.get(url, headers=auth)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail", "field"}
    if field is not None:
        assert field in (body["field"] or ""), body


def test_no_checkpoint_and_no_key_configured(client, auth, app) -> None:
    assert client.get("/api/v1/audit/checkpoint", headers=auth).status_code == 404
    runtime = app.state.runtime
    settings = runtime.settings.model_copy(update={"audit_signing_key_file": None})
    app.state.runtime = dataclasses.replace(runtime, settings=settings)
    r = client.get("/api/v1/audit/verifier")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.get("/api/v1/audit/checkpoint", headers={**auth, "Accept": "application/xml"})
    assert r.status_code == 406


def _received(r: Any, maker: Any, partner_uuid: str, channel: str) -> None:
    """The response names the audit entry that recorded it, for this partner and channel."""
    from hub.models import AuditEntry

    assert r.status_code == 200, r.text
    seq = int(r.headers["X-Hub-Audit-Seq"])
    with maker() as s:
        row = s.get(AuditEntry, seq)
    assert row is not None and row.recipient_uuid == partner_uuid, (r.url, seq)
    assert row.channel == channel, (r.url, row.channel)


def test_every_channel_names_its_audit_entry(client, factory, maker, settings, auth) -> None:
    """REST (list, event, STIX export, attributes), /misp (index, view, searches), TAXII
    (collection objects, manifest, one object, its versions), notifications (list, one, its
    lineage)."""
    source = factory.partner("Source CSIRT", type="sectoral-csirt")
    partner = factory.partner(
        "Town", type="government", constituency={"domains": ["town.example.nl"]}
    )
    key = factory.key(Role.PARTNER, partner)
    ev = event(tlp="green", attributes=[attr("www.town.example.nl", type="hostname")])
    uuid = ev["Event"]["uuid"]
    client.post(
        "/api/v1/events", json=ev, headers={"Authorization": factory.key(Role.PARTNER, source)}
    )
    client.put(
        f"/api/v1/admin/notifications/targets/{partner.uuid}",
        json={"domains": ["town.example.nl"]},
        headers=auth,
    )
    work(maker, settings.model_copy(update={"notify_interval_seconds": 0}))
    h = {"Authorization": key}
    for url in (
        "/api/v1/events",
        f"/api/v1/events/{uuid}",
        "/api/v1/attributes?value=www.town.example.nl",
    ):
        _received(client.get(url, headers=h), maker, partner.uuid, "rest")
    _received(
        client.get(f"/api/v1/events/{uuid}?format=stix", headers=h), maker, partner.uuid, "export"
    )
    m = {**MISP_HEADERS, **h}
    _received(client.get("/misp/events/index", headers=m), maker, partner.uuid, "misp-sync")
    _received(client.get(f"/misp/events/view/{uuid}", headers=m), maker, partner.uuid, "misp-sync")
    for path in ("/misp/events/restSearch", "/misp/attributes/restSearch"):
        _received(
            client.post(path, json={"eventid": uuid}, headers=m), maker, partner.uuid, "misp-sync"
        )
    t = {**h, "Accept": TAXII}
    for what in ("objects", "manifest"):
        _received(
            client.get(f"/taxii2/cwn/collections/all/{what}/", headers=t),
            maker,
            partner.uuid,
            "taxii",
        )
    listed = client.get("/taxii2/cwn/collections/all/objects/", headers=t).json()["objects"]
    one = next(o["id"] for o in listed if o["type"] == "indicator")
    for what in ("", "versions/"):
        _received(
            client.get(f"/taxii2/cwn/collections/all/objects/{one}/{what}", headers=t),
            maker,
            partner.uuid,
            "taxii",
        )
    r = client.get("/api/v1/notifications", headers=h)
    _received(r, maker, partner.uuid, "notify-partner")
    ticket = r.json()["items"][0]["ticket"]
    for url in (f"/api/v1/notifications/{ticket}", f"/api/v1/notifications/{ticket}/lineage"):
        _received(client.get(url, headers=h), maker, partner.uuid, "notify-partner")


def test_verify_proof_cli_checks_saved_answers_offline(
    client, factory, maker, settings, tmp_path
) -> None:
    partner = factory.partner("Alice")
    key = factory.key(Role.PARTNER, partner)
    ev = event(tlp="green")
    client.post(
        "/api/v1/events",
        json=ev,
        headers={"Authorization": factory.key(Role.PARTNER, factory.partner("Src"))},
    )
    seq = int(
        client.get(f"/api/v1/events/{ev['Event']['uuid']}", headers={"Authorization": key}).headers[
            "X-Hub-Audit-Seq"
        ]
    )
    work(maker, settings)
    h = {"Authorization": key}
    old = client.get("/api/v1/audit/checkpoint", headers=h).text
    client.get("/api/v1/events", headers=h)
    work(maker, settings)
    new = client.get("/api/v1/audit/checkpoint", headers=h).text
    old_size, new_size = int(old.split("\n")[1]), int(new.split("\n")[1])
    files = {
        "verifier": client.get("/api/v1/audit/verifier").text,
        "old": old,
        "new": new,
        "entry": client.get(f"/api/v1/audit/entries/{seq}", headers=h).text,
        "inclusion": client.get(
            f"/api/v1/audit/proofs/inclusion?seq={seq}&size={new_size}", headers=h
        ).text,
        "consistency": client.get(
            f"/api/v1/audit/proofs/consistency?from={old_size}&to={new_size}", headers=h
        ).text,
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    args = [
        "audit", "verify-proof", "--verifier", f"@{tmp_path / 'verifier'}",
        "--checkpoint", str(tmp_path / "new"), "--entry", str(tmp_path / "entry"),
        "--inclusion", str(tmp_path / "inclusion"), "--old-checkpoint", str(tmp_path / "old"),
        "--consistency", str(tmp_path / "consistency"),
    ]  # fmt: skip
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert f"entry {seq}: included" in ok.output and "consistent" in ok.output
    entry = orjson.loads(files["entry"])
    body = json.loads(b64(entry["leaf"]))
    body["decision"] = "deny"  # the entry as a dishonest hub would now show it
    forged = {
        "seq": seq,
        "leaf": base64.b64encode(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).decode(),
    }
    (tmp_path / "entry").write_bytes(orjson.dumps(forged))
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 1 and "NOT in the signed tree" in bad.output
    (tmp_path / "entry").write_text(files["entry"])
    (tmp_path / "new").write_text(new.replace(f"\n{new_size}\n", f"\n{new_size + 1}\n"))
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 1 and "does not verify" in bad.output
