"""The hub's checkpoints and proofs checked by Go's golang.org/x/mod/sumdb/note and
sumdb/tlog (Debian's golang-go and golang-golang-x-mod-dev; .ci/run installs them):
verification code the project did not write (tests/hub/audit/goverify/main.go only calls it).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

import tlp
from hub.audit.note import Signer
from hub.runtime import Runtime
from hub.settings import Settings
from hub.vocabulary import Role
from hub.worker import run_due
from tests.builders import attr, event

SOURCE = Path(__file__).parent / "goverify"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put their sources


@pytest.fixture(scope="session")
def goverify(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        message = "Go and golang.org/x/mod are not installed (apt-get install golang-go golang-golang-x-mod-dev)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them: a missing one must not pass blind
        pytest.skip(message)
    out = tmp_path_factory.mktemp("goverify") / "goverify"
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOCACHE": str(out.parent / "cache"),
        "GOFLAGS": "",
    }
    subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE, env=env, check=True)
    return out


def run(goverify: Path, request: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(goverify)], input=json.dumps(request), capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    key = tmp_path / "audit.key"
    key.write_text(str(Signer.generate("hub.test/audit")) + "\n")
    return settings.model_copy(
        update={"audit_signing_key_file": key, "checkpoint_interval_seconds": 0}
    )


def test_go_verifies_deliveries_checkpoints_and_consistency(
    goverify, client, factory, maker, settings
) -> None:
    partner = factory.partner("Z-CERT")
    h = {"Authorization": factory.key(Role.PARTNER, partner)}
    source = {"Authorization": factory.key(Role.PARTNER, factory.partner("Source"))}
    context = Runtime(settings=settings, policy=tlp.DEFAULT_POLICY)
    seqs, notes = [], []
    for round_ in range(3):
        for i in range(round_ + 2):
            ev = event(tlp="green", attributes=[attr(f"198.51.{round_}.{i}")])
            client.post("/api/v1/events", json=ev, headers=source)
            r = client.get(f"/api/v1/events/{ev['Event']['uuid']}", headers=h)
            seqs.append(int(r.headers["X-Hub-Audit-Seq"]))
        run_due(maker, context)
        notes.append(client.get("/api/v1/audit/checkpoint", headers=h).text)
    verifier = client.get("/api/v1/audit/verifier").text.strip()
    sizes = [int(n.split("\n")[1]) for n in notes]
    for size, note in zip(sizes, notes, strict=True):
        for seq in [s for s in seqs if s <= size]:
            leaf = client.get(f"/api/v1/audit/entries/{seq}", headers=h).json()["leaf"]
            proof = client.get(
                f"/api/v1/audit/proofs/inclusion?seq={seq}&size={size}", headers=h
            ).json()
            done = run(
                goverify,
                {
                    "verifier": verifier,
                    "checkpoint": note,
                    "seq": seq,
                    "leaf": leaf,
                    "inclusion": proof["hashes"],
                },
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"entry {seq} included" in done.stdout
    for old in range(len(notes) - 1):
        proof = client.get(
            f"/api/v1/audit/proofs/consistency?from={sizes[old]}&to={sizes[-1]}", headers=h
        ).json()
        request = {
            "verifier": verifier,
            "checkpoint": notes[-1],
            "old_checkpoint": notes[old],
            "consistency": proof["hashes"],
        }
        done = run(goverify, request)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"tree {sizes[-1]} extends tree {sizes[old]}" in done.stdout
        # A proof for another history does not pass Go's check either.
        bent = base64.b64decode(proof["hashes"][0])
        bent = base64.b64encode(bytes([bent[0] ^ 1]) + bent[1:]).decode()
        done = run(goverify, {**request, "consistency": [bent, *proof["hashes"][1:]]})
        assert done.returncode == 1 and "tlog.CheckTree" in done.stdout


def test_go_refuses_a_forged_entry_and_a_forged_checkpoint(
    goverify, client, factory, maker, settings
) -> None:
    partner = factory.partner("Z-CERT")
    h = {"Authorization": factory.key(Role.PARTNER, partner)}
    ev = event(tlp="green")
    client.post(
        "/api/v1/events",
        json=ev,
        headers={"Authorization": factory.key(Role.PARTNER, factory.partner("S"))},
    )
    seq = int(
        client.get(f"/api/v1/events/{ev['Event']['uuid']}", headers=h).headers["X-Hub-Audit-Seq"]
    )
    run_due(maker, Runtime(settings=settings, policy=tlp.DEFAULT_POLICY))
    note = client.get("/api/v1/audit/checkpoint", headers=h).text
    size = int(note.split("\n")[1])
    leaf = base64.b64decode(client.get(f"/api/v1/audit/entries/{seq}", headers=h).json()["leaf"])
    proof = client.get(f"/api/v1/audit/proofs/inclusion?seq={seq}&size={size}", headers=h).json()
    request = {
        "verifier": client.get("/api/v1/audit/verifier").text.strip(),
        "checkpoint": note,
        "seq": seq,
        "leaf": base64.b64encode(leaf).decode(),
        "inclusion": proof["hashes"],
    }
    assert run(goverify, request).returncode == 0
    forged = leaf.replace(b'"allow"', b'"deny"')
    assert forged != leaf
    done = run(goverify, {**request, "leaf": base64.b64encode(forged).decode()})
    assert done.returncode == 1 and "tlog.CheckRecord" in done.stdout
    done = run(goverify, {**request, "checkpoint": note.replace(f"\n{size}\n", f"\n{size + 1}\n")})
    assert done.returncode == 1 and "note.Open" in done.stdout
    other = str(Signer.generate("hub.test/audit").verifier)
    done = run(goverify, {**request, "verifier": other})
    assert done.returncode == 1 and "note.Open" in done.stdout
