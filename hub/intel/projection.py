"""Every stored event version, rendered to STIX 2.1 once: one row per object, labelled per element.

misp-stix costs about 1 ms per attribute (reference: tlp-stix-taxii §4.5), far too slow to run
per request, so ingest calls ``render_event_version`` and TAXII serves the stored bytes.

Labels come from the store, not from misp-stix (which drops or misplaces markings, §4.3): each
object gets the effective label and addressing of the MISP element it came from, matched by
uuid (misp-stix names indicators, observed-data and their observables after the attribute or
object). Objects that match no element inherit from what they connect (a relationship from its
endpoints, an observable from the objects that reference it: the most restrictive of them);
anything else gets the event's highest label and narrowest addressing: fail closed. Each
object also stores its references grouped by the label and addressing of their targets, so the
release path can prune references to what a recipient may not see without another query.

``date_added`` is set again after ingest's audit entries, that is under the audit head lock
(the write lock on SQLite), so it grows in commit order and ``added_after`` pollers miss
nothing (``hub.intel.service``: a batch appends its entries last, so that it holds the head
only from then to its commit).
An object whose label, addressing or content changes gets a new ``date_added``: a downgrade
then reaches pollers that already went past the object's first appearance.

Only the current version of each object is kept: rendering a new event version deletes the
older versions of its objects. An older version carries the older, possibly looser label and
addressing (a source that tightens GREEN to RED must not see the GREEN version keep going out),
so ``match[version]=all|first`` and the versions endpoint list only the current version (TAXII
2.1 lets a server keep as many versions as it likes).

An object that is gone (its attribute, object or report deleted or marked false positive, the
whole event deleted) is not just dropped: a poller that has it would never learn. It is
replaced by a last version with ``"revoked": true`` (a new ``modified``, a new ``date_added``),
with the label, addressing and references of the version it replaces, so exactly the callers
who could see the withdrawn version see the revocation. Only what the event itself asserted is
revoked (objects named after its own elements, and relationships); observables (which cannot
be revoked in STIX 2.1), identities and galaxy clusters (shared by other events) are dropped.

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

import hashlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

import tlp
from connectors.misp import has_content
from hub.errors import BadRequest
from hub.intel import snapshots as intel
from hub.intel import stix_convert as intel_stix
from hub.intel.snapshots import group_id
from hub.intel.stix_shape import (
    CONTAINERS,
    PRUNABLE,
    normalise_version,
    parse_timestamp,
    prune_references,
    timestamp,
)
from hub.jobs import claiming
from hub.models import Event, Partner, StixObject, StixRendering
from hub.models.base import utcnow
from tlp.misp_read import PRODUCER_PREFIX, without_producers

log = logging.getLogger("hub.intel.projection")

# misp-stix takes about 1 ms per attribute: ingest renders small events itself and leaves
# larger ones to ``render_pending`` (a job); the largest are not rendered at all.
MAX_RENDER_AT_INGEST = 500
MAX_RENDER_ATTRIBUTES = 20_000
_CHUNK = 2000


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


def render_event_version(
    session: Session,
    *,
    event: Event,
    state: dict[str, Any],
    labels: tlp.EventLabels,
    defer_above: int | None = MAX_RENDER_AT_INGEST,
    now: datetime | None = None,
) -> None:
    """Render the event's current version (``state``) and reconcile its ``stix_objects`` rows.

    Called by ingest for every stored version. An event with more than ``defer_above``
    attributes is only marked pending (its older rendering stops being served at once) and
    left to ``render_pending``, so that ingest keeps its speed (DESIGN.md §5, I1). A
    conversion failure never breaks ingest: it is logged, the event's objects are withdrawn
    and the reason is recorded in ``stix_renderings``. ``now`` dates what changes (ingest
    gives the batch's stamp and dates its objects again after its audit entries).
    """
    own = _own_uuids(state)
    if not has_content(state):  # everything withdrawn: nothing to convert, all is revoked
        _reconcile(session, event, [], own=own, now=now)
        return
    live = intel.live_state(state)
    count = len(live["Attribute"]) + sum(len(o["Attribute"]) for o in live["Object"])
    if defer_above is not None and count > defer_above:
        reason = f"{count} attributes: rendered in the background, not at ingest"
        _record(session, event, status="pending", reason=reason, count=0)
        return
    if count > MAX_RENDER_ATTRIBUTES:
        _withdraw(
            session,
            event,
            f"{count} attributes: too large to render (limit {MAX_RENDER_ATTRIBUTES}); "
            "not served over TAXII",
            status="skipped",
        )
        return
    rendered = shareable(live, chr=event.chr)
    # misp-stix makes a published event's container a report (``published``: its publish
    # time), else a grouping. The rendering is every recipient's: an event unpublished by
    # changes to its elements stays a report while recipients may still hold a published
    # copy (``Event.publications``), published at the first of them, so neither its type
    # nor its time tells anybody of changes or publications it cannot see.
    publications = orjson.loads(event.publications or "[]")
    rendered["published"] = bool(event.published) or bool(publications)
    if publications:
        rendered["publish_timestamp"] = str(publications[0][1])
    try:
        bundle = intel_stix.event_to_bundle({"Event": rendered})
    except Exception as err:  # misp-stix failing must not break ingest
        log.warning("STIX rendering of event %s failed: %r", event.uuid, err)
        _withdraw(session, event, f"misp-stix failed: {type(err).__name__}: {err}"[:2000])
        return
    objects = label_objects(
        live, labels, bundle["objects"], chr=event.chr, meta=event.meta_timestamp or None
    )
    _reconcile(session, event, objects, own=own, now=now)


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


def _own_uuids(state: dict[str, Any]) -> frozenset[str]:
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
    for each: its ``created``/``modified`` (and the creator identity's) follow the event's own
    fields (``meta``, the event's ``meta_timestamp``), not the event's timestamp, which moves
    with elements some recipients do not see."""
    elements, substantive = _element_placements(state, labels)
    fallback = _fold(elements.values())
    orgc = str((state.get("Orgc") or {}).get("uuid") or "")
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
        if obj["type"] == "identity" and (chr or _uuid_of(obj["id"]) != orgc):
            dropped.add(obj["id"])  # only the creator is named; TLP:EX:CHR: not even it
            continue
        if chr:
            obj.pop("created_by_ref", None)
        kept.append(obj)
    content = _without_references(kept, dropped)
    direct: dict[str, Placement] = {}
    for obj in content:
        found = elements.get(_uuid_of(obj["id"]))
        if found is not None:
            direct[obj["id"]] = found
    referrers: dict[str, list[Placement]] = {}
    referred_by: dict[str, set[str]] = {}
    for obj in content:
        if obj["id"] in direct and obj["type"] not in CONTAINERS:
            for _prop, target in _refs(obj):
                referrers.setdefault(target, []).append(direct[obj["id"]])
                referred_by.setdefault(target, set()).add(obj["id"])
    placed: dict[str, Placement] = dict(direct)
    # Objects that came from an attribute, object or report (not a galaxy, not an identity,
    # not the event): they alone give the event's container a reason to go out.
    counts = {
        obj["id"]
        for obj in content
        if obj["id"] in direct and obj["type"] != "identity" and _uuid_of(obj["id"]) in substantive
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
    never = Placement(tlp.Tlp.RED, tlp.Addressing.hub_only())  # a target not in the rendering
    substance: dict[tuple[int, int, str | None], list[str]] = {}
    for target in sorted(counts):
        substance.setdefault(placed[target].columns(), [])
    if not substance:  # nothing of substance: a class no caller is ever allowed
        substance[never.columns()] = []
    if meta:
        # The container and the creator's identity carry the event's own time: the event's
        # timestamp moves with elements some recipients do not see.
        when = timestamp(datetime.fromtimestamp(meta, UTC))
        for obj in content:
            if (obj["type"] in CONTAINERS or obj["type"] == "identity") and "modified" in obj:
                obj["created"] = obj["modified"] = when
    out = []
    for obj in content:
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
            key = (*placed.get(target, never).columns(), flag)
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
            classes.setdefault((*never.columns(), 1), [])
        out.append(
            Rendered(
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
        )
    return out


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
    highest = max(
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
    return out, substantive - galaxy_uuids - {""}


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


def _uuid_of(stix_id: str) -> str:
    return stix_id.split("--", 1)[-1].lower()


def _element_uuid(item: Rendered, own: frozenset[str]) -> str | None:
    """The event's element an object is named after, or for a relationship the element it
    starts or ends at: its revocation goes to that element's recipients. None: only the
    creator is told of its revocation."""
    uuid = _uuid_of(item.stix_id)
    if uuid in own:
        return uuid
    if item.type == "relationship":
        doc = orjson.loads(item.doc)
        for key in ("source_ref", "target_ref"):
            end = _uuid_of(str(doc.get(key) or ""))
            if end in own:
                return end
    return None


def _digest(item: Rendered) -> str:
    """What makes a new ``date_added``. A container's references (and their classes) are left
    out: they change with elements not every recipient sees, and each recipient gets them
    pruned. A container is re-dated when the event's own fields change, with its
    ``modified``; a poller that becomes entitled to it later through a new element gets the
    element at once and the container's new references on its next full read."""
    if item.type in CONTAINERS:
        doc = orjson.loads(item.doc)
        doc.pop("object_refs", None)
        h = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
        h.update(orjson.dumps(item.placement.columns()))
        return h.hexdigest()
    h = hashlib.sha256(item.doc)
    h.update(orjson.dumps([item.placement.columns(), item.refs]))
    return h.hexdigest()


def _reconcile(
    session: Session,
    event: Event,
    objects: list[Rendered],
    *,
    own: frozenset[str],
    now: datetime | None = None,
) -> None:
    """Insert new object versions, refresh changed ones (new ``date_added``), revoke or drop
    the gone (module doc)."""
    now = now or utcnow()
    stamp = timestamp(now)
    existing = session.execute(
        select(
            StixObject.id,
            StixObject.stix_id,
            StixObject.version,
            StixObject.digest,
            StixObject.latest,
            StixObject.revoked,
        ).where(StixObject.event_id == event.id)
    ).all()
    by_key = {(r.stix_id, r.version): r for r in existing}
    latest = {r.stix_id: r for r in existing if r.latest}
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    quiet: list[dict[str, Any]] = []
    current: dict[str, str] = {}
    for item in objects:
        if item.stix_id in current:
            continue  # misp-stix emits an object once; keep the first if it does not
        digest = _digest(item)
        version = item.version
        if version is None:  # no modified/created (observables): a new version on change
            previous = latest.get(item.stix_id)
            version = previous.version if previous and previous.digest == digest else stamp
        current[item.stix_id] = version
        rank, dist, sg = item.placement.columns()
        values = {
            "event_version": event.version,
            "tlp_rank": rank,
            "distribution": dist,
            "sg_members": sg,
            "refs": orjson.dumps(item.refs) if item.refs else None,
            "digest": digest,
            "doc": item.doc,
            "date_added": now,
            "latest": True,
            "revoked": False,
        }
        old = by_key.get((item.stix_id, version))
        if old is None:
            inserts.append(
                {
                    "event_id": event.id,
                    "event_uuid": event.uuid,
                    "source_partner_id": event.source_partner_id,
                    "orgc_uuid": event.orgc_uuid,
                    "stix_id": item.stix_id,
                    "element_uuid": _element_uuid(item, own),
                    "type": item.type,
                    "version": version,
                    **values,
                }
            )
        elif old.digest != values["digest"] or not old.latest:
            updates.append({"id": old.id, **values})
        elif item.type in CONTAINERS:  # its references only: updated, not re-dated
            quiet.append({"id": old.id, "doc": item.doc, "refs": values["refs"]})
    # Older versions carry older (possibly looser) labels and addressing: never served again,
    # they are deleted; an object that is gone is replaced by its revocation, or dropped.
    # A revocation already served stays (module doc).
    gone = [r.id for r in existing if r.stix_id not in current and r.latest and not r.revoked]
    inserts += _revocations(session, event, gone, own=own, now=now)
    stale = sorted(
        r.id
        for r in existing
        if (r.stix_id in current and current[r.stix_id] != r.version)
        or (r.stix_id not in current and not r.revoked)
    )
    for start in range(0, len(stale), _CHUNK):
        session.execute(delete(StixObject).where(StixObject.id.in_(stale[start : start + _CHUNK])))
    for batch in (updates, quiet):
        for start in range(0, len(batch), _CHUNK):
            session.execute(update(StixObject), batch[start : start + _CHUNK])
    for start in range(0, len(inserts), _CHUNK):
        session.execute(insert(StixObject), inserts[start : start + _CHUNK])
    _record(session, event, status="rendered", reason=None, count=len(current))


_NEVER_REVOKED = frozenset({"identity", "marking-definition"})


def _revocations(
    session: Session, event: Event, ids: list[int], *, own: frozenset[str], now: datetime
) -> list[dict[str, Any]]:
    """A ``"revoked": true`` version of each gone object the event asserted, for the same
    audience as the version it replaces (its label, addressing and reference classes)."""
    rows = []
    for start in range(0, len(ids), _CHUNK):
        rows += session.execute(
            select(StixObject.__table__).where(StixObject.id.in_(ids[start : start + _CHUNK]))
        ).all()
    out = []
    for row in rows:
        doc = orjson.loads(row.doc)
        if not _revocable(doc, own):
            continue
        version = _later(row.version, now)
        doc["modified"], doc["revoked"] = version, True
        body = orjson.dumps(doc)
        out.append(
            {
                "event_id": event.id,
                "event_uuid": event.uuid,
                "event_version": event.version,
                "source_partner_id": row.source_partner_id,
                "orgc_uuid": row.orgc_uuid,
                "stix_id": row.stix_id,
                "element_uuid": row.element_uuid,
                "type": row.type,
                "version": version,
                "tlp_rank": row.tlp_rank,
                "distribution": row.distribution,
                "sg_members": row.sg_members,
                "refs": row.refs,
                "digest": hashlib.sha256(body).hexdigest(),
                "doc": body,
                "date_added": now,
                "latest": True,
                "revoked": True,
            }
        )
    return out


def _revocable(doc: dict[str, Any], own: frozenset[str]) -> bool:
    """A versioned object (``modified``) that this event asserted: named after one of its own
    elements, or a relationship; not an identity, a marking or a shared galaxy cluster."""
    if "modified" not in doc or doc.get("type") in _NEVER_REVOKED:
        return False
    return doc.get("type") == "relationship" or _uuid_of(str(doc.get("id"))) in own


def _later(version: str, now: datetime) -> str:
    """``now`` as a version, or just after ``version`` if that is not earlier (a ``modified``
    in the future): a revocation must be the newest version of its object."""
    stamp = timestamp(now)
    if stamp > version:
        return stamp
    return timestamp(parse_timestamp(version, field="version") + timedelta(microseconds=1))


def render_pending(session: Session, *, policy: tlp.Policy, limit: int = 10) -> int:
    """Render up to ``limit`` events marked pending at ingest (for a worker job; each call
    is one unit of work). Returns how many were rendered (or recorded as failed)."""
    pending = session.scalars(
        claiming(
            select(StixRendering)
            .where(StixRendering.status == "pending")
            .order_by(StixRendering.rendered_at)
            .limit(limit)
        )
    ).all()
    for rendering in pending:
        event = session.get(Event, rendering.event_id)
        assert event is not None
        source = session.get(Partner, event.source_partner_id)
        assert source is not None
        state = intel.current_state(session, event)
        labels = tlp.label_misp_event(state, policy=policy, source_org_uuid=source.uuid)
        render_event_version(session, event=event, state=state, labels=labels, defer_above=None)
    return len(pending)


def _withdraw(session: Session, event: Event, reason: str, *, status: str = "failed") -> None:
    session.execute(delete(StixObject).where(StixObject.event_id == event.id))
    _record(session, event, status=status, reason=reason, count=0)


def _record(session: Session, event: Event, *, status: str, reason: str | None, count: int) -> None:
    row = session.get(StixRendering, event.id)
    if row is None:
        row = StixRendering(event_id=event.id)
        session.add(row)
    row.event_version = event.version
    row.status = status
    row.reason = reason
    row.object_count = count
    row.rendered_at = utcnow()
    session.flush()
