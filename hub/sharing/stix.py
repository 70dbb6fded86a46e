"""``release_stix_objects``: a page of stored STIX objects, decided per object and per reference.

The rows come from a SQL pre-filter (``tlp.audience_for``); here every object is decided again
with its own label and addressing, and so is every class of objects it references: a reference
to what the recipient may not see is removed (STIX object ids can be brute-forced back to
values, reference: tlp-stix-taxii §2.5), and an object that cannot stand without it (a
relationship without an endpoint, an observation without its observable, a container left
empty) is withheld. A reference class with a fifth element (1) is a "substance" class: an
object that has any (an event's container, its event-level galaxies, its creator's identity) is
released only if at least one of them is allowed for the caller, that is if something that came
from an attribute, object or report of the event survives (``hub.taxii.rendering``). The page
gets one audit entry; the ``releases`` index gets a row per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.intel.exercise_marks import EXERCISE_TAG_PREFIX
from hub.intel.stix_shape import CONTAINERS, prune_references
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import addressing_of, label_of, obligation, record

_MAX_LISTED = 1000


@dataclass(slots=True)
class StixPage:
    """What goes out: (row, object bytes) in page order; the labels used; what was withheld."""

    objects: list[tuple[Any, bytes]]
    labels: set[tlp.Tlp]
    obligation: tlp.Obligation
    audit_seq: int | None
    withheld: list[tuple[str, str]] = field(default_factory=list)


class StixDecider:
    """Decides stored ``stix_objects`` rows (``tlp_rank``, ``distribution``, ``sg_members``,
    ``orgc_uuid``, ``refs``, ``doc``, ``stix_id``, ``type``) for one recipient: each object
    and each class of objects it references, each distinct question asked once."""

    def __init__(self, to: Recipient | Principal, channel: tlp.Channel | str, policy: tlp.Policy):
        self.who = as_recipient(to)
        self.channel = tlp.Channel(channel)
        self.policy = policy
        self._recipient = self.who.tlp
        self._cache: dict[tuple[int, int, str | None, str], tlp.Decision] = {}

    def _decide(
        self, rank: int, distribution: int, sg_members: str | None, orgc: str
    ) -> tlp.Decision:
        key = (rank, distribution, sg_members, orgc)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tlp.decide(
                label=label_of(rank),
                recipient=self._recipient,
                channel=self.channel,
                addressing=addressing_of(distribution, sg_members),
                source_org_uuid=orgc,
                policy=self.policy,
            )
        return found

    def __call__(self, row: Any) -> tuple[bytes | None, str]:
        """The object as it goes out (None: withheld) and the reason code. The event itself
        is decided first: its exercise (``event_exercise``), then ``event_rank``,
        ``event_distribution``, ``event_sg_members``."""
        if not tlp.in_scope(row.event_exercise, self._recipient):
            return None, tlp.Reason.OTHER_EXERCISE.value
        event = self._decide(
            row.event_rank, row.event_distribution, row.event_sg_members, row.orgc_uuid
        )
        if not event.allowed:
            return None, event.reason.value
        decision = self._decide(row.tlp_rank, row.distribution, row.sg_members, row.orgc_uuid)
        doc: bytes | None = row.doc
        reason = decision.reason.value
        if not decision.allowed:
            return None, reason
        if row.refs:
            gone: set[str] = set()
            substance: bool | None = None  # None: the object needs none
            for rank, distribution, sg_members, ids, *flag in orjson.loads(row.refs):
                allowed = self._decide(rank, distribution, sg_members, row.orgc_uuid).allowed
                if not allowed:
                    gone.update(ids)
                if flag and flag[0]:
                    substance = bool(substance) or allowed
            if substance is False:
                # The event's container, galaxies, creator: nothing of substance survives.
                return None, tlp.Reason.NOTHING_LEFT.value
            if gone:
                doc, reason = prune_references(row.doc, gone)
        if row.type in CONTAINERS and not _has_substance(row.refs):
            return None, tlp.Reason.NOTHING_LEFT.value  # rendered before substance
        if row.event_exercise is not None and doc is not None:
            doc = exercise_marked(doc, row.event_exercise)
        return doc, reason


def exercise_marked(doc: bytes, exercise_id: str) -> bytes:
    """An exercise item's STIX object as it goes out (``marked``), as stored bytes."""
    return orjson.dumps(marked(orjson.loads(doc), exercise_id))


