"""filter_misp_event and label_misp_event: behaviour on small hand-made events."""

from __future__ import annotations

import copy

import pytest

from tlp import (
    Policy,
    Reason,
    Recipient,
    SourcePolicy,
    Tlp,
    filter_misp_event,
    label_misp_event,
)

SRC = "org-src"
CORE = Recipient("org-core", tier="core", status="active", tlp_accepted=True)
ECO = Recipient("org-eco", tier="ecosystem", status="active", tlp_accepted=True)
CONN = Recipient("org-conn", tier="connection", status="active", tlp_accepted=True)
SOURCE = Recipient(SRC, tier="core", status="active", tlp_accepted=True)


def tags(*names, local=False):
    return [{"name": n, "local": local} for n in names]


def attr(uuid, *tag_names, dist="5", **extra):
    a = {"uuid": uuid, "id": uuid, "type": "ip-dst", "value": uuid, "distribution": dist, **extra}
    if tag_names:
        a["Tag"] = tags(*tag_names)
    return a


def event(*attributes, label="tlp:green", dist="1", objects=(), **extra):
    ev = {
        "uuid": "ev-1",
        "info": "secret title",
        "distribution": dist,
        "Orgc": {"uuid": SRC, "name": "Source"},
        "Org": {"uuid": SRC, "name": "Source"},
        "Tag": tags(label) if label else [],
        "Attribute": list(attributes),
        "Object": list(objects),
        **extra,
    }
    return {"Event": ev}


def sg(*orgs):
    return {
        "uuid": "sg-" + "-".join(orgs),
        "Organisation": {"uuid": SRC},
        "SharingGroupOrg": [{"Organisation": {"uuid": o}} for o in orgs],
    }


def uuids(out, key="Attribute"):
    return [a["uuid"] for a in out.event["Event"][key]]


def test_denied_event_returns_nothing_not_even_the_title():
    out = filter_misp_event(event(attr("a1"), label="tlp:amber"), CONN, "rest")
    assert out.event is None
    assert out.reason is Reason.ABOVE_TIER_CEILING
    assert [(r.kind, r.uuid) for r in out.removed] == [("event", "ev-1")]
    assert "secret title" not in repr(out)


def test_event_with_nothing_left_is_not_delivered():
    out = filter_misp_event(event(attr("a1", "tlp:red")), CORE, "misp-sync")
    assert out.event is None and out.reason is Reason.NOTHING_LEFT
    assert out.decision.allowed  # the event itself was allowed


def test_report_keeps_an_event_alive():
    report = {"uuid": "r1", "name": "r", "content": "x", "distribution": "5"}
    out = filter_misp_event(event(attr("a1", "tlp:red"), EventReport=[report]), CORE, "rest")
    assert out.delivered and out.event["Event"]["EventReport"] == [report]
    hub_only = {**report, "distribution": "0"}
    out = filter_misp_event(event(attr("a1", "tlp:red"), EventReport=[hub_only]), CORE, "taxii")
    assert out.event is None


def test_attribute_tags_never_lower_the_inherited_label_by_default():
    ev = event(attr("a1", "tlp:clear"), label="tlp:amber")
    assert label_misp_event(ev).attributes["a1"] is Tlp.AMBER
    lenient = SourcePolicy(allow_attribute_downgrade=True)
    assert label_misp_event(ev, source_policy=lenient).attributes["a1"] is Tlp.CLEAR
    per_source = Policy(version="p", sources={SRC: lenient})
    assert label_misp_event(ev, policy=per_source).attributes["a1"] is Tlp.CLEAR
    out = filter_misp_event(ev, CORE, "rest")
    assert [t["name"] for t in out.event["Event"]["Attribute"][0]["Tag"]] == ["tlp:amber"]


