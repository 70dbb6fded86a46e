"""MISP events read for TLP: shapes, effective labels per element, addressing.

Works on plain dicts as MISP exports them (`{"Event": {...}}` or bare); nothing here changes
them. Labels (DESIGN.md §3): an element's label is the most restrictive TLP tag on it and on
what it inherits from (event → object → attribute). An event without a TLP tag gets the
source's default (AMBER+STRICT), and its elements inherit that. An attribute tag lower than
what it inherits is ignored unless the source policy allows downgrades. A MISP object's label
is the highest of its own and its attributes'. `filter_misp` builds on this.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tlp.decide import Addressing
from tlp.errors import MalformedInput, MalformedMarking, TLPError
from tlp.labels import Flag, Tlp, parse_tag
from tlp.markings import tag_name
from tlp.policy import DEFAULT_POLICY, Policy, SourcePolicy
from tlp.results import Problem

# --- shapes ---------------------------------------------------------------------------------------


def unwrap_event(payload: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Return the bare event and whether it was wrapped as `{"Event": {...}}`.

    Raises:
        MalformedInput: not a MISP event.
    """
    if isinstance(payload, Mapping):
        inner = payload.get("Event")
        if isinstance(inner, Mapping) and len(payload) == 1:
            return inner, True  # type: ignore[return-value]
        if "Event" not in payload and "response" not in payload:
            return payload, False  # type: ignore[return-value]
    raise MalformedInput("not a MISP event ({'Event': {...}} or a bare event)", value=type(payload))


def iter_misp_events(payload: object) -> Iterator[dict[str, Any]]:
    """Every bare event in a payload: `{"Event"}`, bare, `{"response": [...]}` or a list of them.

    Raises:
        MalformedInput: something that is none of these.
    """
    if isinstance(payload, list):
        for item in payload:
            yield from iter_misp_events(item)
    elif isinstance(payload, Mapping) and "response" in payload and "Event" not in payload:
        yield from iter_misp_events(payload["response"])
    else:
        yield unwrap_event(payload)[0]  # type: ignore[arg-type]


# --- results -------------------------------------------------------------------------------------


@dataclass(slots=True)
class EventLabels:
    """Effective labels of every element of one MISP event, computed without a recipient.

    None means quarantined (unknown or malformed marking). The hub stores these at ingest.

    Attributes:
        event: the event's own label (governs its title and everything else).
        objects: object uuid → label (highest of its own and its attributes').
        attributes: attribute uuid → label (standalone and object attributes).
        reports: EventReport uuid → label.
        chr: the event carries TLP:EX:CHR.
        handling: PAP and other handling notes on the event.
        problems: why elements are quarantined; empty when nothing is.
    """

    event: Tlp | None
    objects: dict[str, Tlp | None] = field(default_factory=dict)
    attributes: dict[str, Tlp | None] = field(default_factory=dict)
    reports: dict[str, Tlp | None] = field(default_factory=dict)
    chr: bool = False
    handling: tuple[str, ...] = ()
    problems: list[Problem] = field(default_factory=list)

    @property
    def quarantined(self) -> bool:
        """True when any element has an unknown or malformed marking."""
        return bool(self.problems)


# --- reading -------------------------------------------------------------------------------------

LABELS = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)
_DISTRIBUTIONS: dict[object, int] = {
    **{n: n for n in range(6)},
    **{str(n): n for n in range(6)},
}
_TAG_COLOURS = {
    Tlp.CLEAR: "#ffffff",
    Tlp.GREEN: "#33FF00",
    Tlp.AMBER: "#FFC000",
    Tlp.AMBER_STRICT: "#FFC000",
    Tlp.RED: "#FF2B2B",
}
# One shared tag dict per label: the output is read-only.
TLP_TAGS: tuple[dict[str, Any], ...] = tuple(
    {"name": label.tag, "colour": _TAG_COLOURS[label], "exportable": True} for label in LABELS
)
PRODUCER_PREFIX = "misp-galaxy:producer="


