"""Releasing one whole event: decided by ``tlp.filter_misp_event``, cleaned of everything that
never leaves the hub, recorded with one audit entry.

What never leaves, whatever the label (DESIGN.md §3, "What leaves the hub"): proposals
(``ShadowAttribute``), local tags, local correlations, the source's numeric ids, the creator's
e-mail, the sharing groups' servers, and other organisations' names on sightings (sightings
are rebuilt from the store, anonymised unless they are the recipient's own). Withdrawn
elements go only to the recipients that had received them, as the deletions they are.

The event is decided from its row first: a refused event costs no snapshot, so a refusal
answers as fast as a missing uuid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from connectors.misp import has_content
from hub.auth.principal import Principal
from hub.intel.snapshots import current_state, gc_paused, group_id
from hub.models import Event, Sighting
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import is_tlp_tag, max_label, obligation, record
from hub.sharing.view import Gate, received_withdrawn, summarise
from tlp.misp_read import without_producers

_EVENT_NEVER = (
    "ShadowAttribute",
    "Sighting",
    "RelatedEvent",
    "event_creator_email",
    "Org",
    "deleted",
)
_ELEMENT_NEVER = ("ShadowAttribute", "Sighting", "RelatedAttribute")
_GROUP_KEEP = ("uuid", "name", "description", "releasability")


@dataclass(slots=True)
class EventDelivery:
    """The result of releasing one whole event: what to send (``{"Event": …}``, or None) and
    its record (``audit_seq`` is None while the decision is not recorded, see
    ``decide_event``)."""

    event: dict[str, Any] | None
    decision: tlp.Decision
    removed: tuple[tlp.Removed, ...]
    audit_seq: int | None
    obligation: tlp.Obligation | None = None
    reason: str = ""
    version: int = 0
    timestamp: int = 0
    attribute_count: int = 0


def release_event(
    session: Session,
    *,
    to: Recipient | Principal,
    event: Event,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    include_deleted: bool = False,
    push: bool = False,
    write_answer: bool = False,
) -> EventDelivery:
    """Release one whole event (MISP JSON) to ``to``: decided, filtered, audited."""
    recipient = as_recipient(to)
    delivery = decide_event(
        session,
        to=recipient,
        event=event,
        channel=channel,
        policy=policy,
        include_deleted=include_deleted,
        push=push,
        write_answer=write_answer,
    )
    record_event_release(
        session,
        to=recipient,
        event=event,
        delivery=delivery,
        channel=channel,
        answer="write" if write_answer else None,
    )
    return delivery


def decide_event(
    session: Session,
    *,
    to: Recipient | Principal,
    event: Event,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    include_deleted: bool = False,
    push: bool = False,
    write_answer: bool = False,
) -> EventDelivery:
    """What ``release_event`` would deliver, decided and cleaned, not yet recorded: for a
    delivery that completes later (a push is recorded once the remote accepted it).

    ``include_deleted`` adds the withdrawn elements the recipient had received (all of them
    for the event's creator), marked deleted. ``push``: as a pushing MISP sends it
    (``_as_pushed``); a MISP pulling from the hub downgrades on its own side.
    ``write_answer``: the answer to a write by the event's creator
    (recorded as such).
    """
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy, write_answer=write_answer)
    decision = gate.event(event)
    if not decision.allowed:
        removed = (tlp.Removed("event", event.uuid, decision.reason, decision.sentence),)
        return EventDelivery(
            None, decision, removed, None, reason=decision.reason.value, version=event.version
        )
    creator = event.orgc_uuid == recipient.org_uuid
    with gc_paused():  # 10^5 attribute dicts: the cyclic GC would cost more than the work
        state = current_state(session, event)
        keep: Callable[[str], bool]
        if not include_deleted:
            keep = _never
        elif creator:
            keep = _always
        else:
            keep = received_withdrawn(session, [event.id], recipient.org_uuid)[
                event.id
            ].__contains__
        deleted_by_source = bool(state.get("deleted"))
        _visible(state, keep, creator=creator)
        bare = not has_content(state)  # nothing live at all (not: nothing it may receive)
        filtered = tlp.filter_misp_event(
            {"Event": state},
            recipient.tlp,
            gate.channel,
            policy=policy,
            source_org_uuid=event.orgc_uuid,
            downgrade=False,
            in_place=True,  # the state was just loaded for this delivery alone
        )
    out = filtered.event
    if (
        out is None
        and creator
        and filtered.reason is tlp.Reason.NOTHING_LEFT
        and bare
        and not deleted_by_source
    ):
        out = {"Event": _empty(state, event)}  # a creator sees its own event, even empty
    if out is None:
        return EventDelivery(
            None,
            filtered.decision,
            filtered.removed,
            None,
            reason=filtered.reason.value,
            version=event.version,
        )
    body = out["Event"]
    removed_all = filtered.removed
    if push:
        gone = _as_pushed(body)
        removed_all = (*filtered.removed, *gone)
        if gone and any(r.kind == "event" for r in gone):
            return EventDelivery(
                None,
                filtered.decision,
                removed_all,
                None,
                reason="not-pushed",
                version=event.version,
            )
    _finish(session, body, event, recipient, hide_creator=bool(event.chr) and not creator)
    # The timestamp and count a listing shows this recipient, by the same rule (so a MISP
    # pull that compares the index with what it fetched agrees with itself).
    summary = summarise(session, gate, [event])[0][1]
    if summary is None:  # the rows say nothing may go: fail closed
        removed = (*filtered.removed, tlp.Removed("event", event.uuid, tlp.Reason.NOTHING_LEFT, ""))
        return EventDelivery(
            None, filtered.decision, removed, None, reason="nothing-left", version=event.version
        )
    stamp, count = summary.timestamp, summary.attribute_count
    if push:  # what the push carries after the sender-side cut
        count = sum(1 for a in body.get("Attribute") or [] if not a.get("deleted")) + sum(
            1
            for o in body.get("Object") or []
            if not o.get("deleted")
            for a in o.get("Attribute") or []
            if not a.get("deleted")
        )
    body["timestamp"] = str(stamp)
    body["attribute_count"] = str(count)
    body["published"] = summary.published
    body["publish_timestamp"] = str(summary.publish_timestamp)
    strip = bool(filtered.decision.obligation and filtered.decision.obligation.strip_attribution)
    return EventDelivery(
        out,
        filtered.decision,
        removed_all,
        None,
        obligation([max_label(body)], strip=strip),
        reason=filtered.reason.value,
        version=event.version,
        timestamp=stamp,
        attribute_count=count,
    )


def record_event_release(
    session: Session,
    *,
    to: Recipient | Principal,
    event: Event,
    delivery: EventDelivery,
    channel: tlp.Channel | str | None = None,
    answer: str | None = None,
) -> int:
    """The audit entry (and so the releases row) of a decided delivery; sets its audit_seq.
    ``channel``: the channel it left by, when not the one it was decided for (an answer to
    a write, ``answer="write"``)."""
    recipient = as_recipient(to)
    allowed = delivery.event is not None
    label = delivery.decision.label
    removed = delivery.removed
    delivery.audit_seq = record(
        session,
        recipient,
        action="release" if allowed else "deny",
        channel=channel if channel is not None else delivery.decision.channel,
        object_ref=f"event:{event.uuid}",
        decision="allow" if allowed else "deny",
        details={
            **({"answer": answer} if answer else {}),
            "reason": delivery.reason,
            "policy_version": delivery.decision.policy_version,
            "tlp": label.value if label else None,
            "removed": [[r.kind, r.uuid, r.reason.value] for r in removed[:5000]],
            "removed_count": len(removed),
            "timestamp": delivery.timestamp if allowed else None,
            "releases": [
                [
                    event.uuid,
                    delivery.version,
                    allowed,
                    delivery.reason,
                    label.value if label else None,
                    len(removed),
                ]
            ],
        },
    )
    return delivery.audit_seq


def record_event_page(
    session: Session,
    *,
    to: Recipient | Principal,
    deliveries: list[tuple[Event, EventDelivery]],
    channel: tlp.Channel | str,
    policy_version: str,
) -> int | None:
    """One audit entry for a response that carries several whole events (a search): each
    event's release (or refusal) and what was withheld from it."""
    if not deliveries:
        return None
    recipient = as_recipient(to)
    removed = [[r.kind, r.uuid, r.reason.value] for _e, d in deliveries for r in d.removed]
    seq = record(
        session,
        recipient,
        action="release",
        channel=channel,
        object_ref=None,
        decision="allow" if any(d.event is not None for _e, d in deliveries) else "deny",
        details={
            "policy_version": policy_version,
            "removed": removed[:5000],
            "removed_count": len(removed),
            "releases": [
                [
                    event.uuid,
                    d.version,
                    d.event is not None,
                    d.reason,
                    d.decision.label.value if d.decision.label and d.event is not None else None,
                    len(d.removed),
                ]
                for event, d in deliveries
            ],
        },
    )
    for _e, d in deliveries:
        d.audit_seq = seq
    return seq


_NOT_PUSHED = ("0", "1")


def _as_pushed(body: dict[str, Any]) -> list[tlp.Removed]:
    """The released event as a pushing MISP sends it (Event.php:1125-1238, 4584-4588;
    reference/misp-sync.md §4.2), in place: an event addressed to this community only (or
    the hub) is not pushed at all; elements of their own distribution 0 or 1 are removed (an
    object whole, if any attribute in it is); distribution 2 becomes 1. Returns what went."""
    gone: list[tlp.Removed] = []
    why = "A MISP does not push what is addressed to its own community only."

    def out(kind: str, item: dict[str, Any]) -> bool:
        if str(item.get("distribution", "5")) in _NOT_PUSHED:
            gone.append(tlp.Removed(kind, str(item.get("uuid")), tlp.Reason.NOT_ADDRESSED, why))
            return True
        return False

    if str(body.get("distribution")) in _NOT_PUSHED:
        return [tlp.Removed("event", str(body.get("uuid")), tlp.Reason.NOT_ADDRESSED, why)]
    body["Attribute"] = [a for a in body.get("Attribute") or [] if not out("attribute", a)]
    objects = []
    for obj in body.get("Object") or []:
        if out("object", obj) or any(
            str(a.get("distribution", "5")) in _NOT_PUSHED for a in obj.get("Attribute") or []
        ):
            if not gone or gone[-1].uuid != obj.get("uuid"):
                gone.append(
                    tlp.Removed("object", str(obj.get("uuid")), tlp.Reason.OBJECT_WHOLE, why)
                )
            continue
        objects.append(obj)
    body["Object"] = objects
    if "EventReport" in body:
        body["EventReport"] = [r for r in body["EventReport"] or [] if not out("report", r)]
    for item in (
        body,
        *body["Attribute"],
        *body["Object"],
        *(a for o in body["Object"] for a in o.get("Attribute") or []),
        *(body.get("EventReport") or []),
    ):
        if str(item.get("distribution")) == "2":
            item["distribution"] = "1"
    if not (body["Attribute"] or body["Object"] or body.get("EventReport")):
        gone.append(tlp.Removed("event", str(body.get("uuid")), tlp.Reason.NOTHING_LEFT, why))
    return gone


# --- cleaning ----------------------------------------------------------------------------------


def _never(_uuid: str) -> bool:
    return False


def _always(_uuid: str) -> bool:
    return True


def _visible(
    state: dict[str, Any], keep: Callable[[str], bool], *, creator: bool = False
) -> set[str]:
    """Cut the loaded state down to what may be decided for the recipient, in place: live
    elements, and the deleted ones ``keep`` admits (not, for their creator, those it
    deleted hard: ``purged``); strip what never leaves. Returns the uuids of the deleted
    elements kept."""
    for key in _EVENT_NEVER:
        state.pop(key, None)
    deleted: set[str] = set()

    def element(item: dict[str, Any]) -> bool:
        for key in _ELEMENT_NEVER:
            if key in item:
                del item[key]
        if item.get("deleted"):
            purged = item.pop("purged", False)
            if not keep(item["uuid"]) or (purged and creator):
                return False
            deleted.add(item["uuid"])
        return True

    attributes = state.get("Attribute") or []
    if any(a.get("deleted") or "ShadowAttribute" in a or "Sighting" in a for a in attributes):
        state["Attribute"] = [a for a in attributes if element(a)]
    objects = []
    for obj in state.get("Object") or []:
        if not element(obj):
            continue
        if obj.get("deleted"):  # a deleted object goes (to those who had it) with all of it
            for attr in obj.get("Attribute") or []:
                deleted.add(attr["uuid"])
                attr.pop("purged", None)
                for key in _ELEMENT_NEVER:
                    attr.pop(key, None)
        else:
            obj["Attribute"] = [a for a in obj.get("Attribute") or [] if element(a)]
        objects.append(obj)
    state["Object"] = objects
    if "EventReport" in state:
        state["EventReport"] = [r for r in state["EventReport"] or [] if element(r)]
    return deleted


def _empty(state: dict[str, Any], event: Event) -> dict[str, Any]:
    head = {k: v for k, v in state.items() if k not in ("Attribute", "Object", "EventReport")}
    tags = [
        t
        for t in head.get("Tag") or []
        if isinstance(t, dict) and not is_tlp_tag(t) and not t.get("local")
    ]
    label = tlp.Tlp.from_rank(event.tlp_rank)
    head["Tag"] = [*tags, {"name": label.tag, "local": False}]
    head["Attribute"], head["Object"] = [], []
    return head


def _finish(
    session: Session,
    body: dict[str, Any],
    event: Event,
    recipient: Recipient,
    *,
    hide_creator: bool,
) -> int:
    """Sightings (anonymised), sharing groups (members only, stable ids), producer tags of a
    TLP:EX:CHR event: on the released event, in place. Returns the live attributes it holds."""
    attrs: dict[str, dict[str, Any]] = {}
    count = 0
    for attr in body.get("Attribute") or []:
        attrs[attr["uuid"]] = attr
        count += not attr.get("deleted")
        if "SharingGroup" in attr:
            _group(attr, hide_creator)
    for obj in body.get("Object") or []:
        if "SharingGroup" in obj:
            _group(obj, hide_creator)
        for attr in obj.get("Attribute") or []:
            attrs[attr["uuid"]] = attr
            count += not (attr.get("deleted") or obj.get("deleted"))
            if "SharingGroup" in attr:
                _group(attr, hide_creator)
    for report in body.get("EventReport") or []:
        if "SharingGroup" in report:
            _group(report, hide_creator)
    if "SharingGroup" in body:
        _group(body, hide_creator)
    if hide_creator:  # TLP:EX:CHR: nothing that names the producer
        without_producers(body)
        for attr in attrs.values():
            without_producers(attr)
    for attribute_uuid, sighting in _sightings(session, event, recipient, attrs):
        attrs[attribute_uuid].setdefault("Sighting", []).append(sighting)
    return count


def _org(org: Any) -> dict[str, str] | None:
    if not isinstance(org, dict) or not org.get("uuid"):
        return None
    return {"uuid": str(org["uuid"]), "name": str(org.get("name") or "")}


def _group(element: dict[str, Any], hide_creator: bool) -> None:
    """The sharing group as its members may see it: who is in it (unless that would name a
    TLP:EX:CHR creator), never the source's servers or numbers."""
    group = element.get("SharingGroup")
    if not isinstance(group, dict):
        element.pop("SharingGroup", None)
        return
    clean: dict[str, Any] = {k: group[k] for k in _GROUP_KEEP if k in group}
    gid = group_id(group)
    clean["id"] = gid
    if not hide_creator:
        owner = _org(group.get("Organisation"))
        if owner is not None:
            clean["Organisation"] = owner
        clean["SharingGroupOrg"] = [
            {"Organisation": org}
            for org in (
                _org((e or {}).get("Organisation")) for e in group.get("SharingGroupOrg") or []
            )
            if org is not None
        ]
    element["SharingGroup"] = clean
    element["sharing_group_id"] = gid


def _sightings(
    session: Session, event: Event, recipient: Recipient, attrs: dict[str, dict[str, Any]]
) -> list[tuple[str, dict[str, Any]]]:
    """The sightings on the released attributes: the recipient's own with its organisation,
    everyone else's anonymised (no organisation, no source text)."""
    if not attrs:
        return []
    out = []
    rows = session.execute(
        select(
            Sighting.uuid,
            Sighting.attribute_uuid,
            Sighting.org_uuid,
            Sighting.type,
            Sighting.date_sighting,
            Sighting.doc,
        )
        .where(Sighting.event_id == event.id)
        .order_by(Sighting.id)
    )
    for row in rows:
        if row.attribute_uuid not in attrs:
            continue
        sighting: dict[str, Any] = {
            "uuid": row.uuid,
            "type": str(row.type),
            "date_sighting": str(row.date_sighting),
            "attribute_uuid": row.attribute_uuid,
            "event_uuid": event.uuid,
            "org_id": "0",
        }
        if row.org_uuid == recipient.org_uuid:
            sighting["source"] = str(orjson.loads(row.doc).get("source") or "")
            sighting["Organisation"] = {"uuid": recipient.org_uuid, "name": recipient.name}
        out.append((row.attribute_uuid, sighting))
    return out
