"""A large event released in another process: decided, cleaned and serialised there.

Releasing a 10^5-attribute event is ~0.8 s of Python (decoding the snapshot, the TLP
decision of every element, cleaning, serialising). In a request thread it holds the GIL
against every other request of the API process, whose small answers then wait in turns of
the interpreter's switch interval (goal L1: p99 of a 1-item page 5-10x idle on one worker
while one client downloads the event over and over). Here the request's thread does the
database work only: the event-level decision from the row (a refused event costs nothing
more), the stored snapshot, the withdrawn elements the recipient had, the summary a listing
shows it, the event's sightings; the pool (``hub.intel.offload``, processes at a lower CPU
priority) runs the same decision and cleaning code as ``hub.sharing.events`` on them and
sends back the answer's bytes and what was withheld; the thread records the delivery
(``record_event_release``) and answers the bytes.

The answer is the one ``release_event`` and ``stream_event`` give, byte for byte, and the
audit entry the same (``tests/hub/sharing/test_rendered.py`` compares them). Events below
``HUB_RENDER_OFFLOAD_ATTRIBUTES`` are released in the thread as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.intel import offload, pieces
from hub.intel.snapshots import current_snapshot, gc_paused
from hub.models import Event
from hub.responses import event_bytes
from hub.sharing.event_cleaning import finish_with, sighting_rows
from hub.sharing.events import (
    EventDelivery,
    filter_state,
    record_event_release,
    refused,
    removed_record,
    withdrawn_kept,
)
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import max_label, obligation, obligation_body
from hub.sharing.view import Gate, summarise


def wanted(event: Event, threshold: int) -> bool:
    """Whether ``event`` is large enough to be released in the pool (``threshold``: the
    ``HUB_RENDER_OFFLOAD_ATTRIBUTES`` setting; 0: never)."""
    return bool(threshold) and event.attribute_count >= threshold


def release_rendered(
    session: Session,
    *,
    to: Recipient | Principal,
    event: Event,
    channel: tlp.Channel,
    policy: tlp.Policy,
    include_deleted: bool = False,
    processes: int = 1,
) -> EventDelivery:
    """``release_event`` for an answer as MISP JSON, decided and serialised in the pool:
    recorded the same; its bytes in ``rendered`` (None: nothing goes)."""
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy)
    decision = gate.event(event)
    if not decision.allowed:
        removed = (tlp.Removed("event", event.uuid, decision.reason, decision.sentence),)
        delivery = refused(event, decision, removed, decision.reason.value)
    else:
        creator = event.orgc_uuid == recipient.org_uuid
        summary = summarise(session, gate, [event])[0][1]
        done = offload.run(
            render,
            _Job(
                blob=current_snapshot(session, event),
                kept=withdrawn_kept(
                    session, event, recipient, include_deleted=include_deleted, creator=creator
                ),
                recipient=recipient,
                channel=gate.channel,
                policy=policy,
                event_uuid=event.uuid,
                orgc_uuid=event.orgc_uuid,
                tlp_rank=event.tlp_rank,
                creator=creator,
                hide_creator=bool(event.chr) and not creator,
                sightings=sighting_rows(session, event),
                summary=None
                if summary is None
                else (
                    summary.timestamp,
                    summary.attribute_count,
                    summary.published,
                    summary.publish_timestamp,
                ),
            ),
            processes=processes,
        )
        if done.body is None:
            delivery = refused(event, done.decision, (), done.reason)
        else:
            assert summary is not None
            delivery = EventDelivery(
                None,
                done.decision,
                (),
                None,
                done.obligation,
                reason=done.reason,
                version=event.version,
                timestamp=summary.timestamp,
                attribute_count=summary.attribute_count,
                rendered=done.body,
            )
        delivery.removed_rows, delivery.removed_total = done.removed_rows, done.removed_total
    record_event_release(session, to=recipient, event=event, delivery=delivery, channel=channel)
    return delivery


@dataclass(frozen=True, slots=True)
class _Job:
    """What the pool needs to release the event: nothing of the database."""

    blob: bytes
    kept: bool | frozenset[str]
    recipient: Recipient
    channel: tlp.Channel | str
    policy: tlp.Policy
    event_uuid: str
    orgc_uuid: str
    tlp_rank: int
    creator: bool
    hide_creator: bool
    sightings: list[tuple[Any, ...]]
    summary: tuple[int, int, bool, int] | None


@dataclass(frozen=True, slots=True)
class _Done:
    """The release made in the pool; what was withheld as the audit entry records it (plain
    lists: thousands of ``tlp.Removed`` took ~0.1 s to unpickle, with the GIL held)."""

    body: bytes | None
    decision: tlp.Decision
    removed_rows: list[list[str]]
    removed_total: int
    reason: str
    obligation: tlp.Obligation | None = None

    @classmethod
    def of(
        cls,
        body: bytes | None,
        decision: tlp.Decision,
        removed: tuple[tlp.Removed, ...],
        reason: str,
        handling: tlp.Obligation | None = None,
    ) -> _Done:
        rows, total = removed_record(removed)
        return cls(body, decision, rows, total, reason, handling)


def render(job: _Job) -> _Done:
    """The release of ``job``'s event, as ``decide_event`` and ``stream_event`` make it (in
    the pool; a module-level function, so that it pickles by name)."""
    with gc_paused():
        state = pieces.event_of(job.blob)
        filtered, out = filter_state(
            state,
            job.kept,
            job.recipient,
            job.channel,
            job.policy,
            orgc_uuid=job.orgc_uuid,
            tlp_rank=job.tlp_rank,
            creator=job.creator,
        )
        if out is None:
            return _Done.of(None, filtered.decision, filtered.removed, filtered.reason.value)
        if job.summary is None:  # the rows say nothing may go: fail closed
            gone = tlp.Removed("event", job.event_uuid, tlp.Reason.NOTHING_LEFT, "")
            return _Done.of(None, filtered.decision, (*filtered.removed, gone), "nothing-left")
        body = out["Event"]
        finish_with(
            body,
            job.event_uuid,
            job.recipient,
            hide_creator=job.hide_creator,
            sightings=job.sightings,
        )
        stamp, count, published, publish_timestamp = job.summary
        body["timestamp"] = str(stamp)
        body["attribute_count"] = str(count)
        body["published"] = published
        body["publish_timestamp"] = str(publish_timestamp)
        strip = bool(
            filtered.decision.obligation and filtered.decision.obligation.strip_attribution
        )
        handling = obligation([max_label(body)], strip=strip)
        data = event_bytes(body, after={"tlp": obligation_body(handling)})
    return _Done.of(data, filtered.decision, filtered.removed, filtered.reason.value, handling)
