"""Matching and routing: each new event version is matched against every constituency and routed
to the partner that serves it (directly, or via a partner to its constituent), decided per hop."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.intel import repository
from hub.intel.snapshots import unpack
from hub.lineage import service as lineage
from hub.models import (
    ConstituencyEntry,
    Directive,
    Event,
    EventVersion,
    Exercise,
    ExerciseParticipant,
    ExerciseTarget,
    NotifyMark,
    Observation,
    Partner,
    TargetEntry,
)
from hub.notifications import matching
from hub.notifications.observations import observations_of
from hub.notifications.retraction import retract
from hub.notifications.service import (
    JOB_AGENT,
    agent_for,
    constituent_ref,
    partner_recipient,
)
from hub.sharing.records import addressing_of, label_of
from hub.sharing.view import Gate, summarise


def match_next(session: Session, *, policy: tlp.Policy) -> int:
    """Match the oldest event version not matched yet; returns 1 if there was one."""
    row = session.execute(
        select(EventVersion, Event.uuid, Event.exercise_id)
        .join(Event, Event.id == EventVersion.event_id)
        .outerjoin(NotifyMark, NotifyMark.event_version_id == EventVersion.id)
        .where(NotifyMark.event_version_id.is_(None))
        .order_by(EventVersion.id)
        .limit(1)
    ).first()
    if row is None:
        return 0
    version, event_uuid, exercise_id = row
    partners = None if exercise_id is None else participants_of(session, exercise_id)
    constituencies = exercise_id is None or matches_constituencies(session, exercise_id)
    snapshot = unpack(version.snapshot)
    event = snapshot["event"]
    event_art = lineage.event_version_artifact(session, version, event_uuid)
    match_act = lineage.activity(
        session,
        kind="match",
        agent=JOB_AGENT,
        plan=matching.RULE_VERSION,
        params={"event": event_uuid, "version": version.version},
    )
    lineage.use(session, by=match_act, artifact_id=event_art, role="input")
    agent = agent_for(JOB_AGENT, exercise_id)  # an exercise's entries stay in its scope
    retract(
        session,
        event=event,
        event_uuid=event_uuid,
        version=version.version,
        event_art=event_art,
        agent=agent,
    )
    rows = observations_of(
        event, snapshot["labels"], event_version_id=version.id, version=version.version
    )
    if rows:
        ids = session.scalars(
            insert(Observation).returning(Observation.id, sort_by_parameter_order=True), rows
        ).all()
        for obs_id, r in zip(ids, rows, strict=True):
            r["id"] = obs_id
        _route(
            session,
            rows,
            policy=policy,
            activity_id=match_act,
            event_art=event_art,
            partners=partners,
            exercise=exercise_id,
            constituencies=constituencies,
        )
    session.add(
        NotifyMark(event_version_id=version.id, observations=len(rows), activity_id=match_act)
    )
    session.flush()
    return 1


def participants_of(session: Session, exercise_uuid: str) -> set[int]:
    """The partners an exercise item may be matched for: its participants, never another
    partner (issue #20); the notification is addressed to the participant, and the release
    path gives it only to the participant's keys of that exercise (the notification carries
    the exercise). Which of their entries are matched: ``matches_constituencies``. A closed
    exercise is matched for nobody."""
    return set(
        session.scalars(
            select(ExerciseParticipant.partner_id)
            .join(Exercise, Exercise.id == ExerciseParticipant.exercise_id)
            .where(Exercise.uuid == exercise_uuid, Exercise.status != "closed")
        )
    )


def matches_constituencies(session: Session, exercise_uuid: str) -> bool:
    """Whether an exercise item is matched against the participants' real constituencies
    (the organisations they serve, notified through them): only when the exercise says so
    (``match_real_constituencies``). Otherwise only the participants' own registered targets
    are matched (a direct notification to the participant itself), so no real constituent
    is ever named in an exercise's notification."""
    return bool(
        session.scalar(
            select(Exercise.match_real_constituencies).where(Exercise.uuid == exercise_uuid)
        )
    )


