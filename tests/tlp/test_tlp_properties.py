"""Property tests over generated MISP events and STIX bundles.

The oracle for "what may survive" is `decide` applied per element with the labels from
`label_misp_event` / `label_stix_bundle` and addressing computed here from DESIGN.md §3, so the
filters' own bookkeeping (caches, fast paths, object handling) is checked against it.
"""

from __future__ import annotations

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlp import (
    TLP1_IDS,
    TLP2_IDS,
    Addressing,
    Channel,
    Policy,
    Recipient,
    Tlp,
    decide,
    filter_misp_event,
    filter_stix_bundle,
    label_misp_event,
    label_stix_bundle,
)

POLICY = Policy(version="prop-1")
ORGS = ("org-a", "org-b", "org-c", "org-d")
CORE_B = Recipient("org-b", "core", "active", True)
RECIPIENTS = (
    Recipient("org-a", "core", "active", True),
    CORE_B,
    Recipient("org-c", "ecosystem", "active", True),
    Recipient("org-d", "connection", "active", True),
    Recipient("org-b", "core", "suspended", True),
    Recipient("org-c", "ecosystem", "active", False),
    Recipient("org-z", None, "active", True),
    Recipient.constituent("org-hospital", via=CORE_B),
)
CHANNELS = tuple(Channel)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

labels = st.sampled_from([None, *Tlp])
event_dists = st.sampled_from(["0", "1", "2", "3", "4"])
child_dists = st.sampled_from(["5", "5", "5", "0", "1", "2", "3", "4"])
members = st.frozensets(st.sampled_from(ORGS), max_size=3)
SPELLINGS = {
    Tlp.CLEAR: ["tlp:clear", "tlp:white", "TLP:CLEAR"],
    Tlp.GREEN: ["tlp:green", "TLP:GREEN"],
    Tlp.AMBER: ["tlp:amber", "TLP: Amber"],
    Tlp.AMBER_STRICT: ["tlp:amber+strict", "TLP:AMBER+STRICT", "tlp:amber-strict"],
    Tlp.RED: ["tlp:red", "TLP:RED"],
}


@st.composite
def tag_lists(draw):
    label = draw(labels)
    tags = [{"name": "osint:x"}] if draw(st.booleans()) else []
    if label is not None:
        tags.append({"name": draw(st.sampled_from(SPELLINGS[label]))})
    return tags


@st.composite
def elements(draw, uuid, dists):
    element = {"uuid": uuid, "id": uuid, "value": uuid, "distribution": draw(dists)}
    tags = draw(tag_lists())
    if tags:
        element["Tag"] = tags
    if element["distribution"] == "4":
        element["SharingGroup"] = {
            "SharingGroupOrg": [{"Organisation": {"uuid": o}} for o in sorted(draw(members))]
        }
    return element


@st.composite
def misp_events(draw):
    event = draw(elements("ev", event_dists))
    event["Orgc"] = {"uuid": draw(st.sampled_from(ORGS))}
    event["Attribute"] = [
        draw(elements(f"a{i}", child_dists)) for i in range(draw(st.integers(0, 4)))
    ]
    objects = []
    for i in range(draw(st.integers(0, 3))):
        obj = draw(elements(f"o{i}", child_dists))
        obj.pop("Tag", None)  # MISP objects carry no tags
        obj["Attribute"] = [
            draw(elements(f"o{i}a{j}", child_dists)) for j in range(draw(st.integers(1, 3)))
        ]
        objects.append(obj)
    event["Object"] = objects
    return {"Event": event}


def _addressing(element, parent, source):
    dist = int(element["distribution"])
    if dist == 5:
        return parent
    if dist == 4:
        orgs = {e["Organisation"]["uuid"] for e in element["SharingGroup"]["SharingGroupOrg"]}
        own = Addressing.sharing_group(orgs | {source})
    else:
        own = Addressing(dist)
    return own if parent is None else parent.narrow(own)


def _allowed(label, addressing, recipient, channel, source):
    return decide(
        label=label,
        recipient=recipient,
        channel=channel,
        addressing=addressing,
        source_org_uuid=source,
        policy=POLICY,
    ).allowed