def marked(obj: dict[str, Any], exercise_id: str) -> dict[str, Any]:
    """An exercise item's STIX object as it goes out: the label ``exercise`` (where STIX
    allows labels) and ``x_cwn_exercise`` naming the exercise, on every object, so no
    consumer can take an inject for real traffic."""
    obj = {**obj, "x_cwn_exercise": exercise_id}
    if obj.get("type") != "marking-definition":
        labels = list(obj.get("labels") or [])
        if "exercise" not in labels:
            obj["labels"] = [*labels, "exercise"]
    return obj


def exercise_of(event: dict[str, Any]) -> str | None:
    """The exercise a released MISP event belongs to, read from its ``cwn:exercise`` tag (the
    hub's namespace: real submissions lose any such tag at ingest)."""
    for tag in event.get("Tag") or []:
        name = str(tag.get("name", "")) if isinstance(tag, dict) else ""
        if name.lower().startswith(EXERCISE_TAG_PREFIX):
            return name.split("=", 1)[1].strip('"') or None
    return None


def bundle_marked(bundle: dict[str, Any], exercise_id: str | None) -> dict[str, Any]:
    """A STIX export of an exercise's event with every object marked (``marked``), as TAXII
    serves them; real traffic unchanged."""
    if exercise_id is None:
        return bundle
    return {**bundle, "objects": [marked(o, exercise_id) for o in bundle.get("objects") or []]}


def record_stix_page(
    session: Session,
    decider: StixDecider,
    *,
    delivered: Sequence[tuple[Any, bytes]],
    withheld: Sequence[tuple[Any, str]],
    what: str,
) -> StixPage:
    """One audit entry for a page of STIX objects (delivered, and withheld with reasons);
    the ``releases`` index gets a row per event."""
    labels = {label_of(row.tlp_rank) for row, _doc in delivered}
    duty = obligation(sorted(labels))
    listed = [(row.stix_id, reason) for row, reason in withheld]
    if not delivered and not withheld:
        return StixPage([], labels, duty, None)
    per_event: dict[str, list[Any]] = {}  # uuid → [version, delivered, withheld, top, reason]
    for row, _doc in delivered:
        entry = per_event.setdefault(row.event_uuid, [row.event_version, 0, 0, None, None])
        entry[0] = max(entry[0], row.event_version)
        entry[1] += 1
        label = label_of(row.tlp_rank)
        entry[3] = label if entry[3] is None else max(entry[3], label)
    for row, reason in withheld:
        entry = per_event.setdefault(row.event_uuid, [row.event_version, 0, 0, None, None])
        entry[0] = max(entry[0], row.event_version)
        entry[2] += 1
        entry[4] = entry[4] or reason
    releases = [
        [uuid, version, n > 0, "stix-objects" if n else reason, top.value if top else None, w]
        for uuid, (version, n, w, top, reason) in per_event.items()
    ]
    seq = record(
        session,
        decider.who,
        action="release.page",
        channel=decider.channel,
        object_ref=what,
        decision="allow" if delivered else "deny",
        details={
            "policy_version": decider.policy.version,
            "objects": [row.stix_id for row, _ in delivered[:_MAX_LISTED]],
            "object_count": len(delivered),
            "withheld": [list(w) for w in listed[:_MAX_LISTED]],
            "withheld_count": len(listed),
            "releases": releases,
        },
    )
    return StixPage(list(delivered), labels, duty, seq, listed)


def _has_substance(refs: bytes | str | None) -> bool:
    """Whether a container's reference classes say what gives it substance (renderings made
    before they did are withheld until rendered again: fail closed)."""
    return bool(refs) and any(len(entry) > 4 for entry in orjson.loads(refs))
