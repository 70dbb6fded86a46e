"""TLP labels: the order, strict-meaning/lenient-spelling parsing, and the STIX id tables.

The order is CLEAR < GREEN < AMBER < AMBER+STRICT < RED (TLP 2.0); TLP 1.0 WHITE reads as CLEAR.
AMBER and AMBER+STRICT never share a rank (some OpenCTI installs do that; see
reference/tlp-stix-taxii.md §2.7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Any

from tlp.errors import MalformedMarking, UnknownMarking


class Tlp(StrEnum):
    """A TLP 2.0 label, ordered by restrictiveness.

    The string value is the contract spelling (`"amber+strict"`), so the members serialise as
    the hub's JSON and CLI spell them. Comparisons (`<`, `max`) follow the TLP order, not the
    alphabet.

    >>> Tlp.AMBER < Tlp.AMBER_STRICT < Tlp.RED
    True
    >>> max(Tlp.GREEN, Tlp.CLEAR), Tlp.AMBER_STRICT.tag
    (<Tlp.GREEN: 'green'>, 'tlp:amber+strict')
    """

    CLEAR = "clear"
    GREEN = "green"
    AMBER = "amber"
    AMBER_STRICT = "amber+strict"
    RED = "red"

    @property
    def rank(self) -> int:
        """0 (CLEAR) … 4 (RED); the column the hub stores for SQL pre-filtering."""
        return _RANK[self]

    @property
    def tag(self) -> str:
        """The MISP tag, e.g. `tlp:amber+strict`."""
        return "tlp:" + self.value

    @property
    def display(self) -> str:
        """The FIRST spelling, e.g. `TLP:AMBER+STRICT`."""
        return "TLP:" + self.value.upper()

    @property
    def stix_id(self) -> str:
        """The OASIS TLP 2.0 marking-definition id the hub writes on output."""
        return TLP2_IDS[self]

    @property
    def first_sentence(self) -> str:
        """FIRST's one-line rule for what a recipient may do with it (TLP 2.0)."""
        return FIRST_SENTENCES[self]

    @classmethod
    def from_rank(cls, rank: int) -> Tlp:
        """The label with this rank (0..4)."""
        return _BY_RANK[rank]

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Tlp):
            return _RANK[self] < _RANK[other]
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Tlp):
            return _RANK[self] <= _RANK[other]
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Tlp):
            return _RANK[self] > _RANK[other]
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Tlp):
            return _RANK[self] >= _RANK[other]
        return NotImplemented


_BY_RANK: tuple[Tlp, ...] = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)
_RANK: dict[Tlp, int] = {label: rank for rank, label in enumerate(_BY_RANK)}

# FIRST TLP 2.0 (first.org/tlp), as quoted in the MISP `tlp` taxonomy.
FIRST_SENTENCES: dict[Tlp, str] = {
    Tlp.CLEAR: "Recipients can spread this to the world, there is no limit on disclosure.",
    Tlp.GREEN: "Limited disclosure, recipients can spread this within their community.",
    Tlp.AMBER: (
        "Limited disclosure, recipients can only spread this on a need-to-know basis within "
        "their organization and its clients."
    ),
    Tlp.AMBER_STRICT: (
        "Limited disclosure, recipients can only spread this on a need-to-know basis within "
        "their organization."
    ),
    Tlp.RED: "For the eyes and ears of individual recipients only, no further disclosure.",
}

# --- STIX marking-definition ids (reference/tlp-stix-taxii.md §2.2-2.4) -----------------------

TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

TLP1_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",  # TLP:WHITE
    Tlp.GREEN: "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    Tlp.AMBER: "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    Tlp.RED: "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
TLP2_IDS: dict[Tlp, str] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
OPENCTI_AMBER_STRICT_ID = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"

#: Every marking-definition id whose meaning is fixed, whether or not the bundle carries it.
KNOWN_MARKING_IDS: dict[str, Tlp] = {
    **{mid: label for label, mid in TLP1_IDS.items()},
    **{mid: label for label, mid in TLP2_IDS.items()},
    OPENCTI_AMBER_STRICT_ID: Tlp.AMBER_STRICT,
}


def tlp2_marking_definition(label: Tlp) -> dict[str, Any]:
    """The OASIS TLP 2.0 marking-definition object for `label` (a fresh dict).

    STIX 2.1 does not predefine these, so every bundle the hub emits must carry the ones it uses.
    """
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_IDS[label],
        "created": "2022-10-01T00:00:00.000Z",
        "name": label.display,
        "extensions": {
            TLP2_EXTENSION_ID: {"extension_type": "property-extension", "tlp_2_0": label.value}
        },
    }


def tlp1_marking_definition(label: Tlp) -> dict[str, Any]:
    """The STIX 2.1 built-in TLP 1.0 marking definition (CLEAR is written as WHITE).

    Raises:
        KeyError: for AMBER+STRICT, which TLP 1.0 does not have.
    """
    colour = "white" if label is Tlp.CLEAR else label.value
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP1_IDS[label],
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "name": "TLP:" + colour.upper(),
        "definition": {"tlp": colour},
    }


# --- parsing -----------------------------------------------------------------------------------


