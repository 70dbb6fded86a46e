"""A TLP label written as a STIX ``labels`` string: honoured when stricter, never lowering,
quarantined when unreadable (found by a black-box attack: ``labels: ["tlp:red"]`` on a GREEN
indicator went out as GREEN)."""

from __future__ import annotations

from tlp import Tlp, label_stix_bundle
from tlp.labels import TLP2_IDS

GREEN = TLP2_IDS[Tlp.GREEN]


def _bundle(**indicator: object) -> dict[str, object]:
    return {
        "type": "bundle",
        "id": "bundle--6f1f6b0a-1111-4c1e-9d0a-000000000001",
        "objects": [
            {
                "type": "indicator",
                "spec_version": "2.1",
                "id": "indicator--6f1f6b0a-1111-4c1e-9d0a-000000000002",
                "pattern": "[domain-name:value = 'x.example']",
                "pattern_type": "stix",
                **indicator,
            }
        ],
    }


IND = "indicator--6f1f6b0a-1111-4c1e-9d0a-000000000002"


def test_a_stricter_written_label_wins_over_the_marking() -> None:
    got = label_stix_bundle(_bundle(object_marking_refs=[GREEN], labels=["tlp:red"]))
    assert got.labels[IND] is Tlp.RED and not got.problems


def test_a_looser_written_label_never_lowers() -> None:
    got = label_stix_bundle(_bundle(object_marking_refs=[GREEN], labels=["TLP:CLEAR"]))
    assert got.labels[IND] is Tlp.GREEN


def test_without_markings_a_written_label_never_goes_below_the_default() -> None:
    assert label_stix_bundle(_bundle(labels=["tlp:clear"])).labels[IND] is Tlp.AMBER_STRICT
    assert label_stix_bundle(_bundle(labels=["tlp:red"])).labels[IND] is Tlp.RED


def test_an_unreadable_written_tlp_label_is_quarantined() -> None:
    got = label_stix_bundle(_bundle(labels=["tlp:yellow"]))
    assert got.labels[IND] is None and got.problems
