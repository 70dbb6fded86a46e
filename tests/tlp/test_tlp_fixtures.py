"""Every fixture file parses without a crash and gets the expected effective labels."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import pytest

from tlp import (
    TLP1_IDS,
    TLP2_IDS,
    MalformedInput,
    MarkingResolver,
    Reason,
    Recipient,
    Tlp,
    filter_misp_event,
    filter_stix_bundle,
    iter_misp_events,
    label_misp_event,
    label_stix_bundle,
)
from tlp.labels import OPENCTI_AMBER_STRICT_ID

FIXTURES = Path(__file__).parent.parent / "fixtures"
MISP_FILES = sorted((FIXTURES / "misp" / "events").glob("*.json"))
STIX_FILES = sorted((FIXTURES / "stix").glob("*.json"))

CORE = Recipient("org-core", tier="core", status="active", tlp_accepted=True)
ECO = Recipient("org-eco", tier="ecosystem", status="active", tlp_accepted=True)
CONN = Recipient("org-conn", tier="connection", status="active", tlp_accepted=True)


def load(path: Path):
    return json.loads(path.read_text())


def test_fixture_folders_are_there():
    assert len(MISP_FILES) >= 15 and len(STIX_FILES) >= 15
    assert (FIXTURES / "misp" / "SOURCES.md").exists() and (
        FIXTURES / "stix" / "SOURCES.md"
    ).exists()


# --- MISP ------------------------------------------------------------------------------------------

# file -> (event label, Counter of attribute labels, Counter of object labels)
A, AS, C, G, R = Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.CLEAR, Tlp.GREEN, Tlp.RED
MISP_EXPECTED = {
    "misp-tests-event.json": (AS, {AS: 38}, {}),  # no TLP tag: the default
    "mispguard-event_sharing_group.json": (AS, {AS: 1}, {}),
    "mispguard-event_tlp_red.json": (R, {R: 1}, {}),
    "mispguard-object_sharing_group_attr_tlp_red.json": (AS, {R: 1}, {R: 1}),
    "pymisp-attribute_del.json": (AS, {AS: 1}, {}),
    "pymisp-existing_event.json": (C, {C: 122}, {C: 49}),  # tlp:white
    "pymisp-feed_event_57c4445b.json": (C, {C: 9}, {}),
    "pymisp-galaxy_1.json": (C, {C: 10}, {C: 2}),
    "pymisp-image_event_attachment.json": (C, {C: 79}, {C: 20}),
    "pymisp-long_event.json": (C, {C: 370}, {}),
    "pymisp-mainly_objects_1.json": (C, {C: 74}, {C: 17}),
    "pymisp-malware_exist.json": (AS, {AS: 6}, {AS: 1}),
    "pymisp-search_index_result.json": (G, {}, {}),  # EventTag shape, TLP:GREEN
    "pymisp-shadow.json": (AS, {AS: 3}, {AS: 1}),
    "pymisp-sighting_1.json": (AS, {AS: 5}, {}),
}


def test_every_misp_fixture_has_an_expectation():
    assert {p.name for p in MISP_FILES} == set(MISP_EXPECTED)


@pytest.mark.parametrize("path", MISP_FILES, ids=lambda p: p.name)
def test_misp_fixture_labels(path):
    events = list(iter_misp_events(load(path)))
    assert len(events) == 1
    labels = label_misp_event(events[0])
    event_label, attrs, objs = MISP_EXPECTED[path.name]
    assert labels.event is event_label
    assert Counter(labels.attributes.values()) == Counter(attrs)
    assert Counter(labels.objects.values()) == Counter(objs)
    assert not labels.problems


@pytest.mark.parametrize("path", MISP_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("recipient", [CORE, ECO, CONN], ids=lambda r: r.tier)
@pytest.mark.parametrize("channel", ["misp-sync", "rest", "taxii", "feed", "export"])
def test_misp_fixture_filters_without_crash_and_leaves_input_alone(path, recipient, channel):
    payload = load(path)
    before = copy.deepcopy(payload)
    for event in iter_misp_events(payload):
        out = filter_misp_event(event, recipient, channel)
        if out.event is not None:
            ev = out.event.get("Event", out.event)
            assert "RelatedEvent" not in ev
            tlp_tags = [t["name"] for t in ev["Tag"] if t["name"].startswith("tlp:")]
            assert len(tlp_tags) == 1
    assert payload == before


def test_misp_guard_red_event_goes_to_nobody_but_its_source():
    event = load(FIXTURES / "misp" / "events" / "mispguard-event_tlp_red.json")
    for recipient in (CORE, ECO, CONN):
        for channel in ("misp-sync", "rest", "taxii", "notify-partner"):
            out = filter_misp_event(event, recipient, channel)
            assert out.event is None
            assert out.removed[0].kind == "event"
    source = Recipient("10c8f445-888b-4a2d-bac8-4e1e8861d595", "core", "active", True)
    # RED is never in MISP sync, not even back to its source; REST is fine
    assert filter_misp_event(event, source, "misp-sync").reason is Reason.RED_CHANNEL_FORBIDDEN
    out = filter_misp_event(event, source, "rest")
    assert out.reason is Reason.SOURCE_RECEIVES_OWN
    assert out.event["Event"]["Tag"][-1]["name"] == "tlp:red"


def test_sharing_group_event_reaches_members_only():
    event = load(FIXTURES / "misp" / "events" / "mispguard-event_sharing_group.json")
    member = "87c33ffe-f83c-4eb1-be09-51f767f6fd5a"  # test_org: source and only member
    assert filter_misp_event(event, CORE, "rest").reason is Reason.NOT_ADDRESSED
    # name the core partner in the group: unlabelled means AMBER+STRICT, which a named core
    # partner may receive (not over notify-constituent)
    named = copy.deepcopy(event)
    named["Event"]["SharingGroup"]["SharingGroupOrg"].append(
        {"org_id": "2", "Organisation": {"id": "2", "name": "core", "uuid": "org-core"}}
    )
    out = filter_misp_event(named, CORE, "misp-sync")
    assert out.reason is Reason.ALLOWED_NAMED
    ev = out.event["Event"]
    assert ev["distribution"] == "4" and ev["SharingGroup"]
    assert [t["name"] for t in ev["Attribute"][0]["Tag"]] == ["tlp:amber+strict"]
    assert filter_misp_event(named, ECO, "rest").reason is Reason.NOT_ADDRESSED
    assert member in named["Event"]["SharingGroup"]["Organisation"]["uuid"]


def test_object_sharing_group_with_red_attribute():
    """Object distribution 4 (SG: only the source) holding a tlp:red attribute: the object is
    RED as a whole and goes to nobody but the source."""
    event = load(FIXTURES / "misp" / "events" / "mispguard-object_sharing_group_attr_tlp_red.json")
    # as shipped the event has no TLP tag: AMBER+STRICT by default, distribution 2 -> hub-only
    assert filter_misp_event(event, CORE, "rest").reason is Reason.HUB_ONLY
    green = copy.deepcopy(event)
    green["Event"]["Tag"] = [{"name": "tlp:green"}]
    out = filter_misp_event(green, CORE, "rest")
    assert out.event is None and out.reason is Reason.NOTHING_LEFT
    removed = {(r.kind, r.uuid): r.reason for r in out.removed}
    assert removed[("object", "feda50b8-c69c-4f5f-ae34-91b289e46799")] is Reason.NOT_ADDRESSED
    assert removed[("attribute", "856a3eed-aa55-4c73-bd1c-1ceadca5ca76")] is Reason.PARENT_REMOVED
    source = Recipient("87c33ffe-f83c-4eb1-be09-51f767f6fd5a", "core", "active", True)
    out = filter_misp_event(green, source, "rest")
    assert out.delivered
    obj = out.event["Event"]["Object"][0]
    assert obj["Attribute"][0]["Tag"][-1]["name"] == "tlp:red"
    assert out.event["Event"]["Tag"] == [
        {"name": "tlp:green", "colour": "#33FF00", "exportable": True}
    ]


def test_clear_osint_event_to_connection_partner_keeps_everything():
    event = load(FIXTURES / "misp" / "events" / "pymisp-existing_event.json")  # bare, dist 3
    out = filter_misp_event(event, CONN, "misp-sync")
    assert out.delivered and not out.removed
    assert "Event" not in out.event  # same shape as the input
    assert len(out.event["Attribute"]) == 9 and len(out.event["Object"]) == 49
    refs_in = sum(len(o.get("ObjectReference") or ()) for o in event["Object"])
    assert sum(len(o.get("ObjectReference") or ()) for o in out.event["Object"]) == refs_in
    assert filter_misp_event(event, CONN, "feed").reason is Reason.ALLOWED_PUBLIC


def test_feed_format_event_without_distribution_is_hub_only_by_default():
    event = load(FIXTURES / "misp" / "events" / "pymisp-long_event.json")
    assert filter_misp_event(event, CORE, "rest").reason is Reason.HUB_ONLY


def test_malformed_misp_payloads():
    with pytest.raises(MalformedInput):
        list(iter_misp_events("not an event"))
    with pytest.raises(MalformedInput):
        filter_misp_event(
            {
                "Event": {
                    "uuid": "e",
                    "distribution": "3",
                    "Tag": ["tlp:clear"],
                    "Attribute": {"a": 1},
                }
            },
            CORE,
            "rest",
        )
    with pytest.raises(MalformedInput):
        filter_misp_event(
            {"Event": {"uuid": "e", "distribution": 3, "Tag": ["tlp:clear"], "Attribute": ["x"]}},
            CORE,
            "rest",
        )


# --- STIX ------------------------------------------------------------------------------------------

STIX_EXPECTED = {
    # file -> {object id or type: label}; "*" = every object
    "cti-doc-indicator-for-malicious-url.json": {"*": AS},  # unmarked: the default
    "cti-doc-using-granular-markings.json": {
        "indicator--1ed8caa7-a708-4706-b651-f1186ede6ca1": R,  # RED description (granular)
        "threat-actor--8b6297fe-cae7-47c6-9256-5584b417849c": R,
        "relationship--3d1dd3cc-eb47-4704-9c77-ceff2971b95c": R,
        "identity--b38dfe21-7477-40d1-aa90-5c8671ce51ca": AS,
    },
    "cti-doc-using-marking-definitions.json": {
        "indicator--33fe3b22-0201-47cf-85d0-97c02164528d": A,
        "identity--611d9d41-dba5-4e13-9b29-e22488058ffc": AS,
    },
    "misp-stix-test-event2-stix21.json": {"*": AS},
    "mitre-ics-attack-18.1.json": {"*": AS},  # statement marking only
    "schemas-interop-objectmarking-test.json": {"*": None},  # unknown marking: quarantine
    "schemas-malicious-email-indicator-with-attachment.json": {"*": AS},
    "schemas-threat-report-poisonivy.json": {"*": AS},
    "tlp2-extension-definition.json": {"*": None},  # bundle without "type": quarantine
    "tlp2-marking-amber-strict.json": {},
    "tlp2-marking-amber.json": {},
    "tlp2-marking-clear.json": {},
    "tlp2-marking-green.json": {},
    "tlp2-marking-red.json": {},
    "tlp2-using-green-relationship.json": {
        "relationship--1621d4d4-b67d-41e3-9670-f01faf20d111": G,
        "threat-actor--9a8a0d25-7636-429b-a99e-b2a73cd0f11f": AS,
        "identity--1621d4d4-b67d-41e3-9670-f01faf20d111": AS,
    },
}


def test_every_stix_fixture_has_an_expectation():
    assert {p.name for p in STIX_FILES} == set(STIX_EXPECTED)


@pytest.mark.parametrize("path", STIX_FILES, ids=lambda p: p.name)
def test_stix_fixture_labels(path):
    labels = label_stix_bundle(load(path))
    expected = STIX_EXPECTED[path.name]
    if "*" in expected:
        assert labels.labels and set(labels.labels.values()) == {expected["*"]}
    else:
        assert labels.labels == expected
    assert bool(labels.problems) == (None in labels.labels.values())


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("tlp2-marking-clear.json", C),
        ("tlp2-marking-green.json", G),
        ("tlp2-marking-amber.json", A),
        ("tlp2-marking-amber-strict.json", AS),
        ("tlp2-marking-red.json", R),
    ],
)
def test_tlp2_marking_files_resolve(name, label):
    bundle = load(FIXTURES / "stix" / name)
    (definition,) = bundle["objects"]
    assert definition["id"] == TLP2_IDS[label]
    assert MarkingResolver({definition["id"]: definition}).resolve(definition["id"]).label is label
    # an object in the same bundle that uses it gets that label
    marked = {**bundle, "objects": [*bundle["objects"], _indicator([definition["id"]])]}
    assert label_stix_bundle(marked).labels == {
        "indicator--aaaaaaaa-0000-4000-8000-000000000001": label
    }


@pytest.mark.parametrize("path", STIX_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("recipient", [CORE, ECO, CONN], ids=lambda r: r.tier)
@pytest.mark.parametrize("channel", ["taxii", "rest", "feed"])
def test_stix_fixture_filters_without_crash(path, recipient, channel):
    bundle = load(path)
    before = copy.deepcopy(bundle)
    out = filter_stix_bundle(bundle, recipient, channel, source_org_uuid="org-src")
    assert bundle == before
    if out.bundle is not None:
        _assert_marked(out.bundle)


def test_granular_red_description_never_reaches_a_green_only_recipient():
    bundle = load(FIXTURES / "stix" / "cti-doc-using-granular-markings.json")
    named = _sg({"org-conn", "org-core"})
    out = filter_stix_bundle(bundle, CONN, "rest", source_org_uuid="org-src", addressing=named)
    assert out.bundle is None
    kept = filter_stix_bundle(bundle, CORE, "rest", source_org_uuid="org-src", addressing=named)
    ids = {o["id"] for o in kept.bundle["objects"]}
    assert "indicator--1ed8caa7-a708-4706-b651-f1186ede6ca1" in ids
    indicator = next(o for o in kept.bundle["objects"] if o["type"] == "indicator")
    assert indicator["object_marking_refs"] == [TLP2_IDS[R]]
    # granular TLP 1.0 refs are rewritten to TLP 2.0 ids, and their definitions included
    assert {g["marking_ref"] for g in indicator["granular_markings"]} == {
        TLP2_IDS[R],
        TLP2_IDS[A],
        TLP2_IDS[G],
    }
    _assert_marked(kept.bundle)
    # over TAXII RED never goes: only the identity (AMBER+STRICT, named) is left
    taxii = filter_stix_bundle(bundle, CORE, "taxii", source_org_uuid="org-src", addressing=named)
    assert {o["type"] for o in taxii.bundle["objects"]} == {"identity", "marking-definition"}


def test_statement_marking_is_kept_and_shipped():
    bundle = load(FIXTURES / "stix" / "cti-doc-using-marking-definitions.json")
    statement = "marking-definition--d81f86b9-975b-4c0b-875e-810c5ad45a4f"
    out = filter_stix_bundle(bundle, ECO, "taxii", source_org_uuid="org-src")
    indicator = next(o for o in out.bundle["objects"] if o["type"] == "indicator")
    assert indicator["object_marking_refs"] == [TLP2_IDS[A], statement]
    ids = {o["id"] for o in out.bundle["objects"]}
    assert {TLP2_IDS[A], statement} <= ids
    assert TLP1_IDS[A] not in ids  # the TLP 1.0 definition is replaced by the 2.0 one
    legacy = filter_stix_bundle(bundle, ECO, "taxii", source_org_uuid="org-src", legacy_tlp1=True)
    indicator = next(o for o in legacy.bundle["objects"] if o["type"] == "indicator")
    assert indicator["object_marking_refs"] == [TLP2_IDS[A], TLP1_IDS[A], statement]


def test_relationship_goes_when_its_endpoint_goes():
    bundle = load(FIXTURES / "stix" / "tlp2-using-green-relationship.json")
    # unmarked endpoints default to AMBER+STRICT: community addressing -> hub-only
    out = filter_stix_bundle(bundle, CORE, "taxii", source_org_uuid="org-src")
    assert out.bundle is None
    reasons = {r.uuid: r.reason for r in out.removed}
    assert reasons["relationship--1621d4d4-b67d-41e3-9670-f01faf20d111"] is Reason.PARENT_REMOVED
    assert reasons["threat-actor--9a8a0d25-7636-429b-a99e-b2a73cd0f11f"] is Reason.HUB_ONLY


def test_container_refs_to_dropped_objects_are_removed():
    bundle = load(FIXTURES / "stix" / "misp-stix-test-event2-stix21.json")
    bundle = copy.deepcopy(bundle)
    green, red = TLP2_IDS[G], TLP2_IDS[R]
    for obj in bundle["objects"]:
        if obj["type"] == "grouping":
            obj["object_marking_refs"] = [green]
    ipv4 = next(o for o in bundle["objects"] if o["type"] == "ipv4-addr")
    ipv4["object_marking_refs"] = [red]
    labels = label_stix_bundle(bundle)
    assert labels.labels[ipv4["id"]] is R
    assert labels.labels["file--02de0847-dccf-481a-a96a-6a7654328658"] is G  # inherited
    out = filter_stix_bundle(bundle, ECO, "taxii", source_org_uuid="org-src")
    text = json.dumps(out.bundle)
    assert ipv4["id"] not in text  # no dangling SCO id anywhere
    _assert_marked(out.bundle)


# --- malformed STIX -----------------------------------------------------------------------------


def _indicator(refs=None, granular=None, ident="indicator--aaaaaaaa-0000-4000-8000-000000000001"):
    obj = {"type": "indicator", "spec_version": "2.1", "id": ident, "pattern": "[x:y = 'z']"}
    if refs is not None:
        obj["object_marking_refs"] = refs
    if granular is not None:
        obj["granular_markings"] = granular
    return obj


def _bundle(*objects):
    return {
        "type": "bundle",
        "id": "bundle--aaaaaaaa-0000-4000-8000-000000000000",
        "objects": list(objects),
    }


def _sg(members):
    from tlp import Addressing

    return Addressing.sharing_group({"org-src", *members})


UNKNOWN = "marking-definition--99999999-0000-4000-8000-000000000009"
MALFORMED_CASES = {
    "unknown-ref": _bundle(_indicator([UNKNOWN])),
    "typo-of-tlp1-red": _bundle(_indicator(["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ec"])),
    "opencti-amber-strict-without-object-is-known": None,  # see test below
    "ref-not-a-marking-id": _bundle(_indicator(["identity--aaaaaaaa-0000-4000-8000-000000000002"])),
    "refs-not-a-list": _bundle(_indicator(TLP2_IDS[G])),
    "granular-unknown": _bundle(_indicator(granular=[{"marking_ref": UNKNOWN, "selectors": ["name"]}])),
    "granular-without-ref": _bundle(_indicator(granular=[{"selectors": ["name"]}])),
    "tlp-type-without-value": _bundle(
        {"type": "marking-definition", "id": UNKNOWN, "definition_type": "tlp"}, _indicator([UNKNOWN])
    ),
    "tlp-amber-strict-typo": _bundle(
        {"type": "marking-definition", "id": UNKNOWN, "definition_type": "tlp", "definition": {"tlp": "amber strict!"}},
        _indicator([UNKNOWN]),
    ),
    "tlp2-extension-bad-value": _bundle(
        {**load(FIXTURES / "stix" / "tlp2-marking-green.json")["objects"][0],
         "extensions": {"extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {"tlp_2_0": "teal"}}},
        _indicator([TLP2_IDS[G]]),
    ),
    "known-id-contradicted": _bundle(
        {"type": "marking-definition", "id": TLP1_IDS[G], "definition_type": "tlp", "definition": {"tlp": "white"}},
        _indicator([TLP1_IDS[G]]),
    ),
    "stix2-rejects-tlp-amber-strict-in-tlp1-shape-but-name-says-red": _bundle(
        {"type": "marking-definition", "id": UNKNOWN, "definition_type": "tlp",
         "definition": {"tlp": "red"}, "name": "TLP:GREEN"},
        _indicator([UNKNOWN]),
    ),
}  # fmt: skip
MALFORMED_CASES.pop("opencti-amber-strict-without-object-is-known")


@pytest.mark.parametrize("case", sorted(MALFORMED_CASES))
def test_malformed_stix_is_quarantined(case):
    bundle = MALFORMED_CASES[case]
    labels = label_stix_bundle(bundle)
    indicator = "indicator--aaaaaaaa-0000-4000-8000-000000000001"
    if case == "stix2-rejects-tlp-amber-strict-in-tlp1-shape-but-name-says-red":
        # definition.tlp wins over the name (reference §2.4 order): RED, never the lower GREEN
        assert labels.labels[indicator] is R
        return
    assert labels.labels[indicator] is None, case
    assert labels.problems and labels.problems[0].element == indicator
    for recipient in (CORE, ECO, CONN):
        for channel in ("taxii", "rest", "feed", "misp-sync"):
            out = filter_stix_bundle(bundle, recipient, channel, source_org_uuid="org-src")
            assert out.bundle is None
            assert out.removed[0].reason in (Reason.QUARANTINE, Reason.RED_CHANNEL_FORBIDDEN) or (
                channel == "feed"
            )
    source = Recipient("org-src", "core", "active", True)
    assert filter_stix_bundle(bundle, source, "rest", source_org_uuid="org-src").bundle is None


def test_quarantined_container_quarantines_its_contents():
    report = {
        "type": "report",
        "id": "report--aaaaaaaa-0000-4000-8000-000000000003",
        "object_marking_refs": [UNKNOWN],
        "object_refs": ["indicator--aaaaaaaa-0000-4000-8000-000000000001"],
    }
    labels = label_stix_bundle(_bundle(report, _indicator([TLP2_IDS[G]])))
    assert set(labels.labels.values()) == {None}


def test_opencti_amber_strict_id_is_known_without_its_object():
    labels = label_stix_bundle(_bundle(_indicator([OPENCTI_AMBER_STRICT_ID])))
    assert set(labels.labels.values()) == {AS}


def test_single_object_and_non_bundles():
    single = load(FIXTURES / "stix" / "schemas-interop-objectmarking-test.json")
    assert list(label_stix_bundle(single).labels.values()) == [None]
    with pytest.raises(MalformedInput):
        label_stix_bundle([])  # type: ignore[arg-type]
    with pytest.raises(MalformedInput):
        label_stix_bundle({"type": "bundle", "objects": {}})
    odd = label_stix_bundle(_bundle("not an object", _indicator([TLP2_IDS[C]])))
    assert odd.problems[0].element == "#object-0"


def _assert_marked(bundle):
    """Every object carries exactly one TLP marking, and its definition is in the bundle."""
    definitions = {o["id"] for o in bundle["objects"] if o["type"] == "marking-definition"}
    tlp2 = set(TLP2_IDS.values())
    for obj in bundle["objects"]:
        if obj["type"] == "marking-definition":
            continue
        refs = obj["object_marking_refs"]
        assert len([r for r in refs if r in tlp2]) == 1, obj["id"]
        for ref in refs + [
            g["marking_ref"] for g in obj.get("granular_markings", ()) if "marking_ref" in g
        ]:
            assert ref in definitions, ref
