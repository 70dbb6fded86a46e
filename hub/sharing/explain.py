"""Explain a decision: what each channel would release of an item to a partner now, element
by element, and the reason and rule for every element withheld.

Computed by the release core itself (``decide_event``), so the answer is the decision a
delivery would get; nothing is recorded (no audit entry, no release), because nothing leaves.
The question operators get most — "why did partner X not receive this?" — answered without
reading the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

import tlp
from hub.models import Event, Partner
from hub.sharing.events import decide_event
from hub.sharing.recipients import Recipient

# (name, channel, as a pushing MISP sends it)
CHANNELS: tuple[tuple[str, tlp.Channel, bool], ...] = (
    ("rest", tlp.Channel.REST, False),
    ("misp-pull", tlp.Channel.MISP_SYNC, False),
    ("misp-push", tlp.Channel.MISP_SYNC, True),
    ("taxii", tlp.Channel.TAXII, False),
)
MAX_LISTED = 1000  # elements listed per channel; the counts are always whole


@dataclass(slots=True)
class ChannelAnswer:
    channel: str
    released: bool
    reason: str
    rule: str
    label: str | None = None
    elements_released: int = 0
    released_elements: list[dict[str, str]] = field(default_factory=list)
    withheld: list[dict[str, str]] = field(default_factory=list)
    truncated: bool = False


def _elements(body: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for attr in body.get("Attribute") or []:
        out.append({"kind": "attribute", "uuid": attr.get("uuid", "")})
    for obj in body.get("Object") or []:
        out.append({"kind": "object", "uuid": obj.get("uuid", "")})
        for attr in obj.get("Attribute") or []:
            out.append({"kind": "attribute", "uuid": attr.get("uuid", "")})
    for report in body.get("EventReport") or []:
        out.append({"kind": "report", "uuid": report.get("uuid", "")})
    return out


def for_partner(
    session: Session, *, event: Event, partner: Partner, policy: tlp.Policy, actor: str
) -> list[ChannelAnswer]:
    """Each channel's answer for one partner, decided now against the item's current version."""
    recipient = Recipient.of_partner(partner, actor=actor)
    answers = []
    for name, channel, push in CHANNELS:
        delivery = decide_event(
            session, to=recipient, event=event, channel=channel, policy=policy, push=push
        )
        withheld = [
            {"kind": r.kind, "uuid": r.uuid, "reason": r.reason.value, "rule": r.sentence}
            for r in delivery.removed
        ]
        released = _elements(delivery.event["Event"]) if delivery.event else []
        decision = delivery.decision
        rule = decision.sentence
        if delivery.event is None and withheld and withheld[0]["rule"]:
            rule = withheld[0]["rule"]  # the event itself, or the last cut, says why
        answers.append(
            ChannelAnswer(
                channel=name,
                released=delivery.event is not None,
                reason=delivery.reason or decision.reason.value,
                rule=rule,
                label=delivery.obligation.label.value if delivery.obligation is not None else None,
                elements_released=len(released),
                released_elements=released[:MAX_LISTED],
                withheld=withheld[:MAX_LISTED],
                truncated=len(released) > MAX_LISTED or len(withheld) > MAX_LISTED,
            )
        )
    return answers
