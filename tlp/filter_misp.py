"""MISP events filtered for one recipient over one channel (labels: `tlp.misp_read`).

Works on plain dicts as MISP exports them (`{"Event": {...}}` or bare). The input is never
modified: the output shares every unchanged sub-structure with it and copies shallowly only the
dicts it changes, so treat the output as read-only and serialise it (orjson) as it is.

The event is decided first; then each kind of element in a step of its own (`_Pass`):
standalone attributes, objects (which go or stay whole, every attribute in them under the
object's label, and are removed when any of their attributes may not go), reports; then the
event around what goes (no proposals, no local correlations, no attribution for TLP:EX:CHR).
Writing the effective tag on the event and filtering again changes nothing.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tlp.decide import Addressing, Channel, Decision, Reason, Recipient, decide
from tlp.errors import MalformedInput, TLPError
from tlp.labels import Tlp
from tlp.markings import tag_name
from tlp.misp_read import (
    LABELS,
    PRODUCER_PREFIX,
    TLP_TAGS,
    EventLabels,
    Reader,
    element_uuid,
    element_uuid_in,
    items_of,
    iter_misp_events,
    label_misp_event,
    object_rank,
    orgc_uuid,
    unwrap_event,
)
from tlp.policy import DEFAULT_POLICY, Policy, SourcePolicy
from tlp.results import Removed

__all__ = [
    "EventLabels",
    "FilteredEvent",
    "filter_misp_event",
    "iter_misp_events",
    "label_misp_event",
    "unwrap_event",
]

_DOWNGRADE: dict[object, object] = {1: 0, "1": "0", 2: 1, "2": "1"}


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


# --- filtering -----------------------------------------------------------------------------------

# Shared output tag lists, one per label, for elements without tags of their own: a list per
# attribute would cost more than the rest of the filter. The output is read-only.
_TAG_LISTS: tuple[list[dict[str, Any]], ...] = tuple([tag] for tag in TLP_TAGS)


class _Decider:
    """`decide` with a cache: an event has few distinct (label, addressing) pairs."""

    __slots__ = ("_cache", "_kwargs")

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._cache: dict[tuple[int, int], Decision] = {}

    def __call__(self, rank: int, addressing: Addressing) -> Decision:
        key = (rank, id(addressing))  # addressings are interned by Reader
        found = self._cache.get(key)
        if found is None:
            label = None if rank < 0 else LABELS[rank]
            found = decide(label=label, addressing=addressing, **self._kwargs)
            self._cache[key] = found
        return found


def _out_tags(reader: Reader, tags: list[Any], rank: int, strip: bool = False) -> list[Any]:
    """The element's tags without TLP colour tags and local tags, plus the effective one;
    with ``strip`` (TLP:EX:CHR, not the source) without producer tags either."""
    kept = [
        t
        for t in tags
        if not reader.meaning(t)[1]
        and not (type(t) is dict and t.get("local"))
        and not (strip and tag_name(t).startswith(PRODUCER_PREFIX))
    ]
    kept.append(TLP_TAGS[rank])
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
    source = source_org_uuid if source_org_uuid is not None else orgc_uuid(ev)
    reader = Reader(ev, source_policy or policy.for_source(source), source)
    ev_uuid = element_uuid(ev, "event", 0)
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
    step = _Pass(reader, _Decider(**common), e_rank, e_addr, strip, downgrade, in_place)
    attributes_out = step.attributes(items_of(ev, "Attribute"))
    objects_out = step.objects(items_of(ev, "Object"))
    reports_out = step.reports(items_of(ev, "EventReport"))
    if not (attributes_out or objects_out or reports_out):
        step.removed.append(
            Removed("event", ev_uuid, Reason.NOTHING_LEFT, "Nothing in the event may go.")
        )
        return FilteredEvent(None, decision, Reason.NOTHING_LEFT, tuple(step.removed))
    new_ev = step.assemble(ev, attributes_out, objects_out, reports_out)
    result = {"Event": new_ev} if wrapped else new_ev
    return FilteredEvent(result, decision, decision.reason, tuple(step.removed))


class _Pass:
    """One filtering pass over an event whose own decision allowed it: each kind of element
    in a step of its own; what is withheld is collected in ``removed``."""

    __slots__ = (
        "check",
        "down",
        "e_addr",
        "e_rank",
        "gone",
        "in_place",
        "reader",
        "removed",
        "strip",
    )

    def __init__(
        self,
        reader: Reader,
        check: _Decider,
        e_rank: int,
        e_addr: Addressing,
        strip: bool,
        downgrade: bool,
        in_place: bool,
    ) -> None:
        self.reader, self.check = reader, check
        self.e_rank, self.e_addr = e_rank, e_addr
        self.strip, self.in_place = strip, in_place
        self.down = _DOWNGRADE if downgrade else {}
        self.removed: list[Removed] = []
        self.gone: set[str] = set()

    def deny(self, kind: str, uuid: str, reason: Reason, sentence: str) -> None:
        self.removed.append(Removed(kind, uuid, reason, sentence))
        self.gone.add(uuid)

    def attributes(self, standalone: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Standalone attributes. Fast path: no tags, inherited distribution, no sharing
        group (most of a large event): one decision for all of them."""
        reader, check, down, in_place = self.reader, self.check, self.down, self.in_place
        e_rank, e_addr, strip = self.e_rank, self.e_addr, self.strip
        inherit_tags = _TAG_LISTS[e_rank]
        inherit_ok = check(e_rank, e_addr).allowed
        out: list[dict[str, Any]] = []
        append = out.append
        for attr in standalone:
            tags = attr.get("Tag")
            dist = attr.get("distribution")
            if (
                not tags
                and (dist == "5" or dist is None or dist == 5)
                and "SharingGroup" not in attr
            ):
                if not inherit_ok:
                    d = check(e_rank, e_addr)
                    self.deny("attribute", element_uuid_in(attr, standalone), d.reason, d.sentence)
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
                    self.deny("attribute", element_uuid_in(attr, standalone), d.reason, d.sentence)
                    continue
                new = attr if in_place else attr.copy()
                new["Tag"] = _out_tags(reader, tags, rank, strip) if tags else _TAG_LISTS[rank]
                if dist in down:
                    new["distribution"] = down[dist]
            if "RelatedAttribute" in new:
                del new["RelatedAttribute"]
            append(new)
        return out

    def objects(self, objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Objects go or stay whole, under their own (highest) label."""
        out: list[dict[str, Any]] = []
        for i, obj in enumerate(objects):
            o_uuid = element_uuid(obj, "object", i)
            attrs = items_of(obj, "Attribute")
            o_rank, o_addr, failure = self._object_placement(obj, attrs)
            d = self.check(o_rank, o_addr)
            if not d.allowed or failure is not None:
                self._deny_object(o_uuid, attrs, d, failure)
                continue
            out.append(self._object_out(obj, attrs, o_rank))
        return out

    def _object_placement(
        self, obj: dict[str, Any], attrs: list[dict[str, Any]]
    ) -> tuple[int, Addressing, tuple[int, Decision] | None]:
        """The object's rank and addressing, and the first attribute of its own addressing
        that may not go (the object then stays whole: it does not go)."""
        reader = self.reader
        failure: tuple[int, Decision] | None = None
        try:
            o_tags = obj.get("Tag")
            base = reader.child_rank(self.e_rank, reader.rank(o_tags)) if o_tags else self.e_rank
            o_addr = reader.addressing(obj, self.e_addr)
            base_rank = base if base >= 0 else reader.default_rank
            ranks: list[int] = []
            for j, attr in enumerate(attrs):
                rank = reader.element_rank(attr, base) if attr.get("Tag") else base_rank
                ranks.append(rank)
                dist = attr.get("distribution")
                if not (dist == "5" or dist is None or dist == 5) or "SharingGroup" in attr:
                    d = self.check(rank, reader.addressing(attr, o_addr))
                    if not d.allowed and failure is None:
                        failure = (j, d)
            return object_rank(reader, obj, base, ranks), o_addr, failure
        except TLPError:
            return -1, self.e_addr, failure

    def _deny_object(
        self,
        o_uuid: str,
        attrs: list[dict[str, Any]],
        d: Decision,
        failure: tuple[int, Decision] | None,
    ) -> None:
        bad_uuid = None
        if d.allowed and failure is not None:
            j, d = failure
            bad_uuid = element_uuid(attrs[j], "attribute", j)
            self.deny(
                "object",
                o_uuid,
                Reason.OBJECT_WHOLE,
                f"An object goes or stays whole; its attribute {bad_uuid} may not go: "
                + d.sentence,
            )
        else:
            self.deny("object", o_uuid, d.reason, d.sentence)
        for j, attr in enumerate(attrs):
            a_uuid = element_uuid(attr, "attribute", j)
            if a_uuid == bad_uuid:
                self.deny("attribute", a_uuid, d.reason, d.sentence)
            else:
                self.deny("attribute", a_uuid, Reason.PARENT_REMOVED, f"Its object {o_uuid} went.")

    def _object_out(
        self, obj: dict[str, Any], attrs: list[dict[str, Any]], o_rank: int
    ) -> dict[str, Any]:
        """The object as it goes: every attribute in it carries the object's label, not the
        lower one it may have on its own (DESIGN.md §3)."""
        reader, down, strip = self.reader, self.down, self.strip
        new_obj = obj if self.in_place else obj.copy()
        new_attrs = []
        for attr in attrs:
            new = attr if self.in_place else attr.copy()
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
        return new_obj

    def reports(self, reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Reports carry the event's label and their own distribution."""
        out: list[dict[str, Any]] = []
        for i, report in enumerate(reports):
            try:
                d = self.check(self.e_rank, self.reader.addressing(report, self.e_addr))
            except TLPError:
                d = self.check(-1, self.e_addr)
            if not d.allowed:
                self.deny("report", element_uuid(report, "report", i), d.reason, d.sentence)
                continue
            if report.get("distribution") in self.down:
                report = {**report, "distribution": self.down[report["distribution"]]}
            out.append(report)
        return out

    def assemble(
        self,
        ev: Mapping[str, Any],
        attributes_out: list[dict[str, Any]],
        objects_out: list[dict[str, Any]],
        reports_out: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The event around what goes: references to removed elements dropped, the effective
        label as its only TLP tag, no local correlations, no proposals, sightings only on
        what goes, no attribution for TLP:EX:CHR."""
        if self.gone:
            for new_obj in objects_out:
                refs = new_obj.get("ObjectReference")
                if refs:
                    new_obj["ObjectReference"] = [
                        r
                        for r in refs
                        if not (type(r) is dict and r.get("referenced_uuid") in self.gone)
                    ]
        new_ev = ev if self.in_place else dict(ev)
        new_ev["Tag"] = _event_tags(self.reader, ev, self.e_rank, strip=self.strip)
        new_ev.pop("EventTag", None)
        if "Attribute" in ev or attributes_out:
            new_ev["Attribute"] = attributes_out
        if "Object" in ev or objects_out:
            new_ev["Object"] = objects_out
        if "EventReport" in ev:
            new_ev["EventReport"] = reports_out
        new_ev.pop("RelatedEvent", None)
        new_ev.pop("ShadowAttribute", None)  # proposals never leave (DESIGN.md §3)
        if ev.get("distribution") in self.down:
            new_ev["distribution"] = self.down[ev["distribution"]]
        if ev.get("Sighting"):
            kept = {a.get("uuid") for a in attributes_out}
            for new_obj in objects_out:
                kept.update(a.get("uuid") for a in new_obj.get("Attribute") or ())
            new_ev["Sighting"] = [
                s for s in ev["Sighting"] if type(s) is dict and s.get("attribute_uuid") in kept
            ]
        if self.strip:
            for key in ("Orgc", "Org", "orgc_id", "org_id", "event_creator_email"):
                new_ev.pop(key, None)
        return new_ev


def _event_tags(
    reader: Reader, ev: Mapping[str, Any], rank: int, *, strip: bool
) -> list[dict[str, Any]]:
    tags = ev.get("Tag")
    if tags is None:
        tags = [t.get("Tag") for t in ev.get("EventTag") or () if isinstance(t, Mapping)]
    kept = []
    for tag in tags or ():
        if reader.meaning(tag)[1] or (type(tag) is dict and tag.get("local")):
            continue
        if strip and tag_name(tag).startswith(PRODUCER_PREFIX):
            continue
        kept.append(tag)
    kept.append(TLP_TAGS[rank])
    return kept