def expected_uuids(payload, recipient, channel):
    """The oracle: which uuids (event included) may reach `recipient` over `channel`."""
    ev = payload["Event"]
    source = ev["Orgc"]["uuid"]
    lab = label_misp_event(payload, policy=POLICY)
    e_addr = _addressing(ev, None, source)
    if not _allowed(lab.event, e_addr, recipient, channel, source):
        return set()
    kept = set()
    for attr in ev["Attribute"]:
        addr = _addressing(attr, e_addr, source)
        if _allowed(lab.attributes[attr["uuid"]], addr, recipient, channel, source):
            kept.add(attr["uuid"])
    for obj in ev["Object"]:
        o_addr = _addressing(obj, e_addr, source)
        ok = _allowed(lab.objects[obj["uuid"]], o_addr, recipient, channel, source)
        for attr in obj["Attribute"]:
            addr = _addressing(attr, o_addr, source)
            ok = ok and _allowed(lab.attributes[attr["uuid"]], addr, recipient, channel, source)
        if ok:
            kept.add(obj["uuid"])
            kept.update(a["uuid"] for a in obj["Attribute"])
    return kept | {"ev"} if kept else set()


def delivered_uuids(out):
    if out.event is None:
        return set()
    ev = out.event["Event"]
    found = {"ev"} | {a["uuid"] for a in ev["Attribute"]}
    for obj in ev["Object"]:
        found.add(obj["uuid"])
        found.update(a["uuid"] for a in obj["Attribute"])
    return found


def _tlp_tag(tags):
    names = [t["name"] for t in tags if t["name"].startswith("tlp:")]
    assert len(names) == 1, names
    return Tlp(names[0].removeprefix("tlp:"))


# --- MISP -----------------------------------------------------------------------------------------


@SETTINGS
@given(misp_events())
def test_misp_filter_matches_the_per_element_oracle_and_never_lowers_labels(payload):
    pristine = copy.deepcopy(payload)
    lab = label_misp_event(payload, policy=POLICY)
    for recipient in RECIPIENTS:
        for channel in CHANNELS:
            out = filter_misp_event(payload, recipient, channel, policy=POLICY)
            assert delivered_uuids(out) == expected_uuids(payload, recipient, channel)
            if out.event is None:
                continue
            ev = out.event["Event"]
            assert _tlp_tag(ev["Tag"]) == lab.event
            for attr in ev["Attribute"]:
                assert _tlp_tag(attr["Tag"]) == lab.attributes[attr["uuid"]]
            for obj in ev["Object"]:
                # an object goes whole under its own label, carried by every attribute in it
                whole = max([lab.attributes[a["uuid"]] for a in obj["Attribute"]], default=None)
                for attr in obj["Attribute"]:
                    assert _tlp_tag(attr["Tag"]) == whole
                    assert _tlp_tag(attr["Tag"]) >= lab.attributes[attr["uuid"]]
            text = json.dumps(out.event)
            for removed in out.removed:  # no denied element, nor a child of one, survives
                assert f'"{removed.uuid}"' not in text
            if channel in (Channel.FEED, Channel.TAXII, Channel.MISP_SYNC, Channel.EXPORT):
                assert '"tlp:red"' not in text
    assert payload == pristine


@st.composite
def raised(draw):
    """An event, and the same event with one element's TLP tag raised to at least its label."""
    payload = draw(misp_events())
    lab = label_misp_event(payload, policy=POLICY)
    ev = payload["Event"]
    paths = [("event", ev, lab.event)]
    paths += [("attr", a, lab.attributes[a["uuid"]]) for a in ev["Attribute"]]
    for obj in ev["Object"]:
        paths += [("attr", a, lab.attributes[a["uuid"]]) for a in obj["Attribute"]]
    index = draw(st.integers(0, len(paths) - 1))
    current = paths[index][2]
    higher = draw(st.sampled_from([t for t in Tlp if t >= current]))
    bumped = copy.deepcopy(payload)
    target = [("event", bumped["Event"], None)]
    target += [("attr", a, None) for a in bumped["Event"]["Attribute"]]
    for obj in bumped["Event"]["Object"]:
        target += [("attr", a, None) for a in obj["Attribute"]]
    element = target[index][1]
    element["Tag"] = [t for t in element.get("Tag", []) if not t["name"].lower().startswith("tlp")]
    element["Tag"].append({"name": higher.tag})
    return payload, bumped