def test_unlabelled_gets_the_source_default():
    ev = event(attr("a1"), label=None)
    assert label_misp_event(ev).event is Tlp.AMBER_STRICT
    green_default = Policy(version="p", sources={SRC: SourcePolicy(default_label=Tlp.GREEN)})
    assert label_misp_event(ev, policy=green_default).attributes["a1"] is Tlp.GREEN
    assert filter_misp_event(ev, CORE, "rest", policy=green_default).delivered
    assert filter_misp_event(ev, CORE, "rest").reason is Reason.HUB_ONLY


def test_object_goes_or_stays_whole():
    obj = {
        "uuid": "o1",
        "distribution": "5",
        "Attribute": [attr("oa1"), attr("oa2", "tlp:amber"), attr("oa3")],
    }
    ev = event(attr("a1"), objects=[obj])
    labels = label_misp_event(ev)
    assert labels.objects["o1"] is Tlp.AMBER
    assert labels.attributes["oa1"] is Tlp.GREEN
    out = filter_misp_event(ev, CONN, "rest")
    assert uuids(out) == ["a1"] and out.event["Event"]["Object"] == []
    removed = {r.uuid: r.reason for r in out.removed}
    assert removed == {
        "o1": Reason.ABOVE_TIER_CEILING,
        "oa1": Reason.PARENT_REMOVED,
        "oa2": Reason.PARENT_REMOVED,
        "oa3": Reason.PARENT_REMOVED,
    }
    kept = filter_misp_event(ev, ECO, "rest").event["Event"]["Object"][0]
    # The object goes whole under its own label: every attribute in it carries it.
    assert [a["Tag"][-1]["name"] for a in kept["Attribute"]] == ["tlp:amber"] * 3


def test_an_attribute_addressed_to_the_hub_alone_takes_its_object_with_it():
    obj = {"uuid": "o1", "Attribute": [attr("oa1"), attr("oa2", dist="0")]}
    out = filter_misp_event(event(attr("a1"), objects=[obj]), CORE, "rest")
    removed = {r.uuid: r.reason for r in out.removed}
    assert removed["o1"] is Reason.OBJECT_WHOLE
    assert removed["oa2"] is Reason.HUB_ONLY
    assert removed["oa1"] is Reason.PARENT_REMOVED
    # the source gets it all back
    assert filter_misp_event(event(attr("a1"), objects=[obj]), SOURCE, "rest").removed == ()


def test_element_sharing_group_reaches_members_who_may_see_the_event():
    a_sg = attr("a2", dist="4", SharingGroup=sg("org-eco"))
    ev = event(attr("a1"), a_sg)
    assert uuids(filter_misp_event(ev, ECO, "rest")) == ["a1", "a2"]
    out = filter_misp_event(ev, CORE, "rest")
    assert uuids(out) == ["a1"] and out.removed[0].reason is Reason.NOT_ADDRESSED
    # event sharing group without ECO: the attribute's own group cannot widen it
    narrow = event(a_sg, attr("a1"), dist="4", SharingGroup=sg("org-core"))
    assert filter_misp_event(narrow, ECO, "rest").reason is Reason.NOT_ADDRESSED
    # element referring to a sharing group by id only: found on another element
    by_id = attr("a3", dist="4", sharing_group_id="77")
    ev = event(attr("a1"), {**a_sg, "sharing_group_id": "77"}, by_id)
    assert uuids(filter_misp_event(ev, ECO, "rest")) == ["a1", "a2", "a3"]
    # unknown group: only the source is sure to be in it
    ev = event(attr("a1"), attr("a4", dist="4", sharing_group_id="99"))
    assert uuids(filter_misp_event(ev, ECO, "rest")) == ["a1"]


