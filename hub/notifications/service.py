"""DSN pipeline, what its steps share. The steps: match event versions to organisations and
decide each hop (``routing``, over ``observations``), aggregate into ticketed notifications
(``tickets``), take feedback and expire what nobody acknowledged (``feedback``), retract what
a source withdrew (``retraction``). Notifications leave only through
`hub.notifications.release` (fetch and e-mail).

Every step flushes only; the job or request that calls it owns the transaction.

Routing: an observation that matches a directly registered target (`TargetEntry`, a partner
registered with its own networks) goes to that partner (one hop, ``notify-partner``);
otherwise it goes through the partner whose constituency matched (NCSC → partner over
``notify-partner``, partner → constituent over ``notify-constituent``). Both hops are decided
by `tlp.decide` and stored on the directive; a denial is audited with its reason.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass

import tlp
from hub.models import (
    Partner,
)
from hub.notifications import templates

JOB_AGENT = "job:notifications"
_CONSTITUENT_NS = uuid_mod.UUID("6c1f0e0a-8f7e-4d8e-9b7a-0c3f5d1e2a40")
FEEDBACK_STATUS = {
    "ack": "acknowledged",
    "resolved": "resolved",
    "false-positive": "false-positive",
    "not-ours": "not-ours",
    "disputed": "disputed",
    "comment": None,
}
# Nobody has answered yet: an acknowledgement moves only these (it never undoes a verdict
# such as resolved or false positive, e.g. when a MISP sighting arrives after it).
UNANSWERED = ("pending", "sent", "expired")
# MISP sighting types that are feedback on a notification that carried the sighted attribute:
# 0 "seen" acknowledges it, 1 says it was a false positive; 2 (expiration) is not feedback.
SIGHTING_FEEDBACK = {0: "ack", 1: "false-positive"}


@dataclass(frozen=True, slots=True)
class Rules:
    """Aggregation knobs: batching interval, repeat suppression, per-recipient rate limit."""

    interval_seconds: int = 300
    suppress_seconds: int = 86_400
    rate_limit: int = 100
    rate_window_seconds: int = 3_600
    template: str = templates.CURRENT


def agent_for(agent: str, exercise: str | None) -> str:
    """The actor a job records under: for an exercise's item, marked with the exercise the
    way an exercise key's actor is (``hub.audit.proofs.exercise_of``), so its audit entries
    are read only in that exercise's scope, never by a real key."""
    return agent if exercise is None else f"{agent} (exercise job, exercise {exercise})"


def partner_recipient(partner: Partner, exercise: str | None = None) -> tlp.Recipient:
    """The partner as a recipient of real traffic, or (``exercise``) of that exercise's."""
    return tlp.Recipient(
        partner.uuid,
        tier=partner.tier,
        status=partner.status,
        tlp_accepted=partner.tlp_accepted_at is not None,
        exercise=exercise,
    )


def constituent_ref(partner_uuid: str, kind: str, value: str) -> str:
    """A stable identity for the constituent a partner's constituency entry stands for."""
    return str(uuid_mod.uuid5(_CONSTITUENT_NS, f"{partner_uuid}|{kind}|{value}"))


# --- 1. observations --------------------------------------------------------------------------


# --- 2. matching and routing -----------------------------------------------------------------


# --- 3. aggregation and tickets -----------------------------------------------------------------


# --- 5. feedback ------------------------------------------------------------------------------


# --- 5b. expiry ---------------------------------------------------------------------------------


# --- 6. retraction ------------------------------------------------------------------------------