@SETTINGS
@given(raised())
def test_raising_a_label_never_adds_a_recipient(pair):
    before, after = pair
    for recipient in RECIPIENTS:
        for channel in CHANNELS:
            was = delivered_uuids(filter_misp_event(before, recipient, channel, policy=POLICY))
            now = delivered_uuids(filter_misp_event(after, recipient, channel, policy=POLICY))
            assert now <= was


@SETTINGS
@given(misp_events())
def test_misp_filtering_is_idempotent(payload):
    source = payload["Event"]["Orgc"]["uuid"]
    kwargs = {"policy": POLICY, "source_org_uuid": source, "downgrade": False}
    for recipient in RECIPIENTS:
        for channel in CHANNELS:
            once = filter_misp_event(payload, recipient, channel, **kwargs)
            if once.event is None:
                continue
            twice = filter_misp_event(once.event, recipient, channel, **kwargs)
            assert twice.event == once.event and twice.removed == ()


@SETTINGS
@given(misp_events(), st.data())
def test_an_unknown_marking_is_never_allowed_anywhere(payload, data):
    ev = payload["Event"]
    candidates = [ev, *ev["Attribute"]] + [a for o in ev["Object"] for a in o["Attribute"]]
    element = data.draw(st.sampled_from(candidates))
    element.setdefault("Tag", []).append(
        {"name": data.draw(st.sampled_from(["tlp:mauve", "TLP:AMBER++", "tlp:"]))}
    )
    lab = label_misp_event(payload, policy=POLICY)
    assert lab.quarantined
    for recipient in RECIPIENTS:
        for channel in CHANNELS:
            found = delivered_uuids(filter_misp_event(payload, recipient, channel, policy=POLICY))
            assert element["uuid"] not in found
            for obj in ev["Object"]:
                if element in obj["Attribute"]:
                    assert obj["uuid"] not in found


# --- STIX -----------------------------------------------------------------------------------------

MARKINGS = {
    None: [],
    Tlp.CLEAR: [TLP2_IDS[Tlp.CLEAR], TLP1_IDS[Tlp.CLEAR]],
    Tlp.GREEN: [TLP2_IDS[Tlp.GREEN], TLP1_IDS[Tlp.GREEN]],
    Tlp.AMBER: [TLP2_IDS[Tlp.AMBER], TLP1_IDS[Tlp.AMBER]],
    Tlp.AMBER_STRICT: [TLP2_IDS[Tlp.AMBER_STRICT], "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"],
    Tlp.RED: [TLP2_IDS[Tlp.RED], TLP1_IDS[Tlp.RED]],
}  # fmt: skip
UNKNOWN_REF = "marking-definition--00000000-0000-4000-8000-00000000dead"


def _sdo(i, refs):
    obj = {"type": "indicator", "id": f"indicator--00000000-0000-4000-8000-{i:012d}"}
    if refs:
        obj["object_marking_refs"] = refs
    return obj


@st.composite
def bundles(draw, unknown=False):
    objects = []
    for i in range(draw(st.integers(1, 5))):
        label = draw(labels)
        refs = [draw(st.sampled_from(MARKINGS[label]))] if label is not None else []
        objects.append(_sdo(i, refs))
    ids = [o["id"] for o in objects]
    for k in range(draw(st.integers(0, 3))):
        label = draw(labels)
        rel = {
            "type": "relationship",
            "id": f"relationship--00000000-0000-4000-8000-{k:012d}",
            "source_ref": draw(st.sampled_from(ids)),
            "target_ref": draw(st.sampled_from(ids)),
        }
        if label is not None:
            rel["object_marking_refs"] = [draw(st.sampled_from(MARKINGS[label]))]
        objects.append(rel)
    if draw(st.booleans()):
        label = draw(labels)
        report = {
            "type": "report",
            "id": "report--00000000-0000-4000-8000-000000000001",
            "object_refs": draw(st.lists(st.sampled_from(ids), unique=True)),
        }
        if label is not None:
            report["object_marking_refs"] = [draw(st.sampled_from(MARKINGS[label]))]
        objects.append(report)
    if unknown:
        victim = draw(st.sampled_from(objects))
        victim.setdefault("object_marking_refs", []).append(UNKNOWN_REF)
    return {
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-000000000000",
        "objects": objects,
    }