def test_amber_strict_and_red_need_a_named_sharing_group():
    ev = event(attr("a1", "tlp:amber+strict"), attr("a2", "tlp:red"), attr("a3"),
               dist="4", SharingGroup=sg("org-core"))  # fmt: skip
    assert uuids(filter_misp_event(ev, CORE, "rest")) == ["a1", "a2", "a3"]
    assert uuids(filter_misp_event(ev, CORE, "misp-sync")) == ["a1", "a3"]
    community = event(attr("a1", "tlp:amber+strict"), attr("a3"))
    out = filter_misp_event(community, CORE, "rest")
    assert uuids(out) == ["a3"] and out.removed[0].reason is Reason.HUB_ONLY


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0", "0"),
        ("1", "0"),
        ("2", "1"),
        ("3", "3"),
        ("4", "4"),
        ("5", "5"),
        (1, 0),
        (2, 1),
        (3, 3),
    ],
)
def test_distribution_is_downgraded_as_misp_does_on_sync(given, expected):
    members = sg("org-core") if given in ("4", 4) else None
    ev = event(attr("a1"), dist="3", label="tlp:clear")
    ev["Event"]["Attribute"].append(
        attr("a2", dist=given, **({"SharingGroup": members} if members else {}))
    )
    ev["Event"]["distribution"] = given if given not in ("0", "5", "4") else "3"
    out = filter_misp_event(ev, SOURCE, "misp-sync")
    a2 = next(a for a in out.event["Event"]["Attribute"] if a["uuid"] == "a2")
    assert a2["distribution"] == expected
    raw = filter_misp_event(ev, SOURCE, "misp-sync", downgrade=False)
    assert (
        next(a for a in raw.event["Event"]["Attribute"] if a["uuid"] == "a2")["distribution"]
        == given
    )


def test_tlp_tags_are_rewritten_local_tags_dropped_others_kept():
    a = attr("a1")
    a["Tag"] = [
        {"name": "TLP:GREEN"},
        {"name": "tlp:unclear"},
        {"name": 'osint:source-type="blog"'},
        {"name": "internal:note", "local": True},
    ]
    ev = event(a, label="tlp:amber")
    ev["Event"]["Tag"].append({"name": 'workflow:state="complete"'})
    out = filter_misp_event(ev, CORE, "rest").event["Event"]
    assert [t["name"] for t in out["Attribute"][0]["Tag"]] == [
        'osint:source-type="blog"',
        "tlp:amber",
    ]
    assert [t["name"] for t in out["Tag"]] == ['workflow:state="complete"', "tlp:amber"]


def test_chr_strips_attribution_for_everyone_but_the_source():
    ev = event(attr("a1"), event_creator_email="analyst@src.example")
    ev["Event"]["Tag"] += tags("tlp:ex:chr", 'misp-galaxy:producer="Source"', "PAP:GREEN")
    out = filter_misp_event(ev, CORE, "rest")
    stripped = out.event["Event"]
    assert not {"Orgc", "Org", "event_creator_email"} & set(stripped)
    assert [t["name"] for t in stripped["Tag"]] == ["tlp:ex:chr", "PAP:GREEN", "tlp:green"]
    assert out.decision.obligation.strip_attribution
    assert out.decision.obligation.handling == ("PAP:GREEN",)
    own = filter_misp_event(ev, SOURCE, "rest")
    assert (
        own.event["Event"]["Orgc"]["uuid"] == SRC and not own.decision.obligation.strip_attribution
    )


