"""The ``stix_objects`` rows of an event, reconciled with each new rendering (``projection``).

``date_added`` is set again after ingest's audit entries, that is under the audit head lock
(the write lock on SQLite), so it grows in commit order and ``added_after`` pollers miss
nothing (``hub.intel.service``: a batch appends its entries last, so that it holds the head
only from then to its commit).
An object whose label, addressing or content changes gets a new ``date_added``: a downgrade
then reaches pollers that already went past the object's first appearance. The references of
an event's container and the substance classes of what goes out only along with substance
(its creator's identity, its event-level galaxies) are kept current without one: they change
with elements not every recipient sees (``_digest``).

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
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from hub.intel.stix_labels import Rendered, uuid_of
from hub.intel.stix_shape import CONTAINERS, parse_timestamp, timestamp
from hub.models import Event, StixObject
from hub.models.base import utcnow

_CHUNK = 2000


def _element_uuid(item: Rendered, own: frozenset[str]) -> str | None:
    """The event's element an object is named after, or for a relationship the element it
    starts or ends at: its revocation goes to that element's recipients. None: only the
    creator is told of its revocation."""
    uuid = uuid_of(item.stix_id)
    if uuid in own:
        return uuid
    if item.type == "relationship":
        doc = orjson.loads(item.doc)
        for key in ("source_ref", "target_ref"):
            end = uuid_of(str(doc.get(key) or ""))
            if end in own:
                return end
    return None


def _digest(item: Rendered) -> str:
    """What makes a new ``date_added``. A container's references (and their classes) are left
    out: they change with elements not every recipient sees, and each recipient gets them
    pruned. A container is re-dated when the event's own fields change, with its
    ``modified``; a poller that becomes entitled to it later through a new element gets the
    element at once and the container's new references on its next full read.

    So are the substance classes (a fifth element) of what goes out only along with
    substance, the creator's identity and the galaxies: an element added for others (a
    higher label, a narrower addressing) adds one, and re-dating the object would list it
    again to pollers who see nothing new (#13). Their label, addressing and content still
    re-date them; a poller first entitled to them through a new element gets them, like the
    container, on its next full read."""
    if item.type in CONTAINERS:
        doc = orjson.loads(item.doc)
        doc.pop("object_refs", None)
        h = hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
        h.update(orjson.dumps(item.placement.columns()))
        return h.hexdigest()
    h = hashlib.sha256(item.doc)
    h.update(orjson.dumps([item.placement.columns(), [r for r in item.refs if len(r) < 5]]))
    return h.hexdigest()


def _with_substance_classes(item: Rendered) -> bool:
    """Whether the object has substance classes (a fifth element): its references then
    follow each new rendering without a new ``date_added`` (``_digest``)."""
    return any(len(r) > 4 for r in item.refs)


def reconcile(
    session: Session,
    event: Event,
    objects: list[Rendered],
    *,
    own: frozenset[str],
    now: datetime | None = None,
) -> int:
    """Insert new object versions, refresh changed ones (new ``date_added``), revoke or drop
    the gone (module doc); returns how many objects the event now has."""
    now = now or utcnow()
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
    changes = _Changes(
        by_key={(r.stix_id, r.version): r for r in existing},
        latest={r.stix_id: r for r in existing if r.latest},
    )
    for item in objects:
        changes.take(item, event, own=own, now=now)
    current = changes.current
    # Older versions carry older (possibly looser) labels and addressing: never served again,
    # they are deleted; an object that is gone is replaced by its revocation, or dropped.
    # A revocation already served stays (module doc).
    gone = [r.id for r in existing if r.stix_id not in current and r.latest and not r.revoked]
    changes.inserts += _revocations(session, event, gone, own=own, now=now)
    stale = sorted(
        r.id
        for r in existing
        if (r.stix_id in current and current[r.stix_id] != r.version)
        or (r.stix_id not in current and not r.revoked)
    )
    for start in range(0, len(stale), _CHUNK):
        session.execute(delete(StixObject).where(StixObject.id.in_(stale[start : start + _CHUNK])))
    for batch in (changes.updates, changes.quiet):
        for start in range(0, len(batch), _CHUNK):
            session.execute(update(StixObject), batch[start : start + _CHUNK])
    for start in range(0, len(changes.inserts), _CHUNK):
        session.execute(insert(StixObject), changes.inserts[start : start + _CHUNK])
    return len(current)


@dataclass
class _Changes:
    """What a new rendering changes in the event's rows: versions to insert, rows to refresh
    (re-dated), containers whose references alone changed (not re-dated), and the current
    version of each object. ``by_key``: the event's rows by (stix id, version); ``latest``:
    its latest row of each object."""

    by_key: dict[tuple[str, str], Any]
    latest: dict[str, Any]
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    quiet: list[dict[str, Any]] = field(default_factory=list)
    current: dict[str, str] = field(default_factory=dict)

    def take(
        self,
        item: Rendered,
        event: Event,
        *,
        own: frozenset[str],
        now: datetime,
    ) -> None:
        if item.stix_id in self.current:
            return  # misp-stix emits an object once; keep the first if it does not
        digest = _digest(item)
        version = item.version
        if version is None:  # no modified/created (observables): a new version on change
            previous = self.latest.get(item.stix_id)
            version = previous.version if previous and previous.digest == digest else timestamp(now)
        self.current[item.stix_id] = version
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
        old = self.by_key.get((item.stix_id, version))
        if old is None:
            self.inserts.append(
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
            self.updates.append({"id": old.id, **values})
        elif item.type in CONTAINERS or _with_substance_classes(item):
            # its references only: updated (the release reads them), not re-dated
            self.quiet.append({"id": old.id, "doc": item.doc, "refs": values["refs"]})


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
    return doc.get("type") == "relationship" or uuid_of(str(doc.get("id"))) in own


def _later(version: str, now: datetime) -> str:
    """``now`` as a version, or just after ``version`` if that is not earlier (a ``modified``
    in the future): a revocation must be the newest version of its object."""
    stamp = timestamp(now)
    if stamp > version:
        return stamp
    return timestamp(parse_timestamp(version, field="version") + timedelta(microseconds=1))
