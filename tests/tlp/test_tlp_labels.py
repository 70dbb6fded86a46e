"""Labels and markings: order, strict-meaning/lenient-spelling parsing, MISP tags, STIX refs."""

from __future__ import annotations

import pytest

from tlp import (
    KNOWN_MARKING_IDS,
    TLP1_IDS,
    TLP2_IDS,
    MalformedMarking,
    MarkingResolver,
    Tlp,
    TLPError,
    UnknownMarking,
    misp_tag_markings,
    parse_label,
    parse_tag,
    tlp1_marking_definition,
    tlp2_marking_definition,
)
from tlp.labels import OPENCTI_AMBER_STRICT_ID, TLP2_EXTENSION_ID, Flag


def test_order_and_ranks():
    assert sorted([Tlp.RED, Tlp.CLEAR, Tlp.AMBER_STRICT, Tlp.GREEN, Tlp.AMBER]) == [
        Tlp.CLEAR,
        Tlp.GREEN,
        Tlp.AMBER,
        Tlp.AMBER_STRICT,
        Tlp.RED,
    ]
    assert [t.rank for t in Tlp] == [0, 1, 2, 3, 4]
    assert all(Tlp.from_rank(t.rank) is t for t in Tlp)
    assert Tlp.AMBER < Tlp.AMBER_STRICT  # never the same rank (OpenCTI pitfall)
    assert max(Tlp.AMBER, Tlp.AMBER_STRICT) is Tlp.AMBER_STRICT


def test_contract_spellings():
    assert [t.value for t in Tlp] == ["clear", "green", "amber", "amber+strict", "red"]
    assert Tlp("amber+strict") is Tlp.AMBER_STRICT
    assert Tlp.AMBER_STRICT.tag == "tlp:amber+strict"
    assert Tlp.AMBER_STRICT.display == "TLP:AMBER+STRICT"
    assert f"{Tlp.RED}" == "red"


def test_comparison_with_strings_is_not_tlp_order():
    with pytest.raises(TypeError):
        _ = Tlp.RED < 3  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("clear", Tlp.CLEAR),
        ("tlp:clear", Tlp.CLEAR),
        ("TLP:WHITE", Tlp.CLEAR),
        ("tlp:white", Tlp.CLEAR),
        ("green", Tlp.GREEN),
        ("TLP:GREEN", Tlp.GREEN),
        (" tlp : green ", Tlp.GREEN),
        ("TLP AMBER", Tlp.AMBER),
        ("tlp:amber", Tlp.AMBER),
        ("tlp:amber+strict", Tlp.AMBER_STRICT),
        ("TLP:AMBER+STRICT", Tlp.AMBER_STRICT),
        ("tlp:amber-strict", Tlp.AMBER_STRICT),
        ("tlp:amber_strict", Tlp.AMBER_STRICT),
        ("TLP: Amber + Strict", Tlp.AMBER_STRICT),
        ("amber strict", Tlp.AMBER_STRICT),
        ("tlp:red", Tlp.RED),
        ("Red", Tlp.RED),
        ('tlp:"red"', Tlp.RED),
    ],
)
def test_parse_label_is_lenient_about_spelling(text, expected):
    assert parse_label(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "tlp:yellow",
        "tlp:amber+",
        "tlp:amberish",
        "tlp:strict",
        "tlp:",
        "tlp",
        "TLP:AMBER STRICT PLUS",
        "tlp:red:extra",
        "tlp:ex:chr",  # a flag, not a label
        "tlp:unclear",
        "orange",
        "",
        "pap:red",
    ],
)
def test_parse_label_is_strict_about_meaning(text):
    with pytest.raises(UnknownMarking) as caught:
        parse_label(text)
    assert caught.value.value == text


def test_parse_label_rejects_non_strings():
    with pytest.raises(MalformedMarking):
        parse_label(3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tag", "label", "flag", "pap"),
    [
        ("tlp:green", Tlp.GREEN, None, None),
        ("TLP:EX:CHR", None, Flag.CHR, None),
        ("tlp:unclear", None, Flag.UNCLEAR, None),
        ("PAP:AMBER", None, None, "PAP:AMBER"),
        ("pap:white", None, None, "PAP:CLEAR"),
        ("PAP:OBSCURE", None, None, "PAP:OBSCURE"),
        ('osint:source-type="blog-post"', None, None, None),
        ('misp-galaxy:threat-actor="Sofacy"', None, None, None),
        ("tlpx", None, None, None),  # no separator: not in the TLP namespace
    ],
)
def test_parse_tag(tag, label, flag, pap):
    meaning = parse_tag(tag)
    assert (meaning.label, meaning.flag, meaning.pap) == (label, flag, pap)


def test_unknown_tlp_tag_is_an_error_not_a_guess():
    with pytest.raises(UnknownMarking):
        parse_tag("tlp:amber-ish")
    with pytest.raises(UnknownMarking):
        misp_tag_markings([{"name": "tlp:green"}, {"name": "tlp:purple"}])


def test_misp_tag_markings_shapes_and_conflicts():
    markings = misp_tag_markings(
        [
            {"name": "tlp:green"},
            {"Tag": {"name": "TLP:AMBER"}},  # EventTag shape
            "tlp:ex:chr",
            {"name": "PAP:RED"},
            {"name": 'osint:certainty="93"'},
        ]
    )
    assert markings.label is Tlp.AMBER
    assert markings.chr is True
    assert markings.handling == ("PAP:RED",)
    assert misp_tag_markings(None).label is None
    assert misp_tag_markings([{"name": "tlp:unclear"}]).label is None
    with pytest.raises(MalformedMarking):
        misp_tag_markings([{"colour": "#fff"}])
    with pytest.raises(MalformedMarking):
        misp_tag_markings({"name": "tlp:red"})  # type: ignore[arg-type]


