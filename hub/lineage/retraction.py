"""Retraction of releases: who received what a new event version withdrew or corrected.

Forward from the item: every earlier release of the event (the ``releases`` index: MISP
pushes, /misp pulls, TAXII pages, REST fetches) is checked against its audit entry for the
elements it actually carried (an element withheld from that recipient was not received). Each
recipient that received a withdrawn or corrected element gets one ``retract`` activity per
route, linked to the releases it corrects, and an audit entry. Nothing is sent from here: the
correction travels through the release path, decided again under TLP, on the recipient's own
channel (the next MISP push of the new version, with the deletions; the next /misp or REST
fetch; the ``revoked`` STIX objects on the next TAXII poll). Notifications are retracted by
``hub.notifications``.

When an audit entry does not list everything it delivered (very large deliveries), the
release counts as affected: a retraction record too many, never one too few.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

import tlp
from hub.audit import addressing
from hub.audit import releases as release_index
from hub.audit import service as audit
from hub.intel.snapshots import unpack
from hub.lineage import service as lineage
from hub.models import (
    AuditEntry,
    ElementWithdrawal,
    Event,
    EventVersion,
    PushOutboxItem,
    Release,
)

PLAN = "retraction@1"
# A connection's deliveries (MISP pushes) are made under its name; one counts as received
# only if its outbox item was sent with exactly that decision.
_PUSH_ACTOR = "connection:"
_NOTIFY = (tlp.Channel.NOTIFY_PARTNER.value, tlp.Channel.NOTIFY_CONSTITUENT.value)
_HOW = {
    "misp-push": "the next push sends version {v}, with the withdrawn elements deleted",
    "misp-sync": "the next /misp pull gets version {v}, with the withdrawn elements deleted",
    "taxii": "the next TAXII poll gets the revoked and corrected objects of version {v}",
    "rest": "the next REST fetch gets version {v}",
}


@dataclass(frozen=True, slots=True)
class Elements:
    """The live elements of one event version: uuid → (object uuid or None, fingerprint)."""

    live: dict[str, tuple[str | None, tuple[str, ...]]]

    @classmethod
    def of(cls, state: dict[str, Any]) -> Elements:
        live: dict[str, tuple[str | None, tuple[str, ...]]] = {}
        for attr in state.get("Attribute") or []:
            if not attr.get("deleted"):
                live[attr["uuid"]] = (None, (attr["type"], str(attr["value"])))
        for obj in state.get("Object") or []:
            if obj.get("deleted"):
                continue
            live[obj["uuid"]] = (None, ())
            for attr in obj.get("Attribute") or []:
                if not attr.get("deleted"):
                    live[attr["uuid"]] = (obj["uuid"], (attr["type"], str(attr["value"])))
        for report in state.get("EventReport") or []:
            if not report.get("deleted") and report.get("uuid"):
                live[report["uuid"]] = (None, (str(report.get("content")),))
        return cls(live)


@dataclass(slots=True)
class _Affected:
    """One recipient's route: the releases (with who made them) and the elements they carried."""

    releases: list[tuple[Release, str]] = field(default_factory=list)
    elements: set[str] = field(default_factory=set)

    @property
    def seqs(self) -> list[int]:
        return sorted({release.audit_seq for release, _actor in self.releases})


def retract_releases(
    session: Session,
    *,
    event_uuid: str,
    version: int,
    state: dict[str, Any],
    event_art: int,
    agent: str,
) -> int:
    """Record the retraction of every earlier release that carried an element ``version``
    withdrew or corrected; returns how many recipient routes were affected."""
    if version < 2:
        return 0  # nothing came before
    found = session.execute(
        select(Event.id, EventVersion.changes)
        .join(EventVersion, EventVersion.event_id == Event.id)
        .where(Event.uuid == event_uuid, EventVersion.version == version)
    ).first()
    if found is None or not (found.changes.get("deleted") or found.changes.get("updated")):
        return 0  # only additions (the common case): nothing to compare
    snapshots = _Snapshots(session, found.id)
    now = Elements.of(state)
    before = snapshots.elements(version - 1)
    withdrawn = {u for u in before.live if u not in now.live}
    corrected = {u for u, (_o, fp) in before.live.items() if u in now.live and now.live[u][1] != fp}
    if not (withdrawn or corrected):
        return 0
    groups = _affected(session, event_uuid, version, withdrawn | corrected, snapshots)
    _remember_withdrawals(session, found.id, version, groups, withdrawn)
    records = []
    for (recipient, route), found in sorted(groups.items()):
        _record(
            session,
            recipient=recipient,
            route=route,
            found=found,
            event_uuid=event_uuid,
            version=version,
            kind=("retraction" if found.elements & withdrawn else "correction"),
            event_art=event_art,
            agent=agent,
        )
        records.append(
            audit.Record(
                action="release.retract",
                actor=agent,
                object_ref=f"event:{event_uuid}",
                recipient_uuid=recipient,
                channel=found.releases[0][0].channel,
                details={
                    "version": version,
                    "via": route,
                    "corrects": found.seqs,
                    "withdrawn": sorted(found.elements & withdrawn),
                    "corrected": sorted(found.elements & corrected),
                },
            )
        )
    audit.append(session, records)
    return len(groups)