def test_references_sightings_proposals_and_correlations_of_removed_elements_go():
    obj_kept = {
        "uuid": "o1",
        "Attribute": [attr("oa1")],
        "ObjectReference": [
            {"uuid": "r1", "referenced_uuid": "a-red"},
            {"uuid": "r2", "referenced_uuid": "a1"},
            {"uuid": "r3", "referenced_uuid": "o-red"},
        ],
    }
    obj_red = {"uuid": "o-red", "Attribute": [attr("ora", "tlp:red")]}
    ev = event(
        attr("a1", RelatedAttribute=[{"id": "9", "info": "another event"}]),
        attr("a-red", "tlp:red", id="55"),
        objects=[obj_kept, obj_red],
        Sighting=[
            {"uuid": "s1", "attribute_uuid": "a1"},
            {"uuid": "s2", "attribute_uuid": "a-red"},
        ],
        ShadowAttribute=[{"uuid": "p1", "old_id": "55"}, {"uuid": "p2", "old_id": "0"}],
        RelatedEvent=[{"Event": {"info": "an event the recipient may not see"}}],
    )
    out = filter_misp_event(ev, CORE, "misp-sync").event["Event"]
    assert [r["uuid"] for r in out["Object"][0]["ObjectReference"]] == ["r2"]
    assert [s["uuid"] for s in out["Sighting"]] == ["s1"]
    assert (
        "ShadowAttribute" not in out
    )  # proposals never leave (DESIGN §3), whatever they are about
    assert "RelatedEvent" not in out and "RelatedAttribute" not in out["Attribute"][0]


def test_quarantine_of_an_element_and_of_the_event():
    ev = event(attr("a1"), attr("a2", "tlp:yellow"))
    labels = label_misp_event(ev)
    assert labels.attributes == {"a1": Tlp.GREEN, "a2": None} and labels.quarantined
    problem = labels.problems[0]
    assert (problem.element, problem.kind, problem.field, problem.value) == (
        "a2",
        "attribute",
        "Tag",
        "tlp:yellow",
    )
    out = filter_misp_event(ev, SOURCE, "rest")
    assert uuids(out) == ["a1"] and out.removed[0].reason is Reason.QUARANTINE
    bad_event = event(attr("a1"), label="TLP:AMBRE")
    labels = label_misp_event(bad_event)
    assert labels.event is None and labels.attributes == {"a1": None}
    out = filter_misp_event(bad_event, SOURCE, "rest")
    assert out.event is None and out.reason is Reason.QUARANTINE
    bad_dist = event(attr("a1"), dist="9")
    assert label_misp_event(bad_dist).event is None
    assert filter_misp_event(bad_dist, SOURCE, "rest").reason is Reason.QUARANTINE
    obj = {"uuid": "o1", "Attribute": [attr("oa1"), attr("oa2", "tlp:maybe")]}
    labels = label_misp_event(event(objects=[obj]))
    assert labels.objects == {"o1": None} and labels.attributes == {"oa1": Tlp.GREEN, "oa2": None}


def test_in_place_gives_the_same_result_and_copy_mode_leaves_the_input_alone():
    obj = {"uuid": "o1", "Attribute": [attr("oa1", dist="2")], "distribution": "1"}
    ev = event(attr("a1"), attr("a2", "tlp:red"), attr("a3", dist="2"), objects=[obj])
    pristine = copy.deepcopy(ev)
    copied = filter_misp_event(ev, CORE, "misp-sync")
    assert ev == pristine
    in_place = filter_misp_event(copy.deepcopy(ev), CORE, "misp-sync", in_place=True)
    assert in_place.event == copied.event and in_place.removed == copied.removed
    assert copied.event["Event"]["Object"][0]["distribution"] == "0"
    assert copied.event["Event"]["Object"][0]["Attribute"][0]["distribution"] == "1"


def test_bare_event_stays_bare():
    out = filter_misp_event(event(attr("a1"))["Event"], CORE, "rest")
    assert "Event" not in out.event and out.event["uuid"] == "ev-1"


def test_the_garbage_collector_is_left_as_it_was():
    import gc

    from tlp import MalformedInput

    assert gc.isenabled()
    filter_misp_event(event(attr("a1")), CORE, "rest")
    assert gc.isenabled()
    with pytest.raises(MalformedInput):
        filter_misp_event(event(attr("a1"), objects=["not an object"]), CORE, "rest")
    assert gc.isenabled()
    gc.disable()
    try:
        filter_misp_event(event(attr("a1")), CORE, "rest")
        assert not gc.isenabled()
    finally:
        gc.enable()
