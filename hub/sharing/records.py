"""What every release records, and the handling obligation that travels with it.

A delivery is one response to one recipient over one channel; it gets exactly one audit entry
(a refused event gets one of its own), written in the caller's transaction, which commits
before the response is sent. The ``releases`` index (who received which version) is derived
from these entries (``hub.audit.releases``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

import tlp
from hub.audit import addressing
from hub.audit import service as audit
from hub.context import current_request_id
from hub.sharing.recipients import Recipient


def label_of(rank: int) -> tlp.Tlp:
    """The label of a stored rank (0 CLEAR … 4 RED)."""
    return tlp.Tlp.from_rank(rank)


def addressing_of(distribution: int, sg_members: str | None) -> tlp.Addressing:
    """The addressing of a stored element: its distribution and its sharing group's members
    (stored as a JSON list of organisation uuids)."""
    members = orjson.loads(sg_members) if distribution == 4 and sg_members else None
    return tlp.Addressing.from_misp(distribution, members)


def record(
    session: Any,
    to: Recipient,
    *,
    action: str,
    channel: tlp.Channel | str | None,
    object_ref: str | None,
    decision: str,
    details: dict[str, Any],
    refusal_too: bool = False,
) -> int | None:
    """The audit entry of one delivery (or refusal) to ``to``; returns the sequence number
    of the entry ``to`` may read, the delivery (None when nothing went to it: the refusal is
    the operators' and auditors', ``hub.audit.addressing``, so an answer that delivered
    nothing names no entry, as one that found nothing). A delivery to an exercise key names
    its exercise (``details.exercise``). ``refusal_too``: the refusal's number when nothing
    was delivered (a decision kept with what it decided, e.g. a push outbox item; never an
    answer's header)."""
    if to.exercise_id is not None:
        details = {**details, "exercise": to.exercise_id}
    delivered = addressing.delivered(decision, details)
    seq = audit.append(
        session,
        [
            audit.Record(
                action=action,
                actor=to.actor,
                object_ref=object_ref,
                recipient_uuid=to.org_uuid,
                channel=tlp.Channel(channel).value if channel is not None else None,
                decision=decision,
                request_id=current_request_id(),
                details=details,
            )
        ],
    )[0]
    return seq if delivered or refusal_too else None


def obligation(labels: Iterable[tlp.Tlp], *, strip: bool = False) -> tlp.Obligation:
    """The handling obligation of a delivery: that of its most restrictive label."""
    found = list(labels)
    top = max(found) if found else tlp.Tlp.CLEAR
    return tlp.Obligation(label=top, sentence=top.first_sentence, strip_attribution=strip)


def is_tlp_tag(tag: dict[str, Any]) -> bool:
    name = str(tag.get("name", "")).lower()
    return name.startswith("tlp:") and not name.startswith("tlp:ex:")


def _labels(element: dict[str, Any]) -> list[tlp.Tlp]:
    return [tlp.parse_label(t["name"]) for t in element.get("Tag") or [] if is_tlp_tag(t)]


def max_label(event: dict[str, Any]) -> tlp.Tlp:
    """The most restrictive label in a released event: the handling obligation of the whole."""
    labels = _labels(event)
    for attr in event.get("Attribute") or []:
        labels += _labels(attr)
    for obj in event.get("Object") or []:
        for attr in obj.get("Attribute") or []:
            labels += _labels(attr)
    return max(labels) if labels else tlp.Tlp.AMBER_STRICT


def _labels_within(element: Any) -> list[tlp.Tlp]:
    if not isinstance(element, dict):
        return []
    if isinstance(element.get("Event"), dict):  # {"Event": {...}}
        return _labels_within(element["Event"])
    labels = _labels(element)
    for attr in element.get("Attribute") or []:
        labels += _labels_within(attr)
    for obj in element.get("Object") or []:
        labels += _labels_within(obj)
    return labels


def obligation_of(elements: Iterable[Any]) -> tlp.Obligation:
    """The handling obligation of MISP elements as they go out (events with their attributes
    and objects, or attributes, or objects): that of the strictest TLP tag among them. An
    answer that released nothing carries the obligation of nothing, CLEAR."""
    labels: list[tlp.Tlp] = []
    for element in elements:
        labels += _labels_within(element)
    return obligation(labels)


def headers(obligation: tlp.Obligation, audit_seq: int | None) -> dict[str, str]:
    """The headers of a response that carries shared information: its handling label and
    the audit entry that recorded it (a partner can fetch that entry's inclusion proof)."""
    out = {"X-Hub-TLP": obligation.label.display}
    if audit_seq is not None:
        out["X-Hub-Audit-Seq"] = str(audit_seq)
    return out


def obligation_body(obligation: tlp.Obligation) -> dict[str, Any]:
    return {
        "label": obligation.label.value,
        "handling": obligation.sentence,
        "strip_attribution": obligation.strip_attribution,
    }