def remember_withdrawn(
    session: Session, *, event_id: int, event_uuid: str, version: int, state: dict[str, Any]
) -> None:
    """At ingest of a version that withdrew elements: record who had received each, so that
    every channel carries the deletion to them from this version on, and to nobody else.
    (The lineage of the retraction is recorded later by ``retract_releases``.)"""
    if version < 2:
        return
    snapshots = _Snapshots(session, event_id)
    now = Elements.of(state)
    withdrawn = {u for u in snapshots.elements(version - 1).live if u not in now.live}
    if withdrawn:
        groups = _affected(session, event_uuid, version, withdrawn, snapshots)
        _remember_withdrawals(session, event_id, version, groups, withdrawn)


def _remember_withdrawals(
    session: Session,
    event_id: int,
    version: int,
    groups: dict[tuple[str, str], _Affected],
    withdrawn: set[str],
) -> None:
    """Who had received each withdrawn element: its deletion goes to them on every channel
    (``hub.sharing``), and to nobody else."""
    wanted = {
        (recipient, uuid)
        for (recipient, _r), f in groups.items()
        for uuid in f.elements & withdrawn
    }
    if not wanted:
        return
    have = set(
        session.execute(
            select(ElementWithdrawal.recipient_uuid, ElementWithdrawal.element_uuid).where(
                ElementWithdrawal.event_id == event_id
            )
        ).all()
    )
    fresh = [
        {
            "event_id": event_id,
            "element_uuid": uuid,
            "recipient_uuid": recipient,
            "version": version,
        }
        for recipient, uuid in sorted(wanted - have)
    ]
    if fresh:
        session.execute(insert(ElementWithdrawal), fresh)


class _Snapshots:
    """The live elements of earlier versions of one event, each unpacked once."""

    def __init__(self, session: Session, event_id: int) -> None:
        self.session = session
        self.event_id = event_id
        self.cache: dict[int, Elements] = {}

    def elements(self, version: int) -> Elements:
        if version not in self.cache:
            blob = self.session.scalar(
                select(EventVersion.snapshot).where(
                    EventVersion.event_id == self.event_id, EventVersion.version == version
                )
            )
            self.cache[version] = Elements.of(unpack(blob)["event"] if blob else {})
        return self.cache[version]


def _affected(
    session: Session, event_uuid: str, version: int, changed: set[str], snapshots: _Snapshots
) -> dict[tuple[str, str], _Affected]:
    """(recipient, route) → the releases that carried changed elements, and which."""
    release_index.catch_up(session)  # derived in batches; bring it up to date first
    rows = session.execute(
        select(Release, AuditEntry.action, AuditEntry.body)
        .join(AuditEntry, AuditEntry.seq == Release.audit_seq)
        .where(
            Release.event_uuid == event_uuid,
            Release.allowed.is_(True),
            Release.event_version < version,
            Release.channel.not_in(_NOTIFY),
        )
        .order_by(Release.id)
    ).all()
    pushes = dict(
        session.execute(
            select(PushOutboxItem.audit_seq, PushOutboxItem.state).where(
                PushOutboxItem.audit_seq.in_({r.audit_seq for r, _a, _b in rows})
            )
        ).all()
    )
    refusals = _refusals(session, {r.audit_seq for r, _a, _b in rows})
    groups: dict[tuple[str, str], _Affected] = defaultdict(_Affected)
    for release, action, body in rows:
        route = release.channel
        if str(body.get("actor")).startswith(_PUSH_ACTOR):
            if pushes.get(release.audit_seq) != "sent":
                continue  # a push decided but not sent (decided again, superseded, dead)
            route = "misp-push"
        live = snapshots.elements(release.event_version or 0).live
        details = addressing.merged(body.get("details") or {}, refusals.get(release.audit_seq))
        carried = _carried(action, details, live, changed)
        if carried:
            group = groups[(release.recipient_uuid, route)]
            group.releases.append((release, str(body.get("actor") or "hub")))
            group.elements |= carried
    return groups