def names_producer(tag: Any) -> bool:
    """A tag (a MISP tag dict or its name) that names who produced the information."""
    name = tag.get("name", "") if isinstance(tag, dict) else tag
    return str(name).startswith(PRODUCER_PREFIX)


def without_producers(element: dict[str, Any]) -> None:
    """Remove, in place, what names the producer of a TLP:EX:CHR element: producer tags and
    producer galaxy clusters (a galaxy left without clusters goes too)."""
    if element.get("Tag"):
        element["Tag"] = [t for t in element["Tag"] if not names_producer(t)]
    if not element.get("Galaxy"):
        return
    galaxies = []
    for galaxy in element["Galaxy"]:
        if not isinstance(galaxy, dict) or galaxy.get("type") == "producer":
            continue
        clusters = [
            c
            for c in galaxy.get("GalaxyCluster") or []
            if isinstance(c, dict)
            and c.get("type") != "producer"
            and not names_producer(str(c.get("tag_name", "")))
        ]
        if clusters:
            galaxies.append({**galaxy, "GalaxyCluster": clusters})
    element["Galaxy"] = galaxies


class Reader:
    """Per-event reading state: tag meanings, sharing groups and addressing, all cached."""

    __slots__ = (
        "_addr",
        "_event",
        "_groups",
        "_tags",
        "default_rank",
        "downgrade",
        "source",
        "source_policy",
    )

    def __init__(self, event: Mapping[str, Any], source_policy: SourcePolicy, source: str | None):
        self.source = source
        self.source_policy = source_policy
        self.default_rank = source_policy.default_label.rank
        self.downgrade = source_policy.allow_attribute_downgrade
        # tag name -> (rank or -1, replaced on output, chr, pap note or None)
        self._tags: dict[str, tuple[int, bool, bool, str | None]] = {}
        self._addr: dict[tuple[int, object, object, int | None], Addressing] = {}
        self._event = event
        self._groups: dict[str, frozenset[str]] | None = None

    # tags
    def meaning(self, tag: object) -> tuple[int, bool, bool, str | None]:
        name = tag.get("name") if type(tag) is dict else None
        if type(name) is not str:
            name = tag_name(tag)
        cached = self._tags.get(name)
        if cached is None:
            m = parse_tag(name)
            cached = (
                m.label.rank if m.label is not None else -1,
                m.label is not None or m.flag is Flag.UNCLEAR,  # replaced on output
                m.flag is Flag.CHR,
                m.pap,
            )
            self._tags[name] = cached
        return cached

    def rank(self, tags: object) -> int:
        """Most restrictive TLP rank of a tag list, -1 when none. Raises TLPError."""
        if not tags:
            return -1
        if type(tags) is not list:
            raise MalformedMarking("Tag is not a list", value=tags)
        best = -1
        for tag in tags:
            r = self.meaning(tag)[0]
            if r > best:
                best = r
        return best

    def event_markings(self, event: Mapping[str, Any]) -> tuple[int, bool, tuple[str, ...]]:
        tags = event.get("Tag")
        if tags is None:
            tags = event.get("EventTag")
        rank = self.rank(tags)
        chr_flag = False
        handling: list[str] = []
        for tag in tags or ():
            _, _, is_chr, pap = self.meaning(tag)
            chr_flag = chr_flag or is_chr
            if pap is not None and pap not in handling:
                handling.append(pap)
        return rank, chr_flag, tuple(handling)

    # addressing
    def _members(self, group: object) -> frozenset[str]:
        members: set[str] = set()
        if isinstance(group, Mapping):
            owner = group.get("Organisation")
            if isinstance(owner, Mapping) and isinstance(owner.get("uuid"), str):
                members.add(owner["uuid"])
            if isinstance(group.get("organisation_uuid"), str):
                members.add(group["organisation_uuid"])
            for entry in group.get("SharingGroupOrg") or ():
                org = entry.get("Organisation") if isinstance(entry, Mapping) else None
                if isinstance(org, Mapping) and isinstance(org.get("uuid"), str):
                    members.add(org["uuid"])
        if self.source is not None:
            members.add(self.source)  # the source is always a member (DESIGN.md §3)
        return frozenset(members)

    def _group(self, group_id: object) -> frozenset[str] | None:
        """Members of a sharing group known only by id: found on another element of the event.

        Scans the event once, on first need (rare: MISP sends the SharingGroup with each element).
        """
        if self._groups is None:
            self._groups = {}

            def add(element: object) -> None:
                if isinstance(element, Mapping) and isinstance(
                    element.get("SharingGroup"), Mapping
                ):
                    group = element["SharingGroup"]
                    members = self._members(group)
                    for key in (
                        group.get("id"),
                        group.get("uuid"),
                        element.get("sharing_group_id"),
                    ):
                        if key not in (None, "", "0", 0):
                            self._groups.setdefault(str(key), members)  # type: ignore[union-attr]

            event = self._event
            add(event)
            for key in ("Attribute", "EventReport", "Object"):
                for element in event.get(key) or ():
                    add(element)
                    if key == "Object" and isinstance(element, Mapping):
                        for attr in element.get("Attribute") or ():
                            add(attr)
        return self._groups.get(str(group_id))

    def addressing(self, element: Mapping[str, Any], parent: Addressing | None) -> Addressing:
        """Addressing of `element`, narrowed by its parent's. Raises MalformedInput."""
        raw = element.get("distribution")
        group_id = element.get("sharing_group_id")
        group = element.get("SharingGroup")
        # An embedded SharingGroup is keyed by identity: two elements may carry different ones.
        key = (id(parent), raw, group_id, id(group) if group is not None else None)
        cached = self._addr.get(key)
        if cached is not None:
            return cached
        if raw is None or raw == "":
            dist = 5 if parent is not None else self.source_policy.default_distribution
        else:
            found = _DISTRIBUTIONS.get(raw)
            if found is None or (found == 5 and parent is None):
                raise MalformedInput(f"distribution {raw!r} is not valid here", value=raw)
            dist = found
        if dist == 5:
            assert parent is not None
            own = parent
        elif dist == 4:
            if isinstance(group, Mapping):
                members = self._members(group)
            else:
                found = self._group(group_id)
                if found is not None:
                    members = found
                else:  # unknown group: only the source is sure to be in it (fail closed)
                    members = frozenset({self.source} if self.source is not None else ())
            own = Addressing(4, members)
        else:
            own = Addressing(dist)
        result = own if parent is None or own is parent else parent.narrow(own)
        self._addr[key] = result
        return result

    def label(self, rank: int) -> Tlp:
        return LABELS[rank if rank >= 0 else self.default_rank]

    def child_rank(self, inherited: int, own: int) -> int:
        """Rank of a child from its parent's chain rank and its own (-1: none)."""
        if own >= 0 and self.downgrade:
            return own
        return own if own > inherited else inherited

    def element_rank(self, element: Mapping[str, Any], inherited: int) -> int:
        """Effective rank of an attribute (default applied). Raises TLPError."""
        tags = element.get("Tag")
        rank = self.child_rank(inherited, self.rank(tags)) if tags else inherited
        return rank if rank >= 0 else self.default_rank


