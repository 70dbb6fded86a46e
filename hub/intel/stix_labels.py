"""The label and addressing of each STIX object of an event's rendering (``hub.intel.projection``).

Labels come from the store, not from misp-stix (which drops or misplaces markings, §4.3): each
object gets the effective label and addressing of the MISP element it came from, matched by
uuid (misp-stix names indicators, observed-data and their observables after the attribute or
object). Objects that match no element inherit from what they connect (a relationship from its
endpoints, an observable from the objects that reference it: the most restrictive of them);
anything else gets the event's highest label and narrowest addressing: fail closed. Each
object also stores its references grouped by the label and addressing of their targets, so the
release path can prune references to what a recipient may not see without another query.

Sightings are not served, nor the identities of organisations other than the event's creator
(misp-stix renders each sighting's organisation as an ``identity``: naming who was hit), as
the /misp view anonymises sightings.

An event's container (report/grouping, with the event's title), its event-level galaxies and
its creator's identity say nothing about a value, yet must not go to a caller who may see
none of the event's attributes, objects or reports (the /misp view answers 404 then). Their
reference classes include "substance" classes (a fifth element, 1): the classes of the
objects that came from an attribute, object or report. The release path delivers them only
if at least one substance class is allowed for the caller (``hub.sharing.stix``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

import tlp
from hub.errors import BadRequest
from hub.intel import snapshots as intel
from hub.intel.snapshots import group_id
from hub.intel.stix_shape import (
    CONTAINERS,
    PRUNABLE,
    normalise_version,
    prune_references,
    timestamp,
)
from tlp.misp_read import PRODUCER_PREFIX, without_producers


@dataclass(frozen=True, slots=True)
class Placement:
    """Effective label and addressing of one object (its element's, or inherited)."""

    label: tlp.Tlp
    addressing: tlp.Addressing

    def join(self, other: Placement) -> Placement:
        """The more restrictive of both: the higher label, the narrower addressing."""
        return Placement(max(self.label, other.label), self.addressing.narrow(other.addressing))

    def columns(self) -> tuple[int, int, str | None]:
        """(tlp_rank, distribution, sg_members) as stored and as ``addressing_of`` reads them."""
        members = self.addressing.members
        if members is not None:
            return self.label.rank, 4, orjson.dumps(sorted(members)).decode()
        return self.label.rank, self.addressing.distribution, None


def _tags(tags: Any, *, chr: bool) -> list[Any]:
    return [
        t
        for t in tags or []
        if isinstance(t, dict)
        and not t.get("local")
        and not (chr and str(t.get("name", "")).startswith(PRODUCER_PREFIX))
    ]


def _element(item: dict[str, Any], *, chr: bool) -> dict[str, Any]:
    out = dict(item)
    if "Tag" in out:
        out["Tag"] = _tags(out["Tag"], chr=chr)
    if chr:
        without_producers(out)
    if str(out.get("distribution")) == "4" and isinstance(out.get("SharingGroup"), dict):
        out["sharing_group_id"] = group_id(out["SharingGroup"])  # misp-stix needs one
    return out


def shareable(state: dict[str, Any], *, chr: bool) -> dict[str, Any]:
    """The event as the rendering may see it: no local tag (they become STIX ``labels``,
    and never leave the hub), no producer of a TLP:EX:CHR event, a sharing group id on
    elements addressed to one (misp-stix renders them only with it). A copy: the state is
    the stored version's."""
    out = _element(state, chr=chr)
    out["Attribute"] = [_element(a, chr=chr) for a in state.get("Attribute") or []]
    out["Object"] = [
        {
            **_element(o, chr=chr),
            "Attribute": [_element(a, chr=chr) for a in o.get("Attribute") or []],
        }
        for o in state.get("Object") or []
    ]
    if "EventReport" in state:
        out["EventReport"] = [_element(r, chr=chr) for r in state.get("EventReport") or []]
    return out


def own_uuids(state: dict[str, Any]) -> frozenset[str]:
    """The uuids of the event and of all its elements, deleted ones included: the objects
    named after them are what this event asserted (and may revoke)."""
    uuids = [state["uuid"]]
    uuids += [a["uuid"] for a in state.get("Attribute") or []]
    for obj in state.get("Object") or []:
        uuids.append(obj["uuid"])
        uuids += [a["uuid"] for a in obj.get("Attribute") or []]
    uuids += [r.get("uuid") for r in state.get("EventReport") or []]
    return frozenset(str(u or "").lower() for u in uuids) - {""}


@dataclass(slots=True)
class Rendered:
    stix_id: str
    type: str
    version: str | None
    placement: Placement
    refs: list[list[Any]]
    doc: bytes


def label_objects(
    state: dict[str, Any],
    labels: tlp.EventLabels,
    objects: list[dict[str, Any]],
    *,
    chr: bool = False,
    meta: int | None = None,
) -> list[Rendered]:
    """Each STIX object of the event's rendering, marked with its placement (module doc).

    The event's container (report/grouping) is every recipient's, its ``object_refs`` pruned
    for each: its ``created``/``modified`` (and the creator identity's, and the event-level
    galaxies') follow the event's own fields (``meta``, the event's ``meta_timestamp``), not
    the event's timestamp, which moves with elements some recipients do not see."""
    elements, substantive = _element_placements(state, labels)
    orgc = str((state.get("Orgc") or {}).get("uuid") or "")
    content = _without_references(*_served(objects, chr=chr, orgc=orgc))
    placed, counts = _placements(content, elements, substantive)
    substance: dict[tuple[int, int, str | None], list[str]] = {}
    for target in sorted(counts):
        substance.setdefault(placed[target].columns(), [])
    if not substance:  # nothing of substance: a class no caller is ever allowed
        substance[_NEVER.columns()] = []
    if meta:
        # The container, the creator's identity and the event-level galaxies carry the
        # event's own time: the event's timestamp moves with elements some recipients do not
        # see (misp-stix dates event-level galaxies with it).
        when = timestamp(datetime.fromtimestamp(meta, UTC))
        own_time = _event_galaxies(state)
        for obj in content:
            if "modified" not in obj:
                continue
            if (
                obj["type"] in CONTAINERS
                or obj["type"] == "identity"
                or uuid_of(obj["id"]) in own_time
            ):
                obj["created"] = obj["modified"] = when
    return [_rendered(obj, placed, counts, substance) for obj in content]


def _event_galaxies(state: dict[str, Any]) -> set[str]:
    """The uuids of the galaxy clusters attached to the event itself."""
    return {
        str((c or {}).get("uuid") or "").lower()
        for g in state.get("Galaxy") or []
        for c in (g or {}).get("GalaxyCluster") or []
    } - {""}


# A target not in the rendering: a class no caller is ever allowed.
_NEVER = Placement(tlp.Tlp.RED, tlp.Addressing.hub_only())


def _served(
    objects: list[dict[str, Any]], *, chr: bool, orgc: str
) -> tuple[list[dict[str, Any]], set[str]]:
    """The objects the projection keeps, and the ids of those it drops (whose references
    must go too): no TLP definition or extension (they travel with every page), no sighting,
    no identity but the creator's (none for TLP:EX:CHR)."""
    kept = []
    dropped: set[str] = set()
    for obj in objects:
        if obj["type"] == "marking-definition" and obj["id"] in tlp.KNOWN_MARKING_IDS:
            continue  # the TLP 2.0 definitions travel with every page instead
        if obj["type"] == "extension-definition":
            continue
        if obj["type"] == "sighting":
            dropped.add(obj["id"])  # who saw it is not shared (the /misp view anonymises)
            continue
        if obj["type"] == "identity" and (chr or uuid_of(obj["id"]) != orgc):
            dropped.add(obj["id"])  # only the creator is named; TLP:EX:CHR: not even it
            continue
        if chr:
            obj.pop("created_by_ref", None)
        kept.append(obj)
    return kept, dropped


def _placements(
    content: list[dict[str, Any]], elements: dict[str, Placement], substantive: set[str]
) -> tuple[dict[str, Placement], set[str]]:
    """Each object's placement: its element's, else inherited from what it connects to, else
    the event's most restrictive; and the ids of the objects of substance (module doc)."""
    direct: dict[str, Placement] = {}
    for obj in content:
        found = elements.get(uuid_of(obj["id"]))
        if found is not None:
            direct[obj["id"]] = found
    referrers: dict[str, list[Placement]] = {}
    referred_by: dict[str, set[str]] = {}
    for obj in content:
        if obj["id"] in direct and obj["type"] not in CONTAINERS:
            for _prop, target in _refs(obj):
                referrers.setdefault(target, []).append(direct[obj["id"]])
                referred_by.setdefault(target, set()).add(obj["id"])
    fallback = _fold(elements.values())
    placed: dict[str, Placement] = dict(direct)
    # Objects that came from an attribute, object or report (not a galaxy, not an identity,
    # not the event): they alone give the event's container a reason to go out.
    counts = {
        obj["id"]
        for obj in content
        if obj["id"] in direct and obj["type"] != "identity" and uuid_of(obj["id"]) in substantive
    }  # a container counts only as a report's note, named after the report
    for obj in content:
        if obj["id"] in placed:
            continue
        sources = [t for prop, t in _refs(obj) if prop not in PRUNABLE and t in direct]
        inherited = [direct[t] for t in sources]
        inherited += referrers.get(obj["id"], [])
        placed[obj["id"]] = _fold(inherited) if inherited else fallback
        if obj["type"] not in CONTAINERS and obj["type"] != "identity":
            if counts.intersection(sources) or counts.intersection(referred_by.get(obj["id"], ())):
                counts.add(obj["id"])  # an observable of an attribute, a relationship to it
    return placed, counts


def _rendered(
    obj: dict[str, Any],
    placed: dict[str, Placement],
    counts: set[str],
    substance: dict[tuple[int, int, str | None], list[str]],
) -> Rendered:
    """One object marked with its label, its references grouped by the placement of their
    targets (a fifth element, 1, on the substance classes of the event's own objects)."""
    place = placed[obj["id"]]
    others = [r for r in obj.get("object_marking_refs", []) if r not in tlp.KNOWN_MARKING_IDS]
    obj["object_marking_refs"] = [place.label.stix_id, *others]
    obj.pop("granular_markings", None)
    container = obj["type"] in CONTAINERS
    classes: dict[tuple[int, int, str | None, int], list[str]] = {}
    for _prop, target in _refs(obj):
        if target in tlp.KNOWN_MARKING_IDS:
            continue
        flag = int(container and target in counts)
        key = (*placed.get(target, _NEVER).columns(), flag)
        ids = classes.setdefault(key, [])
        if target not in ids:
            ids.append(target)
    if container and obj["id"] in counts:
        classes.setdefault((*place.columns(), 1), [])  # a report's note: substance itself
    elif not container and obj["id"] not in counts:
        # The event's galaxies, its creator, the event itself: only along with substance.
        for key3 in substance:
            classes.setdefault((*key3, 1), [])
    elif container and not any(flag for *_k, flag in classes):
        classes.setdefault((*_NEVER.columns(), 1), [])
    return Rendered(
        stix_id=obj["id"],
        type=obj["type"],
        version=_version(obj),
        placement=place,
        refs=[
            [rank, dist, sg, ids, 1] if flag else [rank, dist, sg, ids]
            for (rank, dist, sg, flag), ids in classes.items()
        ],
        doc=orjson.dumps(obj),
    )


def _version(obj: dict[str, Any]) -> str | None:
    """``modified``, else ``created``, as the server writes timestamps; None for neither."""
    stamp = obj.get("modified") or obj.get("created")
    if not isinstance(stamp, str):
        return None
    try:
        return normalise_version(stamp)
    except BadRequest:
        return None


def _without_references(objects: list[dict[str, Any]], dropped: set[str]) -> list[dict[str, Any]]:
    """The objects without their references to ``dropped``; an object that cannot stand
    without one (a required reference, a container left empty) is dropped too, and so on."""
    dropped = set(dropped)
    while True:
        out = []
        more = False
        for obj in objects:
            if not dropped.intersection(t for _p, t in _refs(obj)):
                out.append(obj)
                continue
            doc, _reason = prune_references(orjson.dumps(obj), dropped)
            if doc is None:
                dropped.add(obj["id"])
                more = True
            else:
                out.append(orjson.loads(doc))
        objects = out
        if not more:
            return objects


def _refs(obj: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(property, target id) for every top-level ``*_ref``/``*_refs`` property of an object."""
    for key, value in obj.items():
        if key.endswith("_ref") and isinstance(value, str):
            yield key, value
        elif key.endswith("_refs") and isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    yield key, item


def _element_placements(
    state: dict[str, Any], labels: tlp.EventLabels
) -> tuple[dict[str, Placement], set[str]]:
    """Element uuid → placement: the event (and its creator's identity), attributes, objects
    (whole: the highest label, the narrowest addressing of the object and its attributes),
    reports, and the galaxy clusters attached to each; and the uuids of the attributes,
    objects and reports (what gives the event substance)."""
    highest = _highest(labels)

    def label(found: tlp.Tlp | None) -> tlp.Tlp:
        return found if found is not None else highest  # not labelled: fail closed

    def addressing(element: dict[str, Any], parent: tlp.Addressing | None) -> tlp.Addressing:
        dist = int(element.get("distribution", 5))
        if parent is not None and dist == 5:
            return parent
        own = _addressing(dist, intel.sg_members(element))
        return own if parent is None else parent.narrow(own)

    out: dict[str, Placement] = {}

    def put(uuid: object, place: Placement) -> None:
        key = str(uuid or "").lower()
        if key:
            out[key] = out[key].join(place) if key in out else place

    def galaxies(element: dict[str, Any], place: Placement) -> None:
        for galaxy in element.get("Galaxy") or []:
            for cluster in (galaxy or {}).get("GalaxyCluster") or []:
                put((cluster or {}).get("uuid"), place)

    ev_addr = addressing(state, None)
    ev_place = Placement(label(labels.event), ev_addr)
    put(state["uuid"], ev_place)
    galaxies(state, ev_place)
    # The creator's identity says who shared: it goes where the least restricted element
    # goes, so an event with nothing a recipient may see does not reveal its source.
    elements = [
        *(labels.attributes.get(a["uuid"]) for a in state["Attribute"]),
        *(labels.objects.get(o["uuid"]) for o in state["Object"]),
        *(labels.reports.get(r.get("uuid")) for r in state.get("EventReport") or []),
    ]
    lowest = min((label(x) for x in elements), default=ev_place.label)
    put((state.get("Orgc") or {}).get("uuid"), Placement(max(ev_place.label, lowest), ev_addr))
    for attr in state["Attribute"]:
        place = Placement(label(labels.attributes.get(attr["uuid"])), addressing(attr, ev_addr))
        put(attr["uuid"], place)
        galaxies(attr, place)
    for obj in state["Object"]:
        obj_addr = addressing(obj, ev_addr)
        whole = obj_addr
        for attr in obj["Attribute"]:
            whole = whole.narrow(addressing(attr, obj_addr))
        place = Placement(label(labels.objects.get(obj["uuid"])), whole)
        put(obj["uuid"], place)
        for attr in obj["Attribute"]:
            put(attr["uuid"], place)
            galaxies(attr, place)
    for report in state.get("EventReport") or []:
        place = Placement(
            label(labels.reports.get(report.get("uuid"))), addressing(report, ev_addr)
        )
        put(report.get("uuid"), place)
    return out, _substantive(state)


def _highest(labels: tlp.EventLabels) -> tlp.Tlp:
    """The event's highest label, what an element without one gets (fail closed)."""
    return max(
        [
            x
            for x in (
                labels.event,
                *labels.attributes.values(),
                *labels.objects.values(),
                *labels.reports.values(),
            )
            if x is not None
        ],
        default=tlp.Tlp.AMBER_STRICT,
    )


def _substantive(state: dict[str, Any]) -> set[str]:
    """The uuids of the event's attributes, objects and reports (what gives it substance),
    less any that names a galaxy cluster."""
    substantive = {
        str(x or "").lower()
        for x in (
            *(a["uuid"] for a in state["Attribute"]),
            *(o["uuid"] for o in state["Object"]),
            *(a["uuid"] for o in state["Object"] for a in o["Attribute"]),
            *(r.get("uuid") for r in state.get("EventReport") or []),
        )
    }
    galaxy_uuids = {
        str((c or {}).get("uuid") or "").lower()
        for element in (
            state,
            *state["Attribute"],
            *(a for o in state["Object"] for a in o["Attribute"]),
        )
        for g in element.get("Galaxy") or []
        for c in (g or {}).get("GalaxyCluster") or []
    }
    return substantive - galaxy_uuids - {""}


def _addressing(distribution: int, sg_members: str | None) -> tlp.Addressing:
    if distribution == 4:
        return tlp.Addressing.sharing_group(orjson.loads(sg_members) if sg_members else ())
    if distribution in (1, 2, 3):
        return tlp.Addressing(distribution)
    return tlp.Addressing.hub_only()


def _fold(places: Iterable[Placement]) -> Placement:
    result: Placement | None = None
    for place in places:
        result = place if result is None else result.join(place)
    return result or Placement(tlp.Tlp.AMBER_STRICT, tlp.Addressing.hub_only())


def uuid_of(stix_id: str) -> str:
    return stix_id.split("--", 1)[-1].lower()
