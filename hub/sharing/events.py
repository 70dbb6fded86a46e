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

from sqlalchemy.orm import Session

import tlp
from connectors.misp import has_content
from hub.auth.principal import Principal
from hub.intel.snapshots import current_state, gc_paused
from hub.models import Event
from hub.sharing.event_cleaning import always, empty_event, finish, never, visible
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import max_label, obligation, record
from hub.sharing.view import Gate, received_withdrawn, summarise


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
    # The answer's bytes when it was serialised elsewhere (``hub.sharing.rendered``); then
    # ``event`` is None whatever was decided, and this says whether something went.
    rendered: bytes | None = None
    # What was withheld, as recorded (at most ``MAX_REMOVED_RECORDED`` rows) and how many,
    # when ``removed`` was not sent back from elsewhere (thousands of objects to unpickle).
    removed_rows: list[list[str]] | None = None
    removed_total: int = 0


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
        return refused(event, decision, removed, decision.reason.value)
    creator = event.orgc_uuid == recipient.org_uuid
    filtered, out = _filtered(
        session, event, recipient, gate, policy, include_deleted=include_deleted, creator=creator
    )
    if out is None:
        return refused(event, filtered.decision, filtered.removed, filtered.reason.value)
    body = out["Event"]
    removed_all = filtered.removed
    if push:
        gone = _as_pushed(body)
        removed_all = (*filtered.removed, *gone)
        if gone and any(r.kind == "event" for r in gone):
            return refused(event, filtered.decision, removed_all, "not-pushed")
    finish(session, body, event, recipient, hide_creator=bool(event.chr) and not creator)
    # The timestamp and count a listing shows this recipient, by the same rule (so a MISP
    # pull that compares the index with what it fetched agrees with itself).
    summary = summarise(session, gate, [event])[0][1]
    if summary is None:  # the rows say nothing may go: fail closed
        removed = (*filtered.removed, tlp.Removed("event", event.uuid, tlp.Reason.NOTHING_LEFT, ""))
        return refused(event, filtered.decision, removed, "nothing-left")
    stamp = summary.timestamp
    count = _pushed_count(body) if push else summary.attribute_count
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


def refused(
    event: Event, decision: tlp.Decision, removed: tuple[tlp.Removed, ...], reason: str
) -> EventDelivery:
    """A delivery of nothing, and why (not yet recorded)."""
    return EventDelivery(None, decision, removed, None, reason=reason, version=event.version)


def _filtered(
    session: Session,
    event: Event,
    recipient: Recipient,
    gate: Gate,
    policy: tlp.Policy,
    *,
    include_deleted: bool,
    creator: bool,
) -> tuple[tlp.FilteredEvent, dict[str, Any] | None]:
    """The event's current state cut to what may be decided for the recipient (withdrawn
    elements only for those who had them) and filtered by ``tlp.filter_misp_event``: the
    filter's result and the released ``{"Event": …}`` (None: nothing goes). A creator sees
    its own event even when nothing live is left in it."""
    with gc_paused():  # 10^5 attribute dicts: the cyclic GC would cost more than the work
        state = current_state(session, event)
        return filter_state(
            state,
            withdrawn_kept(
                session, event, recipient, include_deleted=include_deleted, creator=creator
            ),
            recipient,
            gate.channel,
            policy,
            orgc_uuid=event.orgc_uuid,
            tlp_rank=event.tlp_rank,
            creator=creator,
        )


def withdrawn_kept(
    session: Session, event: Event, recipient: Recipient, *, include_deleted: bool, creator: bool
) -> bool | frozenset[str]:
    """Which withdrawn elements go to the recipient, as deletions: none (False), all (True:
    the creator's), or those it had received."""
    if not include_deleted:
        return False
    if creator:
        return True
    return frozenset(received_withdrawn(session, [event.id], recipient.org_uuid)[event.id])


def filter_state(
    state: dict[str, Any],
    kept: bool | frozenset[str],
    recipient: Recipient,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    *,
    orgc_uuid: str,
    tlp_rank: int,
    creator: bool,
) -> tuple[tlp.FilteredEvent, dict[str, Any] | None]:
    """``_filtered`` on a decoded state (taken over: changed in place), with no database
    work, so it can run in another process (``hub.sharing.rendered``)."""
    keep: Callable[[str], bool] = (
        (always if kept else never) if isinstance(kept, bool) else kept.__contains__
    )
    with gc_paused():
        deleted_by_source = bool(state.get("deleted"))
        visible(state, keep, creator=creator)
        bare = not has_content(state)  # nothing live at all (not: nothing it may receive)
        filtered = tlp.filter_misp_event(
            {"Event": state},
            recipient.tlp,
            channel,
            policy=policy,
            source_org_uuid=orgc_uuid,
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
        out = {"Event": empty_event(state, tlp_rank)}  # a creator sees its own event, even empty
    return filtered, out


def _pushed_count(body: dict[str, Any]) -> int:
    """The live attributes a push carries after the sender-side cut (``_as_pushed``)."""
    return sum(1 for a in body.get("Attribute") or [] if not a.get("deleted")) + sum(
        1
        for o in body.get("Object") or []
        if not o.get("deleted")
        for a in o.get("Attribute") or []
        if not a.get("deleted")
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
    allowed = delivery.event is not None or delivery.rendered is not None
    label = delivery.decision.label
    rows, total = removed_record(delivery.removed)
    if delivery.removed_rows is not None:
        rows, total = delivery.removed_rows, delivery.removed_total
    delivery.audit_seq = record(
        session,
        recipient,
        refusal_too=True,  # a refused event answers with an error, which names no entry
        action="release" if allowed else "deny",
        channel=channel if channel is not None else delivery.decision.channel,
        object_ref=f"event:{event.uuid}",
        decision="allow" if allowed else "deny",
        details={
            **({"answer": answer} if answer else {}),
            "reason": delivery.reason,
            "policy_version": delivery.decision.policy_version,
            "tlp": label.value if label else None,
            "removed": rows,
            "removed_count": total,
            "timestamp": delivery.timestamp if allowed else None,
            "releases": [
                [
                    event.uuid,
                    delivery.version,
                    allowed,
                    delivery.reason,
                    label.value if label else None,
                    total,
                ]
            ],
        },
    )
    return delivery.audit_seq


#: An audit entry lists at most this many withheld elements (and counts them all).
MAX_REMOVED_RECORDED = 5000


def removed_record(removed: tuple[tlp.Removed, ...]) -> tuple[list[list[str]], int]:
    """What an audit entry says of withheld elements: the first ``MAX_REMOVED_RECORDED`` as
    [kind, uuid, reason], and how many there were."""
    return [[r.kind, r.uuid, r.reason.value] for r in removed[:MAX_REMOVED_RECORDED]], len(removed)


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
