"""``release``: every delivery and every refusal is decided by ``tlp`` and audited, here only.

A delivery is one response to one recipient over one channel (a whole event, or a page of
an index). It gets exactly one audit entry listing the item versions delivered and the
elements withheld with their reason codes; a refused event gets an entry of its own. The
entry is written in the caller's transaction, which commits before the response is sent;
the ``releases`` index (who received which version) is derived from it by the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.intel.service import current_state, gc_paused, live_state
from hub.models import Attribute, Event, EventObject

_RANKED = (tlp.Tlp.CLEAR, tlp.Tlp.GREEN, tlp.Tlp.AMBER, tlp.Tlp.AMBER_STRICT, tlp.Tlp.RED)


def label_of(rank: int) -> tlp.Tlp:
    return _RANKED[rank]


def recipient_of(principal: Principal) -> tlp.Recipient:
    """The TLP recipient a key speaks for: its organisation, as the registry describes it."""
    return tlp.Recipient(
        principal.partner_uuid,
        tier=principal.partner_tier,
        status=principal.partner_status,
        tlp_accepted=principal.tlp_accepted,
    )


def addressing_of(distribution: int, sg_members: str | None) -> tlp.Addressing:
    if distribution == 4:
        return tlp.Addressing.sharing_group(orjson.loads(sg_members) if sg_members else ())
    if distribution in (1, 2, 3):
        return tlp.Addressing(distribution)
    return tlp.Addressing.hub_only()


def _record(
    session: Session,
    principal: Principal,
    *,
    action: str,
    channel: tlp.Channel,
    object_ref: str | None,
    decision: str,
    details: dict[str, Any],
) -> int:
    return audit.append(
        session,
        [
            audit.Record(
                action=action,
                actor=principal.actor,
                object_ref=object_ref,
                recipient_uuid=principal.partner_uuid,
                channel=channel.value,
                decision=decision,
                request_id=audit.current_request_id(),
                details=details,
            )
        ],
    )[0]


@dataclass(slots=True)
class EventDelivery:
    """The result of releasing one whole event: what to send (or None) and its record
    (``audit_seq`` is None while a decision is not recorded yet, see ``decide_event``)."""

    event: dict[str, Any] | None
    decision: tlp.Decision
    removed: tuple[tlp.Removed, ...]
    audit_seq: int | None
    obligation: tlp.Obligation | None = None
    reason: str = ""
    version: int = 0


def release_event(
    session: Session,
    *,
    principal: Principal,
    event: Event,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    include_deleted: bool = False,
) -> EventDelivery:
    """Release one whole event (MISP JSON) to the caller: filtered, downgraded, audited."""
    delivery = decide_event(
        session,
        principal=principal,
        event=event,
        channel=channel,
        policy=policy,
        include_deleted=include_deleted,
    )
    record_event_release(session, principal=principal, event=event, delivery=delivery)
    return delivery


def decide_event(
    session: Session,
    *,
    principal: Principal,
    event: Event,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    include_deleted: bool = False,
) -> EventDelivery:
    """What ``release_event`` would deliver, decided and filtered, not yet recorded: for a
    delivery that completes later (a push is recorded once the remote accepted it)."""
    channel = tlp.Channel(channel)
    with gc_paused():  # 10^5 attribute dicts: the cyclic GC would cost more than the work
        state = current_state(session, event)
        if not include_deleted:
            state = live_state(state)
        filtered = tlp.filter_misp_event(
            {"Event": state},
            recipient_of(principal),
            channel,
            policy=policy,
            source_org_uuid=event.orgc_uuid,
            in_place=True,  # the state was just loaded for this delivery alone
        )
    obligation = None
    if filtered.event is not None:
        strip = bool(
            filtered.decision.obligation and filtered.decision.obligation.strip_attribution
        )
        obligation = _obligation([_max_label(filtered.event["Event"])], strip=strip)
    return EventDelivery(
        filtered.event,
        filtered.decision,
        filtered.removed,
        None,
        obligation,
        reason=filtered.reason.value,
        version=event.version,
    )


def record_event_release(
    session: Session, *, principal: Principal, event: Event, delivery: EventDelivery
) -> int:
    """The audit entry (and so the releases row) of a decided delivery; sets its audit_seq."""
    allowed = delivery.event is not None
    label = delivery.decision.label
    removed = delivery.removed
    delivery.audit_seq = _record(
        session,
        principal,
        action="release" if allowed else "deny",
        channel=tlp.Channel(delivery.decision.channel),
        object_ref=f"event:{event.uuid}",
        decision="allow" if allowed else "deny",
        details={
            "reason": delivery.reason,
            "policy_version": delivery.decision.policy_version,
            "tlp": label.value if label else None,
            "removed": [[r.kind, r.uuid, r.reason.value] for r in removed[:5000]],
            "removed_count": len(removed),
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


def is_tlp_tag(tag: dict[str, Any]) -> bool:
    name = str(tag.get("name", "")).lower()
    return name.startswith("tlp:") and not name.startswith("tlp:ex:")


def _labels(element: dict[str, Any]) -> list[tlp.Tlp]:
    return [tlp.parse_label(t["name"]) for t in element.get("Tag", []) if is_tlp_tag(t)]


def _max_label(event: dict[str, Any]) -> tlp.Tlp:
    """The most restrictive label in what is delivered: the handling obligation of the whole."""
    labels = _labels(event)
    for attr in event.get("Attribute", []):
        labels += _labels(attr)
    for obj in event.get("Object", []):
        for attr in obj.get("Attribute", []):
            labels += _labels(attr)
    return max(labels) if labels else tlp.Tlp.AMBER_STRICT


def _obligation(labels: Sequence[tlp.Tlp], *, strip: bool = False) -> tlp.Obligation:
    top = max(labels) if labels else tlp.Tlp.CLEAR
    return tlp.Obligation(label=top, sentence=top.first_sentence, strip_attribution=strip)


@dataclass(slots=True)
class PageDelivery:
    items: list[Any]
    obligation: tlp.Obligation
    audit_seq: int | None
    withheld: list[tuple[str, str]] = field(default_factory=list)


def _index_verdict(
    event: Event, recipient: tlp.Recipient, channel: tlp.Channel, policy: tlp.Policy
) -> str | None:
    """None when the event may be listed for ``recipient``, else the reason it is withheld."""
    addressing = addressing_of(event.distribution, event.sg_members)
    decision = tlp.decide(
        label=label_of(event.tlp_rank),
        recipient=recipient,
        channel=channel,
        addressing=addressing,
        source_org_uuid=event.orgc_uuid,
        policy=policy,
    )
    if not decision.allowed:
        return decision.reason.value
    if event.orgc_uuid == recipient.org_uuid:
        return None
    # The event's title may go only where some of its content goes: its least restricted
    # element (min_rank, over elements that go wherever the event goes).
    if event.min_rank is None:
        return "nothing-left"
    content = tlp.decide(
        label=label_of(event.min_rank),
        recipient=recipient,
        channel=channel,
        addressing=addressing,
        source_org_uuid=event.orgc_uuid,
        policy=policy,
    )
    return None if content.allowed else "nothing-left"


def release_index(
    session: Session,
    *,
    principal: Principal,
    events: Sequence[Event],
    channel: tlp.Channel | str,
    policy: tlp.Policy,
) -> PageDelivery:
    """Release a page of event summaries: each event decided again (the SQL pre-filter is
    only an optimisation), one audit entry for the page."""
    recipient = recipient_of(principal)
    channel = tlp.Channel(channel)
    delivered: list[Event] = []
    withheld: list[tuple[str, str]] = []
    # A page has few distinct (labels, addressing, source) combinations: decide each once.
    verdicts: dict[tuple[Any, ...], str | None] = {}
    for event in events:
        key = (
            event.tlp_rank,
            event.min_rank,
            event.distribution,
            event.sg_members,
            event.orgc_uuid,
        )
        if key not in verdicts:
            verdicts[key] = _index_verdict(event, recipient, channel, policy)
        refusal = verdicts[key]
        if refusal is None:
            delivered.append(event)
        else:
            withheld.append((event.uuid, refusal))
    obligation = _obligation([label_of(e.tlp_rank) for e in delivered])
    if not delivered and not withheld:
        return PageDelivery([], obligation, None)
    releases = [
        [e.uuid, e.version, True, "listed", label_of(e.tlp_rank).value, 0] for e in delivered
    ]
    releases += [[uuid, None, False, reason, None, 0] for uuid, reason in withheld]
    seq = _record(
        session,
        principal,
        action="release.page",
        channel=channel,
        object_ref=None,
        decision="allow",
        details={"policy_version": policy.version, "releases": releases},
    )
    return PageDelivery(delivered, obligation, seq, withheld)


@dataclass(slots=True)
class _ObjectPlacement:
    tlp_rank: int
    distribution: int
    sg_members: str | None
    deleted: bool
    members: list[Any] = field(default_factory=list)


def _objects_of(session: Session, attrs: Sequence[Any]) -> dict[str, _ObjectPlacement]:
    """The objects the given attributes belong to, with every live attribute of each."""
    uuids = sorted({a.object_uuid for a in attrs if a.object_uuid})
    if not uuids:
        return {}
    placements = {
        row.uuid: _ObjectPlacement(row.tlp_rank, row.distribution, row.sg_members, row.deleted)
        for row in session.execute(
            select(
                EventObject.uuid,
                EventObject.tlp_rank,
                EventObject.distribution,
                EventObject.sg_members,
                EventObject.deleted,
            ).where(EventObject.uuid.in_(uuids))
        )
    }
    for member in session.execute(
        select(
            Attribute.object_uuid, Attribute.tlp_rank, Attribute.distribution, Attribute.sg_members
        ).where(Attribute.object_uuid.in_(uuids), Attribute.deleted.is_(False))
    ):
        if member.object_uuid in placements:
            placements[member.object_uuid].members.append(member)
    return placements


def _attribute_refusal(
    recipient: tlp.Recipient,
    channel: tlp.Channel,
    policy: tlp.Policy,
    event: Any,
    addressing: tlp.Addressing,
    rank: int,
    distribution: int,
    sg_members: str | None,
) -> str | None:
    """None when an element with this label and addressing may go; else the reason code."""
    if distribution != 5:
        addressing = addressing.narrow(addressing_of(distribution, sg_members))
    decision = tlp.decide(
        label=label_of(rank),
        recipient=recipient,
        channel=channel,
        addressing=addressing,
        source_org_uuid=event.orgc_uuid,
        policy=policy,
    )
    return None if decision.allowed else decision.reason.value


def release_attributes(
    session: Session,
    *,
    principal: Principal,
    rows: Sequence[Any],
    channel: tlp.Channel | str,
    policy: tlp.Policy,
) -> PageDelivery:
    """Release a page of attributes (rows of (Attribute, Event)); one audit entry for the page.

    Each attribute is decided with its effective label and its addressing narrowed by its
    event's; what goes out carries its effective TLP tag and no other TLP tag.
    """
    recipient = recipient_of(principal)
    channel = tlp.Channel(channel)
    items: list[dict[str, Any]] = []
    labels: list[tlp.Tlp] = []
    withheld: list[tuple[str, str]] = []
    versions: dict[str, int] = {}
    objects = _objects_of(session, [attr for attr, _ in rows])
    for attr, event in rows:
        event_addressing = addressing_of(event.distribution, event.sg_members)
        reason = None
        if attr.object_uuid is None:
            reason = _attribute_refusal(
                recipient,
                channel,
                policy,
                event,
                event_addressing,
                attr.tlp_rank,
                attr.distribution,
                attr.sg_members,
            )
            label = label_of(attr.tlp_rank)
        else:
            # A MISP object goes or stays whole: its attribute is released only if the object
            # and every live attribute in it may go (DESIGN §3).
            obj = objects.get(attr.object_uuid)
            if obj is None or obj.deleted:
                reason = "object-whole"
                label = label_of(attr.tlp_rank)
            else:
                label = label_of(max(obj.tlp_rank, attr.tlp_rank))
                addressing = event_addressing
                if obj.distribution != 5:
                    addressing = addressing.narrow(addressing_of(obj.distribution, obj.sg_members))
                for member in obj.members:
                    reason = _attribute_refusal(
                        recipient,
                        channel,
                        policy,
                        event,
                        addressing,
                        max(obj.tlp_rank, member.tlp_rank),
                        member.distribution,
                        member.sg_members,
                    )
                    if reason is not None:
                        break
        if reason is not None:
            withheld.append((attr.uuid, reason))
            continue
        doc = orjson.loads(attr.doc)
        doc["Tag"] = [t for t in doc.get("Tag", []) if not is_tlp_tag(t)] + [
            {"name": label.tag, "local": False}
        ]
        doc.pop("SharingGroup", None)
        doc["event_uuid"] = event.uuid
        items.append(doc)
        labels.append(label)
        versions[event.uuid] = event.version
    obligation = _obligation(labels)
    if not items and not withheld:
        return PageDelivery([], obligation, None)
    seq = _record(
        session,
        principal,
        action="release.page",
        channel=channel,
        object_ref=None,
        decision="allow",
        details={
            "policy_version": policy.version,
            "attributes": [a["uuid"] for a in items],
            "withheld": [list(w) for w in withheld],
            "releases": [[u, v, True, "attributes", None, 0] for u, v in versions.items()],
        },
    )
    return PageDelivery(items, obligation, seq, withheld)
