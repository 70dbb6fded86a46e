"""MISP events: effective labels per element, and filtering an event for one recipient.

Works on plain dicts as MISP exports them (`{"Event": {...}}` or bare). The input is never
modified: the output shares every unchanged sub-structure with it and copies shallowly only the
dicts it changes, so treat the output as read-only and serialise it (orjson) as it is.

Labels (DESIGN.md §3): an element's label is the most restrictive TLP tag on it and on what it
inherits from (event → object → attribute). An event without a TLP tag gets the source's
default (AMBER+STRICT), and its elements inherit that, so writing the effective tag on the
event and filtering again changes nothing. An attribute tag lower than what it inherits is
ignored unless the source policy allows downgrades. A MISP object goes or stays whole: its
label is the highest of its own and its attributes', and it is removed when any of its
attributes may not go.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tlp.decide import Addressing, Channel, Decision, Reason, Recipient, decide
from tlp.errors import MalformedInput, MalformedMarking, TLPError
from tlp.labels import Flag, Tlp, parse_tag
from tlp.markings import tag_name
from tlp.policy import DEFAULT_POLICY, Policy, SourcePolicy
from tlp.results import Problem, Removed

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


@dataclass(frozen=True, slots=True)
class FilteredEvent:
    """The result of `filter_misp_event`.

    Attributes:
        event: the event to deliver, shaped as the input was; None when nothing may be delivered.
        decision: the decision on the event itself (record it in the audit log).
        reason: why it is (not) delivered: the event decision's reason, or `nothing-left`.
        removed: the elements removed, with reasons (only the event itself when it is denied).
    """

    event: dict[str, Any] | None
    decision: Decision
    reason: Reason
    removed: tuple[Removed, ...]

    @property
    def delivered(self) -> bool:
        """True when there is an event to deliver."""
        return self.event is not None


# --- reading -------------------------------------------------------------------------------------

_LABELS = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)
_DISTRIBUTIONS: dict[object, int] = {
    **{n: n for n in range(6)},
    **{str(n): n for n in range(6)},
}
_DOWNGRADE: dict[object, object] = {1: 0, "1": "0", 2: 1, "2": "1"}
_TAG_COLOURS = {
    Tlp.CLEAR: "#ffffff",
    Tlp.GREEN: "#33FF00",
    Tlp.AMBER: "#FFC000",
    Tlp.AMBER_STRICT: "#FFC000",
    Tlp.RED: "#FF2B2B",
}
# One shared tag dict per label: the output is read-only.
_TLP_TAGS: tuple[dict[str, Any], ...] = tuple(
    {"name": label.tag, "colour": _TAG_COLOURS[label], "exportable": True} for label in _LABELS
)
_PRODUCER_PREFIX = "misp-galaxy:producer="


class _Reader:
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
        return _LABELS[rank if rank >= 0 else self.default_rank]

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


def _orgc_uuid(event: Mapping[str, Any]) -> str | None:
    orgc = event.get("Orgc")
    if isinstance(orgc, Mapping) and isinstance(orgc.get("uuid"), str):
        return orgc["uuid"]
    return None


def _uuid(element: Mapping[str, Any], kind: str, index: int) -> str:
    value = element.get("uuid")
    return value if isinstance(value, str) and value else f"#{kind}-{index}"


def _uuid_in(attr: Mapping[str, Any], siblings: list[dict[str, Any]]) -> str:
    """`_uuid` of a standalone attribute, finding its index only when it has no uuid."""
    value = attr.get("uuid")
    if isinstance(value, str) and value:
        return value
    return f"#attribute-{siblings.index(attr)}"  # type: ignore[arg-type]


# --- labelling -----------------------------------------------------------------------------------


def _items(container: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
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
    source = source_org_uuid if source_org_uuid is not None else _orgc_uuid(ev)
    reader = _Reader(ev, source_policy or policy.for_source(source), source)
    ev_uuid = _uuid(ev, "event", 0)
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
        uuid = _uuid(attr, "attribute", index)
        label: Tlp | None = None
        if not dead:
            try:
                label = _LABELS[reader.element_rank(attr, inherited)]
            except TLPError as err:
                problems.append(Problem(uuid, "attribute", "Tag", err.value, err.message))
        labels.attributes[uuid] = label
        return label

    for i, attr in enumerate(_items(ev, "Attribute")):
        attribute(attr, e_rank, i)
    for i, obj in enumerate(_items(ev, "Object")):
        uuid = _uuid(obj, "object", i)
        base = -1
        bad = dead
        if not dead:
            try:
                o_tags = obj.get("Tag")
                base = reader.child_rank(e_rank, reader.rank(o_tags)) if o_tags else e_rank
            except TLPError as err:
                problems.append(Problem(uuid, "object", "Tag", err.value, err.message))
                bad = True
        attrs = _items(obj, "Attribute")
        ranks = []
        for j, attr in enumerate(attrs):
            label = attribute(attr, base, j) if not bad else None
            if bad:
                labels.attributes[_uuid(attr, "attribute", j)] = None
            elif label is None:
                bad = True
            else:
                ranks.append(label.rank)
        labels.objects[uuid] = None if bad else _LABELS[_object_rank(reader, obj, base, ranks)]
    for i, report in enumerate(_items(ev, "EventReport")):
        labels.reports[_uuid(report, "report", i)] = e_label
    return labels


def _object_rank(reader: _Reader, obj: Mapping[str, Any], base: int, ranks: list[int]) -> int:
    """An object's rank: the highest of its attributes' (and of its own tag, if it has one)."""
    own = base if base >= 0 else reader.default_rank
    if not ranks:
        return own
    top = max(ranks)
    return max(top, own) if obj.get("Tag") else top


# --- filtering -----------------------------------------------------------------------------------

# Shared output tag lists, one per label, for elements without tags of their own: a list per
# attribute would cost more than the rest of the filter. The output is read-only.
_TAG_LISTS: tuple[list[dict[str, Any]], ...] = tuple([tag] for tag in _TLP_TAGS)


class _Decider:
    """`decide` with a cache: an event has few distinct (label, addressing) pairs."""

    __slots__ = ("_cache", "_kwargs")

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._cache: dict[tuple[int, int], Decision] = {}

    def __call__(self, rank: int, addressing: Addressing) -> Decision:
        key = (rank, id(addressing))  # addressings are interned by _Reader
        found = self._cache.get(key)
        if found is None:
            label = None if rank < 0 else _LABELS[rank]
            found = decide(label=label, addressing=addressing, **self._kwargs)
            self._cache[key] = found
        return found


def _out_tags(reader: _Reader, tags: list[Any], rank: int, strip: bool = False) -> list[Any]:
    """The element's tags without TLP colour tags and local tags, plus the effective one;
    with ``strip`` (TLP:EX:CHR, not the source) without producer tags either."""
    kept = [
        t
        for t in tags
        if not reader.meaning(t)[1]
        and not (type(t) is dict and t.get("local"))
        and not (strip and tag_name(t).startswith(_PRODUCER_PREFIX))
    ]
    kept.append(_TLP_TAGS[rank])
    return kept


def filter_misp_event(
    event: Mapping[str, Any],
    recipient: Recipient,
    channel: Channel | str,
    *,
    policy: Policy = DEFAULT_POLICY,
    source_org_uuid: str | None = None,
    source_policy: SourcePolicy | None = None,
    downgrade: bool = True,
    in_place: bool = False,
) -> FilteredEvent:
    """The event as `recipient` may receive it over `channel`, or nothing.

    Removes every attribute, object (whole), object reference, sighting, proposal and report
    the recipient may not see; writes the effective `tlp:` tag on the event and on every
    attribute left (replacing the TLP tags that were there; local tags are dropped, as MISP
    drops them on sync); downgrades distribution as a MISP server receiving it would (1 → 0,
    2 → 1); drops local correlations (`RelatedEvent`, `RelatedAttribute`), which name events
    the recipient may not see; and for TLP:EX:CHR strips attribution (`Orgc`, `Org`,
    `event_creator_email`, producer tags) for anyone but the source.

    Args:
        event: `{"Event": {...}}` or a bare event.
        recipient: who receives.
        channel: how.
        policy: the network policy.
        source_org_uuid: the organisation that submitted the event to the hub; defaults to
            `Orgc.uuid`. The hub should pass the authenticated submitter.
        source_policy: overrides `policy.for_source(source)`.
        downgrade: apply MISP's sync downgrade of distribution.
        in_place: modify the event's own dicts instead of copying the ones that change. Only
            for a caller that owns a freshly loaded event (the hot path: a dict copy per
            attribute costs more than serialising it). Either way, output lists and tag dicts
            may be shared: treat the result as read-only.

    Returns:
        The filtered event (None when the event is denied or nothing is left), the event-level
        decision, and the removed elements with reasons.

    Raises:
        MalformedInput: the event's structure (not its markings) is broken.

    >>> core = Recipient("org-b", tier="core", status="active", tlp_accepted=True)
    >>> ev = {"Event": {"uuid": "e1", "distribution": "1", "Orgc": {"uuid": "org-a"},
    ...     "Tag": [{"name": "tlp:green"}],
    ...     "Attribute": [{"uuid": "a1", "value": "1.2.3.4"},
    ...                   {"uuid": "a2", "value": "5.6.7.8", "Tag": [{"name": "tlp:red"}]}]}}
    >>> out = filter_misp_event(ev, core, "misp-sync")
    >>> [a["uuid"] for a in out.event["Event"]["Attribute"]], out.event["Event"]["distribution"]
    (['a1'], '0')
    >>> out.removed[0].uuid, out.removed[0].reason.value
    ('a2', 'red-channel-forbidden')
    """
    # Writing a Tag list into 10^5 attribute dicts makes CPython's cyclic GC track them all,
    # and every collection triggered by the few allocations of the filter then walks them:
    # measured 2-8x the filter's own time, growing with heap size. The filter creates no
    # reference cycles (refcounting frees everything), so the collector is paused for its
    # duration and resumed only if it was running.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _filter(
            event,
            recipient,
            Channel(channel),
            policy,
            source_org_uuid,
            source_policy,
            downgrade,
            in_place,
        )
    except (AttributeError, TypeError) as err:  # an element that is not a dict, and the like
        raise MalformedInput(f"malformed MISP event: {err}", value=type(err).__name__) from err
    finally:
        if paused:
            gc.enable()


def _filter(
    event: Mapping[str, Any],
    recipient: Recipient,
    channel: Channel,
    policy: Policy,
    source_org_uuid: str | None,
    source_policy: SourcePolicy | None,
    downgrade: bool,
    in_place: bool,
) -> FilteredEvent:
    ev, wrapped = unwrap_event(event)
    source = source_org_uuid if source_org_uuid is not None else _orgc_uuid(ev)
    reader = _Reader(ev, source_policy or policy.for_source(source), source)
    ev_uuid = _uuid(ev, "event", 0)
    e_rank, chr_flag, handling = -1, False, ()
    e_addr = Addressing.hub_only()
    e_label: Tlp | None = None
    try:
        e_rank, chr_flag, handling = reader.event_markings(ev)
        e_addr = reader.addressing(ev, None)
        e_label = reader.label(e_rank)
        e_rank = e_label.rank  # children inherit the event's label, default included
    except TLPError:
        e_label = None
    common: dict[str, Any] = {
        "recipient": recipient,
        "channel": channel,
        "source_org_uuid": source,
        "policy": policy,
        "strip_attribution": chr_flag,
        "handling": handling,
    }
    decision = decide(label=e_label, addressing=e_addr, **common)
    if not decision.allowed or e_label is None:
        removed = (Removed("event", ev_uuid, decision.reason, decision.sentence),)
        return FilteredEvent(None, decision, decision.reason, removed)

    strip = decision.obligation is not None and decision.obligation.strip_attribution
    check = _Decider(**common)
    removed_list: list[Removed] = []
    gone: set[str] = set()
    down = _DOWNGRADE if downgrade else {}

    def deny(kind: str, uuid: str, reason: Reason, sentence: str) -> None:
        removed_list.append(Removed(kind, uuid, reason, sentence))
        gone.add(uuid)

    # Standalone attributes. Fast path: no tags, inherited distribution, no sharing group.
    inherit_rank = e_label.rank
    inherit_tags = _TAG_LISTS[inherit_rank]
    inherit_ok = check(inherit_rank, e_addr).allowed
    attributes_out: list[dict[str, Any]] = []
    append = attributes_out.append
    standalone = _items(ev, "Attribute")
    for attr in standalone:
        tags = attr.get("Tag")
        dist = attr.get("distribution")
        if not tags and (dist == "5" or dist is None or dist == 5) and "SharingGroup" not in attr:
            if not inherit_ok:
                d = check(inherit_rank, e_addr)
                deny("attribute", _uuid_in(attr, standalone), d.reason, d.sentence)
                continue
            new = attr if in_place else attr.copy()
            new["Tag"] = inherit_tags
        else:
            try:
                rank = reader.element_rank(attr, e_rank)
                addr = reader.addressing(attr, e_addr)
            except TLPError:
                rank, addr = -1, e_addr
            d = check(rank, addr)
            if not d.allowed:
                deny("attribute", _uuid_in(attr, standalone), d.reason, d.sentence)
                continue
            new = attr if in_place else attr.copy()
            new["Tag"] = _out_tags(reader, tags, rank, strip) if tags else _TAG_LISTS[rank]
            if dist in down:
                new["distribution"] = down[dist]
        if "RelatedAttribute" in new:
            del new["RelatedAttribute"]
        append(new)

    # Objects go or stay whole.
    objects_out: list[dict[str, Any]] = []
    for i, obj in enumerate(_items(ev, "Object")):
        o_uuid = _uuid(obj, "object", i)
        attrs = _items(obj, "Attribute")
        ranks: list[int] = []
        failure: tuple[int, Decision] | None = None
        try:
            o_tags = obj.get("Tag")
            base = reader.child_rank(e_rank, reader.rank(o_tags)) if o_tags else e_rank
            o_addr = reader.addressing(obj, e_addr)
            base_rank = base if base >= 0 else reader.default_rank
            for j, attr in enumerate(attrs):
                rank = reader.element_rank(attr, base) if attr.get("Tag") else base_rank
                ranks.append(rank)
                dist = attr.get("distribution")
                if not (dist == "5" or dist is None or dist == 5) or "SharingGroup" in attr:
                    d = check(rank, reader.addressing(attr, o_addr))
                    if not d.allowed and failure is None:
                        failure = (j, d)
            o_rank = _object_rank(reader, obj, base, ranks)
        except TLPError:
            o_rank, o_addr = -1, e_addr
        d = check(o_rank, o_addr)
        if not d.allowed or failure is not None:
            if d.allowed and failure is not None:
                j, d = failure
                bad_uuid = _uuid(attrs[j], "attribute", j)
                deny(
                    "object",
                    o_uuid,
                    Reason.OBJECT_WHOLE,
                    f"An object goes or stays whole; its attribute {bad_uuid} may not go: "
                    + d.sentence,
                )
            else:
                bad_uuid = None
                deny("object", o_uuid, d.reason, d.sentence)
            for j, attr in enumerate(attrs):
                a_uuid = _uuid(attr, "attribute", j)
                if a_uuid == bad_uuid:
                    deny("attribute", a_uuid, d.reason, d.sentence)
                else:
                    deny("attribute", a_uuid, Reason.PARENT_REMOVED, f"Its object {o_uuid} went.")
            continue
        new_obj = obj if in_place else obj.copy()
        new_attrs = []
        # The object goes whole, under its own (highest) label: every attribute in it carries
        # that label, not the lower one it may have on its own (DESIGN.md §3).
        for attr in attrs:
            new = attr if in_place else attr.copy()
            tags = attr.get("Tag")
            new["Tag"] = _out_tags(reader, tags, o_rank, strip) if tags else _TAG_LISTS[o_rank]
            dist = attr.get("distribution")
            if dist in down:
                new["distribution"] = down[dist]
            if "RelatedAttribute" in new:
                del new["RelatedAttribute"]
            new_attrs.append(new)
        if "Attribute" in obj:
            new_obj["Attribute"] = new_attrs
        if "Tag" in obj:
            new_obj["Tag"] = _out_tags(reader, obj["Tag"] or [], o_rank, strip)
        if obj.get("distribution") in down:
            new_obj["distribution"] = down[obj["distribution"]]
        objects_out.append(new_obj)

    # Reports carry the event's label and their own distribution.
    reports_out: list[dict[str, Any]] = []
    for i, report in enumerate(_items(ev, "EventReport")):
        try:
            d = check(inherit_rank, reader.addressing(report, e_addr))
        except TLPError:
            d = check(-1, e_addr)
        if not d.allowed:
            deny("report", _uuid(report, "report", i), d.reason, d.sentence)
            continue
        if report.get("distribution") in down:
            report = {**report, "distribution": down[report["distribution"]]}
        reports_out.append(report)

    if not (attributes_out or objects_out or reports_out):
        removed_list.append(
            Removed("event", ev_uuid, Reason.NOTHING_LEFT, "Nothing in the event may go.")
        )
        return FilteredEvent(None, decision, Reason.NOTHING_LEFT, tuple(removed_list))

    if gone:  # references to removed elements go with them
        for new_obj in objects_out:
            refs = new_obj.get("ObjectReference")
            if refs:
                new_obj["ObjectReference"] = [
                    r for r in refs if not (type(r) is dict and r.get("referenced_uuid") in gone)
                ]

    new_ev = ev if in_place else dict(ev)
    new_ev["Tag"] = _event_tags(reader, ev, inherit_rank, strip=strip)
    new_ev.pop("EventTag", None)
    if "Attribute" in ev or attributes_out:
        new_ev["Attribute"] = attributes_out
    if "Object" in ev or objects_out:
        new_ev["Object"] = objects_out
    if "EventReport" in ev:
        new_ev["EventReport"] = reports_out
    new_ev.pop("RelatedEvent", None)
    if ev.get("distribution") in down:
        new_ev["distribution"] = down[ev["distribution"]]
    if ev.get("Sighting"):
        kept = {a.get("uuid") for a in attributes_out}
        for new_obj in objects_out:
            kept.update(a.get("uuid") for a in new_obj.get("Attribute") or ())
        new_ev["Sighting"] = [
            s for s in ev["Sighting"] if type(s) is dict and s.get("attribute_uuid") in kept
        ]
    if ev.get("ShadowAttribute"):
        # Proposals about an existing attribute (old_id) go only with that attribute.
        kept_ids = {a.get("id") for a in attributes_out}
        for new_obj in objects_out:
            kept_ids.update(a.get("id") for a in new_obj.get("Attribute") or ())
        new_ev["ShadowAttribute"] = [
            p
            for p in ev["ShadowAttribute"]
            if type(p) is dict
            and (p.get("old_id") in (None, "", "0", 0) or p.get("old_id") in kept_ids)
        ]
    if strip:
        for key in ("Orgc", "Org", "orgc_id", "org_id", "event_creator_email"):
            new_ev.pop(key, None)
    result = {"Event": new_ev} if wrapped else new_ev
    return FilteredEvent(result, decision, decision.reason, tuple(removed_list))


def _event_tags(
    reader: _Reader, ev: Mapping[str, Any], rank: int, *, strip: bool
) -> list[dict[str, Any]]:
    tags = ev.get("Tag")
    if tags is None:
        tags = [t.get("Tag") for t in ev.get("EventTag") or () if isinstance(t, Mapping)]
    kept = []
    for tag in tags or ():
        if reader.meaning(tag)[1] or (type(tag) is dict and tag.get("local")):
            continue
        if strip and tag_name(tag).startswith(_PRODUCER_PREFIX):
            continue
        kept.append(tag)
    kept.append(_TLP_TAGS[rank])
    return kept
