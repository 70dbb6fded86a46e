"""RFC 9162 hashing, proofs and C2SP signed notes, against published known answers and an
independent verifier (tests/hub/audit/rfc9162.py); no database."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from hub.audit import merkle
from hub.audit.note import Checkpoint, NoteError, Signer, Verifier, open_note, verify_checkpoint
from tests.hub.audit import rfc9162

VECTORS = Path(__file__).parents[2] / "fixtures" / "transparency"
RFC = json.loads((VECTORS / "rfc6962-vectors.json").read_text())
NOTE = json.loads((VECTORS / "signed-note-vectors.json").read_text())
LEAVES = [bytes.fromhex(x) for x in RFC["leaves"]]


def stored(entries: list[bytes]) -> dict[merkle.Node, bytes]:
    """Every complete subtree of the tree over ``entries``, as the hub stores them."""
    frontier, out = merkle.Frontier(), {}
    for entry in entries:
        for level, idx, digest in frontier.append(merkle.leaf_hash(entry)):
            out[(level, idx)] = digest
    return out


def proof(ranges: list[merkle.Range], nodes: dict[merkle.Node, bytes]) -> list[bytes]:
    return [merkle.range_hash(lo, hi, nodes) for lo, hi in ranges]


def test_roots_of_sizes_0_to_8_are_the_published_ones() -> None:
    nodes = stored(LEAVES)
    assert merkle.fold([]) == bytes.fromhex(RFC["empty_root"]) == rfc9162.mth([])
    for size, want in enumerate(RFC["roots"], start=1):
        assert merkle.range_hash(0, size, nodes).hex() == want
        assert rfc9162.mth(LEAVES[:size]).hex() == want  # the test's own verifier agrees
        frontier = merkle.Frontier()
        for entry in LEAVES[:size]:
            frontier.append(merkle.leaf_hash(entry))
        assert frontier.root().hex() == want


@pytest.mark.parametrize(
    "case", RFC["inclusion"], ids=lambda c: f"{c['leaf_index']}-{c['tree_size']}"
)
def test_inclusion_proofs_are_the_published_ones(case) -> None:
    index, size = case["leaf_index"], case["tree_size"]
    got = proof(merkle.inclusion_ranges(index, size), stored(LEAVES[:size]))
    assert [h.hex() for h in got] == case["proof"]
    root = bytes.fromhex(RFC["roots"][size - 1])
    assert rfc9162.inclusion_ok(index, size, rfc9162.leaf(LEAVES[index]), got, root)


@pytest.mark.parametrize("case", RFC["consistency"], ids=lambda c: f"{c['from']}-{c['to']}")
def test_consistency_proofs_are_the_published_ones(case) -> None:
    old, new = case["from"], case["to"]
    got = proof(merkle.consistency_ranges(old, new), stored(LEAVES[:new]))
    assert [h.hex() for h in got] == case["proof"]
    roots = [bytes.fromhex(r) for r in RFC["roots"]]
    assert rfc9162.consistency_ok(old, new, got, roots[old - 1], roots[new - 1])


@pytest.mark.parametrize("size", [*range(1, 9), 13, 64, 100, 257, 1000])
def test_every_proof_of_a_tree_verifies_independently(size: int) -> None:
    """Sizes 1–8 and larger random ones: each proof against a naive recomputation."""
    rng = random.Random(size)
    entries = [rng.randbytes(rng.randrange(0, 40)) for _ in range(size)]
    nodes = stored(entries)
    roots = {
        n: rfc9162.mth(entries[:n]) for n in {size, *rng.sample(range(size + 1), min(size, 6))}
    }
    for n, root in roots.items():
        assert merkle.range_hash(0, n, nodes) == root
        if n == 0:
            continue
        for index in rng.sample(range(n), min(n, 12)):
            path = proof(merkle.inclusion_ranges(index, n), nodes)
            assert rfc9162.inclusion_ok(index, n, rfc9162.leaf(entries[index]), path, root)
            assert merkle.verify_inclusion(index, n, rfc9162.leaf(entries[index]), path, root)
            assert not rfc9162.inclusion_ok(index, n, rfc9162.leaf(b"other"), path, root)
        for old in roots:
            if 0 < old < n:
                path = proof(merkle.consistency_ranges(old, n), nodes)
                assert rfc9162.consistency_ok(old, n, path, roots[old], root)
                assert merkle.verify_consistency(old, n, path, roots[old], root)
                if path:
                    bent = [path[0][:-1] + bytes([path[0][-1] ^ 1]), *path[1:]]
                    assert not rfc9162.consistency_ok(old, n, bent, roots[old], root)
                    assert not merkle.verify_consistency(old, n, bent, roots[old], root)


def test_a_proof_reads_at_most_two_subtrees_per_level() -> None:
    size = 10**6 + 12345
    for index in (0, 777_777, size - 1):
        assert len(merkle.nodes_of(merkle.inclusion_ranges(index, size))) <= 2 * 21
    assert len(merkle.nodes_of(merkle.consistency_ranges(500_001, size))) <= 2 * 21


def test_the_hubs_verifiers_refuse_what_the_rfc_refuses() -> None:
    roots = [bytes.fromhex(r) for r in RFC["roots"]]
    case = RFC["inclusion"][0]
    path = [bytes.fromhex(h) for h in case["proof"]]
    leaf = rfc9162.leaf(LEAVES[0])
    assert merkle.verify_inclusion(0, 8, leaf, path, roots[7])
    for index, size, bad_path in [
        (1, 8, path),
        (0, 16, path),
        (0, 8, path[:-1]),
        (0, 8, [*path, roots[7]]),
    ]:
        assert not merkle.verify_inclusion(index, size, leaf, bad_path, roots[7])
    assert not merkle.verify_consistency(6, 8, [], roots[5], roots[7])
    assert not merkle.verify_consistency(8, 6, [], roots[7], roots[5])


def test_signed_note_matches_gos_sumdb_note_byte_for_byte() -> None:
    signer = Signer.parse(NOTE["signer_key"])
    assert str(signer) == NOTE["signer_key"]
    assert str(signer.verifier) == NOTE["verifier_key"]
    assert signer.sign(NOTE["text"]) == NOTE["note"]
    assert open_note(NOTE["note"], Verifier.parse(NOTE["verifier_key"])) == NOTE["text"]
    assert rfc9162.open_signed_note(NOTE["note"], NOTE["verifier_key"]) == NOTE["text"]


def test_notes_that_do_not_verify_are_refused() -> None:
    verifier = Verifier.parse(NOTE["verifier_key"])
    other = Signer.generate("PeterNeumann")
    with pytest.raises(NoteError, match="no signature"):
        open_note(other.sign(NOTE["text"]), verifier)
    with pytest.raises(NoteError, match="does not verify"):
        open_note(NOTE["note"].replace("problem,", "problem;"), verifier)
    # An extra signature by an unknown key (a witness's cosignature) is ignored.
    extra = NOTE["note"] + NOTE["note"].splitlines()[-1].replace("PeterNeumann", "Witness") + "\n"
    assert open_note(extra, verifier) == NOTE["text"]
    for bad in ["PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "x+y", ""]:
        with pytest.raises(NoteError):
            Verifier.parse(bad)


def test_checkpoint_is_a_c2sp_checkpoint_the_independent_verifier_reads() -> None:
    signer = Signer.generate("hub.example/audit")
    root = rfc9162.mth(LEAVES)
    note = signer.sign(Checkpoint("hub.example/audit", 8, root).text())
    text = rfc9162.open_signed_note(note, str(signer.verifier))
    assert rfc9162.read_checkpoint(text) == ("hub.example/audit", 8, root)
    assert verify_checkpoint(note, signer.verifier) == Checkpoint("hub.example/audit", 8, root)
    renamed = Signer("elsewhere/log", signer.private)
    with pytest.raises(NoteError, match="origin"):
        verify_checkpoint(
            renamed.sign(Checkpoint("hub.example/audit", 8, root).text()), renamed.verifier
        )


def test_two_signed_checkpoints_of_one_size_are_reported_as_a_fork() -> None:
    from hub.audit import offline

    signer = Signer.generate("hub.example/audit")
    one = signer.sign(Checkpoint("hub.example/audit", 8, rfc9162.mth(LEAVES)).text())
    other = signer.sign(Checkpoint("hub.example/audit", 8, rfc9162.mth(LEAVES[::-1])).text())
    a, b = offline.checkpoint(one, signer.verifier), offline.checkpoint(other, signer.verifier)
    with pytest.raises(NoteError, match="forked"):
        offline.consistency(a, b, {"from": 8, "to": 8, "hashes": []})
    offline.consistency(a, a, {"from": 8, "to": 8, "hashes": []})