def _route(
    session: Session,
    rows: list[dict[str, Any]],
    *,
    policy: tlp.Policy,
    activity_id: int,
    event_art: int,
    partners: set[int] | None = None,
    exercise: str | None = None,
    constituencies: bool = True,
) -> int:
    """A directive per observation and matching entry (pending, or denied with its reason),
    and the denials in the audit log; returns how many directives. ``partners`` (an
    exercise's participants) limits the entries matched to theirs; ``constituencies`` unset
    (an exercise that does not match real constituencies), only registered targets and the
    exercise's scenario targets are."""
    values = {matching.Value(r["field"], r["value"]) for r in rows}
    targets, served = TargetEntry.__table__, ConstituencyEntry.__table__
    direct = matching.match_values(session, targets, values, partners)  # type: ignore[arg-type]
    via = (
        matching.match_values(session, served, values, partners)  # type: ignore[arg-type]
        if constituencies
        else {}
    )
    scenario = _scenario_targets(session, values, partners, exercise)
    found = (*direct.values(), *via.values(), *scenario.values())
    partner_ids = {h.partner_id for hits in found for h in hits}
    partners = {
        p.id: p for p in session.scalars(select(Partner).where(Partner.id.in_(partner_ids)))
    }
    directives: list[dict[str, Any]] = []
    denials: dict[tuple[str, str, str, str], list[str]] = defaultdict(list)
    for r in rows:
        v = matching.Value(r["field"], r["value"])
        label = label_of(r["tlp_rank"])
        addressing = addressing_of(r["distribution"], r["sg_members"])
        ask: dict[str, Any] = {
            "label": label,
            "addressing": addressing,
            "source_org_uuid": r["source_uuid"],
            "policy": policy,
        }
        hits = [("direct", "target", h) for h in direct.get(v, [])] or [
            *(("via", "constituency", h) for h in via.get(v, [])),
            *(("via", "exercise", h) for h in scenario.get(v, [])),
        ]
        for route, table, hit in hits:
            partner = partners[hit.partner_id]
            ref, allowed, hops = _hops(
                session, r, route, hit, partner_recipient(partner, exercise), ask=ask
            )
            for hop in hops:
                if not hop["allowed"]:
                    key = (partner.uuid, hop["channel"], hop["reason"], hop["to"])
                    denials[key].append(r["attribute_uuid"] or f"sector:{r['value']}")
            directives.append(
                _directive(r, route, table, hit, partner, ref, hops, allowed, policy, activity_id)
            )
    if directives:
        session.execute(insert(Directive), directives)
    if denials:
        agent = agent_for(JOB_AGENT, exercise)
        _record_denials(session, rows[0], denials, policy=policy, agent=agent)
    return len(directives)


def _directive(
    r: dict[str, Any],
    route: str,
    table: str,
    hit: Any,
    partner: Partner,
    ref: str,
    hops: list[dict[str, Any]],
    allowed: bool,
    policy: tlp.Policy,
    activity_id: int,
) -> dict[str, Any]:
    """The directive row of one observation matched to one entry: pending, or denied with
    its hops' reasons."""
    return {
        "observation_id": r["id"],
        "field": r["field"],
        "value": r["value"],
        "entry_table": table,
        "entry_id": hit.entry_id,
        "entry_kind": hit.kind,
        "entry_value": hit.value,
        "rule_version": matching.RULE_VERSION,
        "route": route,
        "recipient_ref": ref,
        "recipient_partner_id": partner.id if route == "direct" else None,
        "via_partner_id": partner.id if route == "via" else None,
        "kind": r["kind"],
        "case_ref": r["event_uuid"],
        "hops": hops,
        "allowed": allowed,
        "policy_version": policy.version,
        "state": "pending" if allowed else "denied",
        "activity_id": activity_id,
    }