def orgc_uuid(event: Mapping[str, Any]) -> str | None:
    orgc = event.get("Orgc")
    if isinstance(orgc, Mapping) and isinstance(orgc.get("uuid"), str):
        return orgc["uuid"]
    return None


def element_uuid(element: Mapping[str, Any], kind: str, index: int) -> str:
    value = element.get("uuid")
    return value if isinstance(value, str) and value else f"#{kind}-{index}"


def element_uuid_in(attr: Mapping[str, Any], siblings: list[dict[str, Any]]) -> str:
    """`_uuid` of a standalone attribute, finding its index only when it has no uuid."""
    value = attr.get("uuid")
    if isinstance(value, str) and value:
        return value
    return f"#attribute-{siblings.index(attr)}"  # type: ignore[arg-type]


# --- labelling -----------------------------------------------------------------------------------


def items_of(container: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """A child list (`Attribute`, `Object` …); empty when absent. Raises MalformedInput."""
    value = container.get(key)
    if not value:
        return []
    if type(value) is not list:
        raise MalformedInput(f"{key} must be a list", value=key)
    return value


def label_misp_event(
    event: Mapping[str, Any],
    *,
    policy: Policy = DEFAULT_POLICY,
    source_org_uuid: str | None = None,
    source_policy: SourcePolicy | None = None,
) -> EventLabels:
    """Effective label of every element of a MISP event, without a recipient (for ingest).

    Args:
        event: `{"Event": {...}}` or a bare event.
        policy: the network policy (for the source's `SourcePolicy`).
        source_org_uuid: the submitting organisation; defaults to `Orgc.uuid`.
        source_policy: overrides `policy.for_source(source)`.

    Returns:
        Labels per element; None for quarantined elements, with the problems listed. An event
        whose own marking is unreadable quarantines every element in it.

    Raises:
        MalformedInput: the event's structure (not its markings) is broken.

    >>> labels = label_misp_event({"Event": {"uuid": "e1", "Tag": [{"name": "tlp:green"}],
    ...     "Attribute": [{"uuid": "a1", "Tag": [{"name": "tlp:red"}]}, {"uuid": "a2"}]}})
    >>> labels.event, labels.attributes["a1"], labels.attributes["a2"]
    (<Tlp.GREEN: 'green'>, <Tlp.RED: 'red'>, <Tlp.GREEN: 'green'>)
    """
    ev, _ = unwrap_event(event)
    source = source_org_uuid if source_org_uuid is not None else orgc_uuid(ev)
    reader = Reader(ev, source_policy or policy.for_source(source), source)
    ev_uuid = element_uuid(ev, "event", 0)
    problems: list[Problem] = []
    e_rank, chr_flag, handling = -1, False, ()
    e_label: Tlp | None = None
    try:
        e_rank, chr_flag, handling = reader.event_markings(ev)
        e_label = reader.label(e_rank)
        e_rank = e_label.rank  # children inherit the event's label, default included
        reader.addressing(ev, None)
    except TLPError as err:
        where = "Tag" if e_label is None else "distribution"
        problems.append(Problem(ev_uuid, "event", where, err.value, err.message))
        e_label = None
    labels = EventLabels(e_label, chr=chr_flag, handling=handling, problems=problems)
    dead = e_label is None  # the event gates everything: its elements are quarantined with it

    def attribute(attr: dict[str, Any], inherited: int, index: int) -> Tlp | None:
        uuid = element_uuid(attr, "attribute", index)
        label: Tlp | None = None
        if not dead:
            try:
                label = LABELS[reader.element_rank(attr, inherited)]
            except TLPError as err:
                problems.append(Problem(uuid, "attribute", "Tag", err.value, err.message))
        labels.attributes[uuid] = label
        return label

    for i, attr in enumerate(items_of(ev, "Attribute")):
        attribute(attr, e_rank, i)
    for i, obj in enumerate(items_of(ev, "Object")):
        uuid = element_uuid(obj, "object", i)
        base = -1
        bad = dead
        if not dead:
            try:
                o_tags = obj.get("Tag")
                base = reader.child_rank(e_rank, reader.rank(o_tags)) if o_tags else e_rank
            except TLPError as err:
                problems.append(Problem(uuid, "object", "Tag", err.value, err.message))
                bad = True
        attrs = items_of(obj, "Attribute")
        ranks = []
        for j, attr in enumerate(attrs):
            label = attribute(attr, base, j) if not bad else None
            if bad:
                labels.attributes[element_uuid(attr, "attribute", j)] = None
            elif label is None:
                bad = True
            else:
                ranks.append(label.rank)
        labels.objects[uuid] = None if bad else LABELS[object_rank(reader, obj, base, ranks)]
    for i, report in enumerate(items_of(ev, "EventReport")):
        labels.reports[element_uuid(report, "report", i)] = e_label
    return labels


def object_rank(reader: Reader, obj: Mapping[str, Any], base: int, ranks: list[int]) -> int:
    """An object's rank: the highest of its attributes' (and of its own tag, if it has one)."""
    own = base if base >= 0 else reader.default_rank
    if not ranks:
        return own
    top = max(ranks)
    return max(top, own) if obj.get("Tag") else top
