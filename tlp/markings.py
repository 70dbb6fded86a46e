"""Markings in: MISP tags and STIX 2.1 marking references, read into labels.

MISP tags arrive as `[{"name": ...}]` (events, attributes), `[{"Tag": {"name": ...}}]` (the
`EventTag` shape of `/events/index`) or plain strings. STIX markings are `object_marking_refs`
and `granular_markings[].marking_ref`, resolved against the marking-definition objects of the
bundle and the fixed TLP 1.0 / TLP 2.0 / OpenCTI ids (reference/tlp-stix-taxii.md §2.4).

Nothing here guesses: a marking that cannot be resolved raises, and callers turn that into
quarantine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tlp.errors import MalformedMarking, UnknownMarking
from tlp.labels import KNOWN_MARKING_IDS, TLP2_EXTENSION_ID, Flag, TagMeaning, Tlp, parse_tag


@dataclass(frozen=True, slots=True)
class Markings:
    """The TLP-relevant content of one element's own markings.

    Attributes:
        label: the most restrictive TLP colour among them; None when there is none.
        chr: TLP:EX:CHR is present (strip source attribution).
        handling: PAP labels and other handling notes, kept and shown.
    """

    label: Tlp | None = None
    chr: bool = False
    handling: tuple[str, ...] = ()


NO_MARKINGS = Markings()


def tag_name(tag: object) -> str:
    """The name of one MISP tag in any of its wire shapes.

    Raises:
        MalformedMarking: the tag has no string name.
    """
    if isinstance(tag, str):
        return tag
    if isinstance(tag, Mapping):
        name = tag.get("name")
        if name is None and isinstance(tag.get("Tag"), Mapping):
            name = tag["Tag"].get("name")
        if isinstance(name, str):
            return name
    raise MalformedMarking("MISP tag without a name", value=tag)


def misp_tag_markings(tags: Iterable[object] | None) -> Markings:
    """Read the TLP colour, CHR flag and PAP notes from one element's MISP tags.

    Args:
        tags: the element's `Tag` (or `EventTag`) list; None or empty for none.

    Returns:
        The element's own markings; conflicting colours resolve to the most restrictive.

    Raises:
        UnknownMarking: a TLP-looking tag that is not a TLP label.
        MalformedMarking: a tag without a name, or `Tag` that is not a list.

    >>> misp_tag_markings([{"name": "tlp:green"}, {"name": "TLP:RED"}, {"name": "PAP:AMBER"}])
    Markings(label=<Tlp.RED: 'red'>, chr=False, handling=('PAP:AMBER',))
    """
    if not tags:
        return NO_MARKINGS
    if not isinstance(tags, list | tuple):
        raise MalformedMarking("MISP Tag is not a list", value=tags)
    label: Tlp | None = None
    chr_flag = False
    handling: list[str] = []
    for tag in tags:
        meaning = parse_tag(tag_name(tag))
        if meaning.label is not None:
            if label is None or meaning.label > label:
                label = meaning.label
        elif meaning.flag is Flag.CHR:
            chr_flag = True
        elif meaning.pap is not None and meaning.pap not in handling:
            handling.append(meaning.pap)
    return Markings(label, chr_flag, tuple(handling))


def tag_meaning(tag: object) -> TagMeaning:
    """`parse_tag` for a tag in any wire shape."""
    return parse_tag(tag_name(tag))


# --- STIX ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResolvedMarking:
    """A marking reference after resolution.

    Attributes:
        id: the marking-definition id.
        label: the TLP label, or None for a non-TLP marking (statement, PAP, copyright …).
        definition: the marking-definition object when the bundle (or the caller) had it.
    """

    id: str
    label: Tlp | None
    definition: Mapping[str, Any] | None = None


_TLP_NAME = re.compile(r"^\s*tlp\s*[:\s]", re.IGNORECASE)
_MARKING_ID = re.compile(r"^marking-definition--[0-9a-fA-F-]{36}$")


def definition_label(obj: Mapping[str, Any]) -> Tlp | None:
    """TLP label a marking-definition object states about itself, or None when it is not TLP.

    Order (reference §2.4): TLP 2.0 extension, `definition.tlp`, then a `TLP:…` name.

    Raises:
        UnknownMarking, MalformedMarking: a TLP marking whose value cannot be read.
    """
    ident = obj.get("id")
    extensions = obj.get("extensions")
    if extensions is not None and not isinstance(extensions, Mapping):
        raise MalformedMarking(f"{ident}: extensions is not an object", value=ident)
    if extensions and TLP2_EXTENSION_ID in extensions:
        ext = extensions[TLP2_EXTENSION_ID]
        value = ext.get("tlp_2_0") if isinstance(ext, Mapping) else None
        if not isinstance(value, str):
            raise MalformedMarking(f"{ident}: TLP 2.0 extension without tlp_2_0", value=ident)
        return _strict_label(value, ident)
    definition_type = obj.get("definition_type")
    definition = obj.get("definition")
    name = obj.get("name")
    is_tlp_type = isinstance(definition_type, str) and definition_type.strip().lower() == "tlp"
    if isinstance(definition, Mapping) and "tlp" in definition:
        value = definition["tlp"]
        if not isinstance(value, str):
            raise MalformedMarking(f"{ident}: definition.tlp is not a string", value=ident)
        return _strict_label(value, ident)
    if isinstance(name, str) and _TLP_NAME.match(name):
        return _strict_label(name, ident)
    if is_tlp_type:
        raise MalformedMarking(f"{ident}: TLP marking without a value", value=ident)
    return None


def _strict_label(value: str, ident: object) -> Tlp:
    meaning = parse_tag(value if _TLP_NAME.match(value) else "tlp:" + value)
    if meaning.label is None:
        raise UnknownMarking(f"{ident}: {value!r} is not a TLP label", value=ident)
    return meaning.label


class MarkingResolver:
    """Resolves marking references of one bundle; caches each id.

    Args:
        definitions: marking-definition objects by id (the bundle's, plus any the hub holds).

    >>> r = MarkingResolver({})
    >>> r.resolve("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82").label
    <Tlp.AMBER: 'amber'>
    """

    __slots__ = ("_cache", "_definitions")

    def __init__(self, definitions: Mapping[str, Mapping[str, Any]]) -> None:
        self._definitions = definitions
        self._cache: dict[str, ResolvedMarking] = {}

    def resolve(self, ref: object) -> ResolvedMarking:
        """Resolve one reference.

        Raises:
            UnknownMarking: neither a known id nor a marking-definition object available.
            MalformedMarking: not a marking-definition id, or the definition is broken or
                contradicts the fixed meaning of its id.
        """
        if not isinstance(ref, str) or not _MARKING_ID.match(ref):
            raise MalformedMarking(f"{ref!r} is not a marking-definition id", value=ref)
        cached = self._cache.get(ref)
        if cached is not None:
            return cached
        definition = self._definitions.get(ref)
        known = KNOWN_MARKING_IDS.get(ref)
        if definition is None:
            if known is None:
                raise UnknownMarking(f"marking {ref} cannot be resolved", value=ref)
            resolved = ResolvedMarking(ref, known)
        else:
            if (
                not isinstance(definition, Mapping)
                or definition.get("type") != "marking-definition"
            ):
                raise MalformedMarking(f"{ref} is not a marking-definition object", value=ref)
            stated = definition_label(definition)
            if known is not None and stated != known:
                raise MalformedMarking(
                    f"{ref} is the id of {known.display} but its object says "
                    f"{stated.display if stated else 'it is not TLP'}",
                    value=ref,
                )
            resolved = ResolvedMarking(ref, stated, definition)
        self._cache[ref] = resolved
        return resolved

    def object_markings(self, obj: Mapping[str, Any]) -> tuple[Tlp | None, tuple[str, ...]]:
        """The most restrictive TLP label of an object's own object and granular markings.

        Returns:
            (label or None when it has no TLP marking, ids of its non-TLP markings).

        Raises:
            UnknownMarking, MalformedMarking: as `resolve`, or when the marking properties
                have the wrong shape.
        """
        label: Tlp | None = None
        others: list[str] = []
        refs = obj.get("object_marking_refs")
        if refs is not None and not isinstance(refs, list):
            raise MalformedMarking("object_marking_refs is not a list", value=refs)
        granular = obj.get("granular_markings")
        if granular is not None and not isinstance(granular, list):
            raise MalformedMarking("granular_markings is not a list", value=granular)
        all_refs: list[object] = list(refs or ())
        for entry in granular or ():
            if not isinstance(entry, Mapping):
                raise MalformedMarking("granular marking is not an object", value=entry)
            if "marking_ref" in entry:
                all_refs.append(entry["marking_ref"])
            elif "lang" not in entry:
                raise MalformedMarking("granular marking without marking_ref or lang", value=entry)
        for ref in all_refs:
            resolved = self.resolve(ref)
            if resolved.label is None:
                if resolved.id not in others:
                    others.append(resolved.id)
            elif label is None or resolved.label > label:
                label = resolved.label
        return label, tuple(others)