def _refusals(session: Session, deliveries: set[int]) -> dict[int, dict[str, Any]]:
    """The refusal entry of each delivery that withheld something (appended right after it,
    ``hub.audit.addressing``): delivery seq → its details."""
    if not deliveries:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for body in session.scalars(
        select(AuditEntry.body).where(AuditEntry.seq.in_({s + 1 for s in deliveries}))
    ):
        details = body.get("details") or {}
        if details.get("delivery") in deliveries:
            out[int(details["delivery"])] = details
    return out


def _carried(
    action: str,
    details: dict[str, Any],
    live: dict[str, tuple[str | None, tuple[str, ...]]],
    changed: set[str],
) -> set[str]:
    """The changed elements one delivery carried, read from its audit entry."""
    present = changed & live.keys()
    if "removed" in details:  # a whole event: everything live but what was withheld
        if details.get("removed_count", 0) > len(details["removed"]):
            return present
        withheld = {r[1] for r in details["removed"]}
        return {u for u in present if u not in withheld and live[u][0] not in withheld}
    if "objects" in details:  # a TAXII page: objects are named after their elements
        if details.get("object_count", 0) > len(details["objects"]):
            return present
        named = {str(stix_id).split("--", 1)[-1] for stix_id in details["objects"]}
        return {u for u in present if u in named or live[u][0] in named}  # an object's: whole
    if "attributes" in details:  # an attribute search page
        return present & set(details["attributes"])
    return set()  # an index page lists titles only


def _record(
    session: Session,
    *,
    recipient: str,
    route: str,
    found: _Affected,
    event_uuid: str,
    version: int,
    kind: str,
    event_art: int,
    agent: str,
) -> None:
    """A ``retract`` activity for one recipient and route, using (correcting) the releases'
    artifacts and the new version's artifact that corrects them."""
    act = lineage.activity(
        session,
        kind="retract",
        agent=agent,
        plan=PLAN,
        on_behalf_of=recipient,
        params={
            "event": event_uuid,
            "version": version,
            "kind": kind,
            "via": route,
            "how": _HOW.get(route, "the next delivery gets version {v}").format(v=version),
            "corrects": found.seqs,
            "elements": sorted(found.elements),
        },
    )
    for art in _release_artifacts(session, found.releases, event_uuid):
        lineage.use(session, by=act, artifact_id=art, role="corrected")
    lineage.use(session, by=act, artifact_id=event_art, role="correction")


def _release_artifacts(
    session: Session, releases: Iterable[tuple[Release, str]], event_uuid: str
) -> list[int]:
    """The lineage artifact of each release (made when first needed: a ``deliver`` activity
    at the release's time, by who released it, deriving the release from the event version
    it carried)."""
    out = []
    for release, actor in releases:
        external_id = f"{event_uuid}:{release.audit_seq}"
        version = release.event_version or 0
        found = lineage.find_artifact(
            session, kind="release", external_id=external_id, version=version
        )
        if found is None:
            found = _release_artifact(session, release, actor, event_uuid, external_id)
        out.append(found)
    return sorted(set(out))


def _release_artifact(
    session: Session, release: Release, actor: str, event_uuid: str, external_id: str
) -> int:
    deliver = lineage.activity(
        session,
        kind="deliver",
        agent=actor,
        plan=f"release:{release.channel}",
        on_behalf_of=release.recipient_uuid,
        params={"audit_seq": release.audit_seq, "channel": release.channel},
        at=release.released_at,
    )
    art = lineage.artifact(
        session,
        kind="release",
        external_id=external_id,
        version=release.event_version or 0,
        generated_by=deliver,
        tlp=release.tlp,
    )
    source = lineage.find_artifact(
        session, kind="event", external_id=event_uuid, version=release.event_version or 0
    )
    if source is not None:
        lineage.derive(session, derived=art, sources=[source], rel="derived_from", by=deliver)
    return art