def test_errors_share_a_base():
    assert issubclass(UnknownMarking, TLPError) and issubclass(MalformedMarking, TLPError)


# --- STIX ids -------------------------------------------------------------------------------------


def test_known_ids():
    assert len(KNOWN_MARKING_IDS) == 10
    assert KNOWN_MARKING_IDS[TLP1_IDS[Tlp.CLEAR]] is Tlp.CLEAR  # TLP 1.0 WHITE
    assert KNOWN_MARKING_IDS[OPENCTI_AMBER_STRICT_ID] is Tlp.AMBER_STRICT
    for label in Tlp:
        definition = tlp2_marking_definition(label)
        assert definition["id"] == TLP2_IDS[label] == label.stix_id
        assert definition["extensions"][TLP2_EXTENSION_ID]["tlp_2_0"] == label.value
        assert (
            MarkingResolver({definition["id"]: definition}).resolve(definition["id"]).label is label
        )
    assert tlp1_marking_definition(Tlp.CLEAR)["definition"] == {"tlp": "white"}


def _md(ident: str, **fields):
    return {"type": "marking-definition", "spec_version": "2.1", "id": ident, **fields}


NEW_ID = "marking-definition--11111111-2222-4333-8444-555555555555"


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        # OpenCTI, newer converter: definition_type "TLP", name, no definition
        (_md(OPENCTI_AMBER_STRICT_ID, definition_type="TLP", name="TLP:AMBER+STRICT"), Tlp.AMBER_STRICT),
        # OpenCTI, older export: definition {tlp: amber+strict}
        (_md(OPENCTI_AMBER_STRICT_ID, definition_type="tlp", definition={"tlp": "amber+strict"}), Tlp.AMBER_STRICT),
        # OpenCTI CLEAR on the TLP 1.0 WHITE id
        (_md(TLP1_IDS[Tlp.CLEAR], definition_type="tlp", name="TLP:CLEAR", definition={"tlp": "clear"}), Tlp.CLEAR),
        # an unknown id that says what it is
        (_md(NEW_ID, definition_type="tlp", definition={"tlp": "green"}), Tlp.GREEN),
        (_md(NEW_ID, name="TLP:RED"), Tlp.RED),
        (_md(NEW_ID, extensions={TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": "amber"}}), Tlp.AMBER),
        # non-TLP markings are kept, not labels
        (_md(NEW_ID, definition_type="statement", definition={"statement": "Copyright X"}), None),
        (_md(NEW_ID, definition_type="PAP", name="PAP:GREEN"), None),
    ],
)  # fmt: skip
def test_resolver_accepts_known_variants(definition, expected):
    resolved = MarkingResolver({definition["id"]: definition}).resolve(definition["id"])
    assert resolved.label is expected


@pytest.mark.parametrize(
    ("definitions", "ref", "error"),
    [
        ({}, NEW_ID, UnknownMarking),  # neither known nor in the bundle
        ({}, "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ec", UnknownMarking),
        ({}, "identity--11111111-2222-4333-8444-555555555555", MalformedMarking),
        ({}, 42, MalformedMarking),
        ({NEW_ID: _md(NEW_ID, definition_type="tlp")}, NEW_ID, MalformedMarking),
        ({NEW_ID: _md(NEW_ID, definition_type="tlp", definition={"tlp": "yellow"})}, NEW_ID, UnknownMarking),
        ({NEW_ID: _md(NEW_ID, definition_type="tlp", definition={"tlp": 3})}, NEW_ID, MalformedMarking),
        ({NEW_ID: _md(NEW_ID, name="TLP:ORANGE")}, NEW_ID, UnknownMarking),
        ({NEW_ID: _md(NEW_ID, extensions={TLP2_EXTENSION_ID: {}})}, NEW_ID, MalformedMarking),
        ({NEW_ID: _md(NEW_ID, extensions=[1])}, NEW_ID, MalformedMarking),
        ({NEW_ID: {"type": "indicator", "id": NEW_ID}}, NEW_ID, MalformedMarking),
        # a known id whose object contradicts it
        ({TLP1_IDS[Tlp.AMBER]: _md(TLP1_IDS[Tlp.AMBER], definition_type="tlp", definition={"tlp": "red"})},
         TLP1_IDS[Tlp.AMBER], MalformedMarking),
        ({TLP2_IDS[Tlp.RED]: _md(TLP2_IDS[Tlp.RED], definition_type="statement", definition={"statement": "x"})},
         TLP2_IDS[Tlp.RED], MalformedMarking),
    ],
)  # fmt: skip
def test_resolver_refuses_to_guess(definitions, ref, error):
    with pytest.raises(error):
        MarkingResolver(definitions).resolve(ref)


def test_object_markings_take_the_most_restrictive_and_keep_statements():
    statement = _md(NEW_ID, definition_type="statement", definition={"statement": "(c)"})
    resolver = MarkingResolver({NEW_ID: statement})
    label, others = resolver.object_markings(
        {
            "object_marking_refs": [TLP2_IDS[Tlp.GREEN], NEW_ID],
            "granular_markings": [
                {"marking_ref": TLP1_IDS[Tlp.RED], "selectors": ["description"]},
                {"lang": "nl", "selectors": ["name"]},
            ],
        }
    )
    assert label is Tlp.RED
    assert others == (NEW_ID,)
    with pytest.raises(MalformedMarking):
        resolver.object_markings({"object_marking_refs": TLP2_IDS[Tlp.GREEN]})
    with pytest.raises(MalformedMarking):
        resolver.object_markings({"granular_markings": [{"selectors": ["name"]}]})
