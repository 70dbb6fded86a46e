"""What never leaves the hub, on every channel a partner has (DESIGN.md §3, "What leaves the
hub"): analyst data, local galaxy clusters, correlations, the creating user, custom fields,
and, for TLP:EX:CHR, anything naming the producer. Found by a black-box attack on a running
hub; each test failed before the hub kept an allow-list of MISP fields."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

import pytest

from hub.vocabulary import Role
from tests.builders import attr, event
from tests.hub.misp_compat.conftest import Who, make_people

PRODUCER = 'misp-galaxy:producer="Z-CERT-A"'


@pytest.fixture
def people(factory):
    return make_people(factory, role=Role.PARTNER)


def _harvest(client: Any, who: Who, uuid: str) -> str:
    """Everything a partner can read of one event, as one text."""
    answers = [
        client.get(f"/api/v1/events/{uuid}", headers=who.headers),
        client.get(f"/api/v1/events/{uuid}?format=stix", headers=who.headers),
        client.get(f"/misp/events/view/{uuid}", headers=who.headers),
        client.post("/misp/events/restSearch", json={"uuid": uuid}, headers=who.headers),
        client.post(
            "/misp/attributes/restSearch",
            json={"eventid": uuid, "includeContext": 1},
            headers=who.headers,
        ),
        client.post(
            "/misp/events/restSearch",
            json={"uuid": uuid, "returnFormat": "stix2"},
            headers=who.headers,
        ),
    ]
    for r in answers:
        assert r.status_code == 200, (r.request.url, r.text)
    return "\n".join(r.text for r in answers)


def _cluster(value: str, **extra: Any) -> dict[str, Any]:
    return {
        "uuid": str(uuid_mod.uuid4()),
        "type": "custom",
        "value": value,
        "tag_name": f'misp-galaxy:custom="{value}"',
        "description": value,
        **extra,
    }


def _galaxy(*clusters: dict[str, Any], type: str = "custom") -> dict[str, Any]:
    return {
        "uuid": str(uuid_mod.uuid4()),
        "name": type,
        "type": type,
        "description": type,
        "namespace": "misp",
        "GalaxyCluster": list(clusters),
    }


def test_analyst_data_local_clusters_and_unknown_fields_never_leave(client, people) -> None:
    source, who = people
    shown = attr(
        "198.51.100.7",
        Note=[{"uuid": str(uuid_mod.uuid4()), "note": "LEAK-attr-note"}],
        Opinion=[{"uuid": str(uuid_mod.uuid4()), "opinion": 10, "comment": "LEAK-opinion"}],
        Relationship=[{"uuid": str(uuid_mod.uuid4()), "relationship_type": "LEAK-rel"}],
        Correlation=[{"value": "LEAK-correlation"}],
        decay_score=[{"score": 1, "DecayingModel": {"name": "LEAK-decay"}}],
        x_custom="LEAK-attr-custom",
        Galaxy=[_galaxy(_cluster("LEAK-local-attr-cluster", local=True))],
    )
    ev = event(
        "analyst data",
        attributes=[shown],
        Note=[{"uuid": str(uuid_mod.uuid4()), "note": "LEAK-event-note"}],
        User={"email": "LEAK-user@example.org"},
        CryptographicKey=[{"type": "pgp", "key_data": "LEAK-crypto"}],
        x_custom="LEAK-event-custom",
        Galaxy=[
            _galaxy(
                _cluster("kept-cluster", Org={"name": "LEAK-cluster-org"}),
                _cluster("LEAK-local-cluster", local=True),
                _cluster("LEAK-org-only-cluster", distribution="0"),
            )
        ],
    )
    r = client.post("/api/v1/events", json=ev, headers=source.headers)
    assert r.status_code == 201, r.text
    for name in ("core", "eco"):
        text = _harvest(client, who[name], ev["Event"]["uuid"])
        assert "198.51.100.7" in text and "kept-cluster" in text  # what is allowed arrives
        assert "LEAK" not in text, [w for w in text.split('"') if "LEAK" in w][:5]


def test_a_chr_event_names_its_producer_nowhere(client, people) -> None:
    source, who = people
    producer = _cluster(
        "Z-CERT-A",
        type="producer",
        tag_name=PRODUCER,
        Orgc={"name": "Z-CERT-A", "uuid": source.uuid},
    )
    shown = attr(
        "198.51.100.9",
        Tag=[{"name": PRODUCER}],
        Org={"name": "Z-CERT-A", "uuid": source.uuid},
        Galaxy=[_galaxy(producer, type="producer")],
    )
    ev = event(
        "chr",
        tlp=None,
        attributes=[shown],
        Tag=[{"name": "tlp:amber"}, {"name": "tlp:ex:chr"}, {"name": PRODUCER}],
        Galaxy=[_galaxy(producer, type="producer"), _galaxy(_cluster("kept-cluster"))],
        User={"email": "analyst@z-cert-a.example"},
    )
    r = client.post("/api/v1/events", json=ev, headers=source.headers)
    assert r.status_code == 201, r.text
    text = _harvest(client, who["core"], ev["Event"]["uuid"])
    assert "198.51.100.9" in text and "kept-cluster" in text
    assert "z-cert-a" not in text.lower(), [
        text[max(0, i - 150) : i + 40] for i in range(len(text)) if text.startswith("Z-CERT-A", i)
    ][:3]
    assert source.uuid not in text
    # The source itself still sees its producer.
    own = client.get(f"/api/v1/events/{ev['Event']['uuid']}", headers=source.headers).text
    assert "Z-CERT-A" in own


def test_a_galaxy_without_uuids_or_descriptions_renders_to_stix(client, people) -> None:
    source, who = people
    bare = {"type": "custom", "value": "bare-cluster", "tag_name": 'misp-galaxy:custom="x"'}
    ev = event(
        "bare galaxy", Galaxy=[{"name": "custom", "type": "custom", "GalaxyCluster": [bare]}]
    )
    r = client.post("/api/v1/events", json=ev, headers=source.headers)
    assert r.status_code == 201, r.text
    for key in (source, who["core"]):
        r = client.get(f"/api/v1/events/{ev['Event']['uuid']}?format=stix", headers=key.headers)
        assert r.status_code == 200, r.text
        assert r.json()["type"] == "bundle"