ADDRESSINGS = (Addressing(1), Addressing(3), Addressing.sharing_group({"org-a", "org-b"}))


def _stix_filter(bundle, recipient, channel, addressing):
    return filter_stix_bundle(
        bundle, recipient, channel, source_org_uuid="org-a", addressing=addressing, policy=POLICY
    )


def _content_ids(out):
    if out.bundle is None:
        return set()
    return {o["id"] for o in out.bundle["objects"] if o["type"] != "marking-definition"}


@SETTINGS
@given(bundles())
def test_stix_filter_matches_decide_and_marks_every_object(bundle):
    pristine = copy.deepcopy(bundle)
    lab = label_stix_bundle(bundle, policy=POLICY)
    for addressing in ADDRESSINGS:
        for recipient in RECIPIENTS:
            for channel in CHANNELS:
                out = _stix_filter(bundle, recipient, channel, addressing)
                kept = _content_ids(out)
                for obj in bundle["objects"]:
                    allowed = _allowed(
                        lab.labels[obj["id"]], addressing, recipient, channel, "org-a"
                    )
                    if obj["type"] == "relationship" and allowed:
                        allowed = {obj["source_ref"], obj["target_ref"]} <= kept
                    assert (obj["id"] in kept) == allowed, obj["id"]
                if out.bundle is None:
                    continue
                text = json.dumps(out.bundle)
                for removed in out.removed:
                    assert f'"{removed.uuid}"' not in text
                if channel in (Channel.FEED, Channel.TAXII, Channel.MISP_SYNC, Channel.EXPORT):
                    assert TLP2_IDS[Tlp.RED] not in text and TLP1_IDS[Tlp.RED] not in text
                for obj in out.bundle["objects"]:
                    if obj["type"] == "marking-definition":
                        continue
                    (tlp_ref,) = [r for r in obj["object_marking_refs"] if r in TLP2_IDS.values()]
                    assert tlp_ref == TLP2_IDS[lab.labels[obj["id"]]]  # never lower than input
                # idempotent
                again = _stix_filter(out.bundle, recipient, channel, addressing)
                assert again.bundle == out.bundle
    assert bundle == pristine


@st.composite
def raised_bundles(draw):
    bundle = draw(bundles())
    lab = label_stix_bundle(bundle, policy=POLICY)
    bumped = copy.deepcopy(bundle)
    obj = draw(st.sampled_from(bumped["objects"]))
    higher = draw(st.sampled_from([t for t in Tlp if t >= lab.labels[obj["id"]]]))
    obj.setdefault("object_marking_refs", []).append(TLP2_IDS[higher])
    return bundle, bumped


@SETTINGS
@given(raised_bundles())
def test_stix_raising_a_label_never_adds_a_recipient(pair):
    before, after = pair
    for addressing in ADDRESSINGS:
        for recipient in RECIPIENTS:
            for channel in CHANNELS:
                was = _content_ids(_stix_filter(before, recipient, channel, addressing))
                now = _content_ids(_stix_filter(after, recipient, channel, addressing))
                assert now <= was


@SETTINGS
@given(bundles(unknown=True))
def test_stix_unknown_marking_is_never_allowed_anywhere(bundle):
    lab = label_stix_bundle(bundle, policy=POLICY)
    quarantined = {i for i, label in lab.labels.items() if label is None}
    assert quarantined and lab.quarantined
    for addressing in ADDRESSINGS:
        for recipient in RECIPIENTS:
            for channel in CHANNELS:
                assert not quarantined & _content_ids(
                    _stix_filter(bundle, recipient, channel, addressing)
                )