def _scenario_targets(
    session: Session,
    values: set[matching.Value],
    partners: set[int] | None,
    exercise: str | None,
) -> dict[matching.Value, list[matching.EntryHit]]:
    """The exercise scenario's fictional constituents of its participants that the values
    match (an exercise item only; real traffic never meets them), notified through the
    participant as a constituency entry would be."""
    if exercise is None or not partners:
        return {}
    table = ExerciseTarget.__table__
    found = select(Exercise.id).where(Exercise.uuid == exercise).scalar_subquery()
    return matching.match_values(
        session,
        table,  # type: ignore[arg-type]
        values,
        partners,
        where=table.c.exercise_id == found,
    )


def _hops(
    session: Session,
    r: dict[str, Any],
    route: str,
    hit: Any,
    addressee: tlp.Recipient,
    *,
    ask: dict[str, Any],
) -> tuple[str, bool, list[dict[str, Any]]]:
    """The recipient's reference, whether the observation may reach it, and each hop's
    decision: hub → partner, and for a constituent partner → constituent as well (an
    observation without an attribute, a sector, goes only where the event's content may)."""
    policy = ask["policy"]
    first = tlp.decide(recipient=addressee, channel=tlp.Channel.NOTIFY_PARTNER, **ask)
    if r["attribute_uuid"] is None:
        first = _with_content(session, first, r["event_uuid"], addressee, policy)
    hops = [_hop(first, "ncsc", addressee.org_uuid)]
    if route == "direct":
        return addressee.org_uuid, first.allowed, hops
    ref = constituent_ref(addressee.org_uuid, hit.kind, hit.value)
    constituent = tlp.Recipient.constituent(ref, via=addressee)
    second = tlp.decide(recipient=constituent, channel=tlp.Channel.NOTIFY_CONSTITUENT, **ask)
    if r["attribute_uuid"] is None:
        second = _with_content(session, second, r["event_uuid"], constituent, policy)
    hops.append(_hop(second, addressee.org_uuid, ref))
    return ref, first.allowed and second.allowed, hops


def _record_denials(
    session: Session,
    row: dict[str, Any],
    denials: dict[tuple[str, str, str, str], list[str]],
    *,
    policy: tlp.Policy,
    agent: str = JOB_AGENT,
) -> None:
    """One ``notify.deny`` audit entry per partner, channel, reason and hop refused."""
    event_uuid, version = row["event_uuid"], row["event_version"]
    audit.append(
        session,
        [
            audit.Record(
                action="notify.deny",
                actor=agent,
                object_ref=f"event:{event_uuid}",
                recipient_uuid=partner_uuid,
                channel=channel,
                decision="deny",
                details={
                    "reason": reason,
                    "to": to,
                    "policy_version": policy.version,
                    "rule_version": matching.RULE_VERSION,
                    "attributes": sorted(set(attrs))[:5000],
                    "releases": [[event_uuid, version, False, reason, None, 0]],
                },
            )
            for (partner_uuid, channel, reason, to), attrs in sorted(denials.items())
        ],
    )


def _with_content(
    session: Session,
    decision: tlp.Decision,
    event_uuid: str,
    recipient: tlp.Recipient,
    policy: tlp.Policy,
) -> tlp.Decision:
    """A sector observation names its event: it goes only where something of the event goes
    (the released view of the event for that hop has an attribute)."""
    if not decision.allowed:
        return decision
    row = session.execute(
        select(*repository.SUMMARY_COLUMNS).where(Event.uuid == event_uuid)
    ).first()
    gate = Gate(recipient, decision.channel, policy)
    summary = summarise(session, gate, [row])[0][1] if row is not None else None
    if summary is not None and summary.attribute_count > 0:
        return decision
    return tlp.Decision(
        allowed=False,
        reason=tlp.Reason.NOTHING_LEFT,
        sentence="Nothing of the event this sector is named in may go there.",
        label=decision.label,
        channel=decision.channel,
        policy_version=decision.policy_version,
    )


def _hop(decision: tlp.Decision, sender: str, to: str) -> dict[str, Any]:
    return {
        "from": sender,
        "to": to,
        "channel": decision.channel.value,
        "allowed": decision.allowed,
        "reason": decision.reason.value,
        "policy_version": decision.policy_version,
    }
