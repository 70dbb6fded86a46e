"""STIX 2.1 bundles: effective labels per object, and filtering a bundle for one recipient.

Marking references are resolved by the hub itself (reference/tlp-stix-taxii.md §2.4, §3.4):
known TLP 1.0/2.0/OpenCTI ids, then the bundle's marking-definition objects. An object with a
reference that cannot be resolved, or with a malformed TLP marking, is quarantined. Granular
markings count for the whole object (the safe choice of §3.4: an object with a RED
`description` is RED). With `SourcePolicy.container_inherits` (default on) an object also
carries the label of every container (report, grouping, observed-data …) whose `object_refs`
list it; quarantine travels down the same way.

On output every object carries exactly one TLP marking, the TLP 2.0 id of its effective label,
in `object_marking_refs`, and the bundle carries the TLP 2.0 marking-definition objects it uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tlp.decide import Addressing, Channel, Decision, Reason, Recipient, decide
from tlp.errors import MalformedInput, TLPError
from tlp.labels import (
    KNOWN_MARKING_IDS,
    TLP1_IDS,
    TLP2_IDS,
    Tlp,
    parse_tag,
    tlp1_marking_definition,
    tlp2_marking_definition,
)
from tlp.markings import MarkingResolver, definition_label
from tlp.policy import DEFAULT_POLICY, Policy, SourcePolicy
from tlp.results import Problem, Removed

_QUARANTINED = -2
_LABELS = (Tlp.CLEAR, Tlp.GREEN, Tlp.AMBER, Tlp.AMBER_STRICT, Tlp.RED)


@dataclass(slots=True)
class BundleLabels:
    """Effective labels of the objects of one STIX bundle, computed without a recipient.

    Attributes:
        labels: STIX id → label, None when quarantined. Marking definitions are not listed.
        problems: why objects are quarantined.
        other_markings: STIX id → its non-TLP marking ids (statements, PAP …), kept on output.
        definitions: marking-definition objects of the bundle, by id.
    """

    labels: dict[str, Tlp | None] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    other_markings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    definitions: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def quarantined(self) -> bool:
        """True when any object has an unknown or malformed marking."""
        return bool(self.problems)


def _objects(bundle: object) -> tuple[list[Any], str | None]:
    """The objects of a bundle, and a reason when the bundle itself is malformed.

    Raises:
        MalformedInput: not a dict, or no object list at all.
    """
    if not isinstance(bundle, Mapping):
        raise MalformedInput("a STIX bundle must be a JSON object", value=type(bundle))
    kind = bundle.get("type")
    if kind == "bundle":
        objects = bundle.get("objects", [])
        if not isinstance(objects, list):
            raise MalformedInput("bundle objects is not a list", value=type(objects))
        return objects, None
    if kind is None and isinstance(bundle.get("objects"), list):
        return bundle["objects"], 'the bundle has no "type": "bundle"'
    if isinstance(kind, str) and isinstance(bundle.get("id"), str):
        return [bundle], None  # a single STIX object
    raise MalformedInput("not a STIX bundle or object", value=kind)


def label_stix_bundle(
    bundle: Mapping[str, Any],
    *,
    policy: Policy = DEFAULT_POLICY,
    source_org_uuid: str | None = None,
    source_policy: SourcePolicy | None = None,
    known_definitions: Mapping[str, Mapping[str, Any]] | None = None,
) -> BundleLabels:
    """Effective label of every object of a STIX 2.1 bundle (or of a single object).

    Args:
        bundle: the bundle dict; a single STIX object is read as a bundle of one. A bundle
            without `"type": "bundle"` is read, but all its objects are quarantined.
        policy: the network policy (for the source's `SourcePolicy`).
        source_org_uuid: the submitting organisation (selects the source policy).
        source_policy: overrides `policy.for_source(source)`.
        known_definitions: marking-definition objects the hub already holds (e.g. sent in an
            earlier TAXII envelope), by id.

    Returns:
        Labels per object id; None for quarantined objects, with the problems listed.

    Raises:
        MalformedInput: not a bundle or object at all.

    >>> b = {"type": "bundle", "id": "bundle--1", "objects": [{"type": "indicator",
    ...     "id": "indicator--1", "object_marking_refs":
    ...     ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}]}
    >>> label_stix_bundle(b).labels
    {'indicator--1': <Tlp.GREEN: 'green'>}
    """
    objects, bundle_problem = _objects(bundle)
    sp = source_policy or policy.for_source(source_org_uuid)
    result = BundleLabels()
    definitions: dict[str, Mapping[str, Any]] = dict(known_definitions or {})
    for obj in objects:
        if isinstance(obj, Mapping) and obj.get("type") == "marking-definition":
            ident = obj.get("id")
            if isinstance(ident, str):
                definitions[ident] = obj
                result.definitions[ident] = obj
    resolver = MarkingResolver(definitions)
    ranks: dict[str, int] = {}
    containers: list[tuple[str, list[object]]] = []
    for index, obj in enumerate(objects):
        if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str):
            result.problems.append(
                Problem(f"#object-{index}", "unknown", "id", None, "a STIX object without an id")
            )
            continue
        ident = obj["id"]
        kind = str(obj.get("type"))
        if kind == "marking-definition":
            continue
        if bundle_problem is not None:
            ranks[ident] = _QUARANTINED
            result.problems.append(Problem(ident, kind, "type", bundle.get("type"), bundle_problem))
            continue
        try:
            label, others = resolver.object_markings(obj)
            written = _written_label(obj)
        except TLPError as err:
            ranks[ident] = _QUARANTINED
            result.problems.append(Problem(ident, kind, "markings", err.value, err.message))
        else:
            ranks[ident] = label.rank if label is not None else -1
            if written is not None:  # never below what the markings (or the default) give
                own = label.rank if label is not None else sp.default_label.rank
                ranks[ident] = max(own, written.rank)
            if others:
                result.other_markings[ident] = others
        refs = obj.get("object_refs")
        if sp.container_inherits and isinstance(refs, list) and refs:
            containers.append((ident, refs))
    final = _inherit(ranks, containers, sp.default_label.rank, result.problems)
    result.labels = {
        ident: (None if r == _QUARANTINED else _LABELS[r]) for ident, r in final.items()
    }
    return result


def _written_label(obj: Mapping[str, Any]) -> Tlp | None:
    """The strictest TLP label written as a STIX ``labels`` string (``"tlp:red"``, as some
    producers and converters write it). Not a marking, but what the producer meant: it may
    only make the object stricter; one that looks like TLP but cannot be read raises
    (quarantine), as a MISP tag would."""
    texts = obj.get("labels")
    found: Tlp | None = None
    if isinstance(texts, list):
        for text in texts:
            if isinstance(text, str):
                meaning = parse_tag(text)
                if meaning.label is not None and (found is None or meaning.label > found):
                    found = meaning.label
    return found


def _inherit(
    own: dict[str, int],
    containers: list[tuple[str, list[object]]],
    default: int,
    problems: list[Problem],
) -> dict[str, int]:
    """Effective ranks: label(x) = max(own(x), label(c) for every container c listing x), and
    the default only when that is still nothing. Quarantine travels down.

    A container's effective label (its default included) is what its contents inherit, so an
    object written out with its effective marking reads back with the same label.
    """
    parents: dict[str, list[str]] = {}
    for ident, refs in containers:
        for ref in refs:
            if isinstance(ref, str) and ref in own and ref != ident:
                parents.setdefault(ref, []).append(ident)
    final: dict[str, int] = {}
    visiting: set[str] = set()

    def effective(ident: str) -> int:
        found = final.get(ident)
        if found is not None:
            return found
        if ident in visiting:  # a containment cycle: fail closed on this path
            return default
        visiting.add(ident)
        rank = own[ident]
        if rank != _QUARANTINED:
            for parent in parents.get(ident, ()):
                inherited = effective(parent)
                if inherited == _QUARANTINED:
                    rank = _QUARANTINED
                    problems.append(
                        Problem(ident, ident.split("--")[0], "object_refs", parent,
                                f"its container {parent} is quarantined")
                    )  # fmt: skip
                    break
                rank = max(rank, inherited)
        visiting.discard(ident)
        if rank == -1:
            rank = default
        final[ident] = rank
        return rank

    for ident in own:
        effective(ident)
    return final


@dataclass(frozen=True, slots=True)
class FilteredBundle:
    """The result of `filter_stix_bundle`.

    Attributes:
        bundle: the bundle to deliver; None when no object may go.
        reason: `nothing-left` when None, else `allowed-*` of the first object delivered.
        removed: the objects removed, with reasons.
        decisions: the decision per distinct label (for the audit record).
    """

    bundle: dict[str, Any] | None
    reason: Reason
    removed: tuple[Removed, ...]
    decisions: dict[Tlp | None, Decision]

    @property
    def delivered(self) -> bool:
        """True when there is a bundle to deliver."""
        return self.bundle is not None


_ENDPOINTS = {
    "relationship": ("source_ref", "target_ref"),
    "sighting": ("sighting_of_ref",),
}


def filter_stix_bundle(
    bundle: Mapping[str, Any],
    recipient: Recipient,
    channel: Channel | str,
    *,
    source_org_uuid: str | None,
    addressing: Addressing | None = None,
    policy: Policy = DEFAULT_POLICY,
    source_policy: SourcePolicy | None = None,
    labels: BundleLabels | None = None,
    legacy_tlp1: bool = False,
) -> FilteredBundle:
    """The bundle as `recipient` may receive it over `channel`, or nothing.

    Drops denied objects; relationships and sightings whose endpoint went; ids of dropped
    objects from every top-level `*_refs` list (`object_refs` included: an SCO id left behind
    can be brute-forced back to its value) and `*_ref` property. Every object left gets its
    effective TLP 2.0 marking in `object_marking_refs` (non-TLP markings kept; TLP granular
    markings rewritten to TLP 2.0 ids), and the marking-definition objects it needs are
    included. The input is not modified.

    Args:
        bundle: the bundle dict (see `label_stix_bundle`).
        recipient: who receives.
        channel: how.
        source_org_uuid: the organisation that submitted the bundle to the hub.
        addressing: whom the source sent it to; default the community (DESIGN.md §3).
        policy: the network policy.
        source_policy: overrides `policy.for_source(source)`.
        labels: labels computed at ingest (`label_stix_bundle`), to skip recomputing them.
        legacy_tlp1: also write the TLP 1.0 id (and definition) for CLEAR/GREEN/AMBER/RED.

    Returns:
        The filtered bundle (None when nothing may go) and the removed objects with reasons.

    >>> core = Recipient("org-b", tier="core", status="active", tlp_accepted=True)
    >>> b = {"type": "bundle", "id": "bundle--1", "objects": [
    ...     {"type": "indicator", "id": "indicator--1", "object_marking_refs":
    ...      ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"]},
    ...     {"type": "malware", "id": "malware--1", "object_marking_refs":
    ...      ["marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"]}]}
    >>> out = filter_stix_bundle(b, core, "taxii", source_org_uuid="org-a")
    >>> [o["id"] for o in out.bundle["objects"]]
    ['malware--1', 'marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb']
    >>> out.removed[0].reason.value
    'red-channel-forbidden'
    """
    channel = Channel(channel)
    objects, _ = _objects(bundle)
    if labels is None:
        labels = label_stix_bundle(
            bundle, policy=policy, source_org_uuid=source_org_uuid, source_policy=source_policy
        )
    addressing = addressing or Addressing.community()
    decisions: dict[Tlp | None, Decision] = {}

    def check(label: Tlp | None) -> Decision:
        found = decisions.get(label)
        if found is None:
            found = decide(
                label=label,
                recipient=recipient,
                channel=channel,
                addressing=addressing,
                source_org_uuid=source_org_uuid,
                policy=policy,
            )
            decisions[label] = found
        return found

    removed: list[Removed] = []
    gone: set[str] = set()
    candidates: list[Mapping[str, Any]] = []
    present: set[str] = set()
    for index, obj in enumerate(objects):
        if not isinstance(obj, Mapping) or not isinstance(obj.get("id"), str):
            removed.append(
                Removed(
                    "unknown", f"#object-{index}", Reason.QUARANTINE, "A STIX object without an id."
                )
            )
            continue
        ident = obj["id"]
        present.add(ident)
        if obj.get("type") == "marking-definition":
            continue
        d = check(labels.labels.get(ident))
        if not d.allowed:
            removed.append(Removed(str(obj.get("type")), ident, d.reason, d.sentence))
            gone.add(ident)
        else:
            candidates.append(obj)

    # relationships and sightings whose endpoints went, until nothing changes
    changed = bool(gone)
    while changed:
        changed = False
        still: list[Mapping[str, Any]] = []
        for obj in candidates:
            keys = _ENDPOINTS.get(obj.get("type"))  # type: ignore[arg-type]
            if keys and any(obj.get(k) in gone for k in keys):
                ident = obj["id"]
                removed.append(
                    Removed(
                        str(obj["type"]),
                        ident,
                        Reason.PARENT_REMOVED,
                        "An object it refers to was removed.",
                    )
                )
                gone.add(ident)
                changed = True
            else:
                still.append(obj)
        candidates = still

    if not candidates:
        return FilteredBundle(None, Reason.NOTHING_LEFT, tuple(removed), decisions)

    used_labels: set[Tlp] = set()
    used_others: list[str] = []
    out: list[dict[str, Any]] = []
    tlp_ids = set(KNOWN_MARKING_IDS)
    for obj in candidates:
        ident = obj["id"]
        label = labels.labels[ident]
        assert label is not None
        used_labels.add(label)
        new = dict(obj)
        others = labels.other_markings.get(ident, ())
        refs = [TLP2_IDS[label]]
        if legacy_tlp1 and label in TLP1_IDS:
            refs.append(TLP1_IDS[label])
        refs.extend(others)
        new["object_marking_refs"] = refs
        for other in others:
            if other not in used_others:
                used_others.append(other)
        granular = obj.get("granular_markings")
        if granular:
            new["granular_markings"] = [
                _rewrite_granular(g, labels.definitions, tlp_ids, used_labels, used_others)
                for g in granular
            ]
        if gone:
            _prune_refs(new, gone)
        out.append(new)

    for label in sorted(used_labels):
        out.append(tlp2_marking_definition(label))
        if legacy_tlp1 and label in TLP1_IDS:
            out.append(tlp1_marking_definition(label))
    for other in used_others:
        definition = labels.definitions.get(other)
        if definition is not None:
            out.append(dict(definition))
    result = {
        "type": "bundle",
        "id": bundle.get("id") if bundle.get("type") == "bundle" else None,
        "objects": out,
    }
    if result["id"] is None:
        del result["id"]
    first = check(labels.labels[candidates[0]["id"]])
    return FilteredBundle(result, first.reason, tuple(removed), decisions)


def _rewrite_granular(
    entry: Mapping[str, Any],
    definitions: Mapping[str, Mapping[str, Any]],
    tlp_ids: set[str],
    used_labels: set[Tlp],
    used_others: list[str],
) -> Mapping[str, Any]:
    ref = entry.get("marking_ref")
    if not isinstance(ref, str):
        return entry
    label = KNOWN_MARKING_IDS.get(ref)
    if label is None:
        definition = definitions.get(ref)
        if definition is not None:
            label = definition_label(definition)
    if label is None:
        if ref not in used_others:
            used_others.append(ref)
        return entry
    used_labels.add(label)
    return {**entry, "marking_ref": TLP2_IDS[label]}


def _prune_refs(obj: dict[str, Any], gone: set[str]) -> None:
    """Remove ids of dropped objects from top-level `*_refs` lists and `*_ref` properties."""
    for key in list(obj):
        if key == "object_marking_refs":
            continue
        value = obj[key]
        if key.endswith("_refs") and isinstance(value, list):
            if any(v in gone for v in value):
                obj[key] = [v for v in value if v not in gone]
        elif key.endswith("_ref") and isinstance(value, str) and value in gone:
            del obj[key]