class Flag(Enum):
    """TLP-namespace values that are not a colour."""

    CHR = "tlp:ex:chr"  # Chatham House Rule: strip source attribution
    UNCLEAR = "tlp:unclear"  # MISP taxonomy joke value: treated as no label


@dataclass(frozen=True, slots=True)
class TagMeaning:
    """What one MISP tag (or label string) means to the policy engine.

    Exactly one of the fields is set, or none for a tag TLP does not care about.
    """

    label: Tlp | None = None
    flag: Flag | None = None
    pap: str | None = None

    @property
    def is_tlp(self) -> bool:
        """True for TLP-namespace tags (colours and flags): the ones the hub rewrites on output."""
        return self.label is not None or self.flag is not None


_NOTHING = TagMeaning()
# "tlp" then a separator (: = - _ or whitespace), case-insensitive; the rest is the value.
_TLP_PREFIX = re.compile(r"^\s*tlp\s*(?:[:=_\-]|\s)\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_PAP_PREFIX = re.compile(r"^\s*pap\s*(?:[:=_\-]|\s)\s*(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
_AMBER_STRICT = re.compile(r"^amber[+\-_]?strict$")
_COLOURS: dict[str, Tlp] = {
    "clear": Tlp.CLEAR,
    "white": Tlp.CLEAR,
    "green": Tlp.GREEN,
    "amber": Tlp.AMBER,
    "red": Tlp.RED,
}
_PAP_VALUES = {"clear", "white", "green", "amber", "red"}


def _squash(text: str) -> str:
    """Lower-case, drop whitespace and quotes: `' "Amber + Strict" '` → `amber+strict`."""
    return "".join(text.split()).lower().strip("\"'")


def _colour(value: str) -> Tlp | None:
    label = _COLOURS.get(value)
    if label is None and _AMBER_STRICT.match(value):
        label = Tlp.AMBER_STRICT
    return label


def parse_tag(name: str) -> TagMeaning:
    """Read one MISP tag name: a TLP colour, a TLP flag, a PAP label, or nothing.

    Strict about meaning, lenient about spelling: case, spaces and `amber-strict` are accepted;
    a tag in the TLP namespace that is none of the known values is an error, never a guess.

    Args:
        name: the tag name, e.g. `TLP:AMBER+STRICT`, `tlp:ex:chr`, `PAP:RED`, `osint:x="y"`.

    Returns:
        The meaning; `TagMeaning()` (all None) for tags outside the TLP and PAP namespaces.

    Raises:
        UnknownMarking: the tag looks like TLP but is not one of the labels (`tlp:yellow`).
        MalformedMarking: the name is not a string.

    >>> parse_tag("TLP: Amber-Strict").label
    <Tlp.AMBER_STRICT: 'amber+strict'>
    >>> parse_tag("tlp:ex:chr").flag
    <Flag.CHR: 'tlp:ex:chr'>
    """
    if not isinstance(name, str):
        raise MalformedMarking("tag name is not a string", value=name)
    return _parse_tag(name)


@lru_cache(maxsize=8192)
def _parse_tag(name: str) -> TagMeaning:
    if _squash(name) == "tlp":
        raise UnknownMarking(f"{name!r} looks like TLP but has no label", value=name)
    match = _TLP_PREFIX.match(name)
    if match is not None:
        value = _squash(match.group("rest"))
        label = _colour(value)
        if label is not None:
            return TagMeaning(label=label)
        if value in ("ex:chr", "ex-chr", "ex_chr", "exchr"):
            return TagMeaning(flag=Flag.CHR)
        if value == "unclear":
            return TagMeaning(flag=Flag.UNCLEAR)
        raise UnknownMarking(f"{name!r} looks like TLP but is not a TLP label", value=name)
    match = _PAP_PREFIX.match(name)
    if match is not None:
        value = _squash(match.group("rest"))
        if value in _PAP_VALUES:
            return TagMeaning(pap="PAP:" + ("CLEAR" if value == "white" else value.upper()))
        return TagMeaning(pap=name.strip())  # unknown PAP values are kept as notes, not refused
    return _NOTHING


def parse_label(text: str) -> Tlp:
    """Parse a TLP label written by people or tools: `amber`, `TLP:AMBER+STRICT`, `tlp:white`.

    Args:
        text: the label, with or without the `tlp:` prefix.

    Returns:
        The label; WHITE is returned as CLEAR.

    Raises:
        UnknownMarking: anything that is not one of the five labels (including `tlp:ex:chr`,
            which is a handling flag, not a label).
        MalformedMarking: `text` is not a string.

    >>> parse_label("TLP:AMBER+STRICT"), parse_label(" amber strict "), parse_label("white")
    (<Tlp.AMBER_STRICT: 'amber+strict'>, <Tlp.AMBER_STRICT: 'amber+strict'>, <Tlp.CLEAR: 'clear'>)
    """
    if not isinstance(text, str):
        raise MalformedMarking("TLP label is not a string", value=text)
    match = _TLP_PREFIX.match(text)
    if match is not None:
        meaning = parse_tag(text)
        if meaning.label is None:
            raise UnknownMarking(f"{text!r} is a TLP flag, not a label", value=text)
        return meaning.label
    label = _colour(_squash(text))
    if label is None:
        raise UnknownMarking(f"{text!r} is not a TLP label", value=text)
    return label
