"""DSN pipeline: match event versions to organisations, decide each hop, aggregate into ticketed
notifications, take feedback, expire what nobody acknowledged, and retract what a source
withdrew. Notifications leave only through `hub.notifications.release` (fetch and e-mail).

Every step flushes only; the job or request that calls it owns the transaction.

Routing: an observation that matches a directly registered target (`TargetEntry`, a partner
registered with its own networks) goes to that partner (one hop, ``notify-partner``);
otherwise it goes through the partner whose constituency matched (NCSC → partner over
``notify-partner``, partner → constituent over ``notify-constituent``). Both hops are decided
by `tlp.decide` and stored on the directive; a denial is audited with its reason.
"""

from __future__ import annotations

import hashlib
import uuid as uuid_mod
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.context import current_request_id
from hub.intel import repository, withdrawal
from hub.intel.snapshots import unpack
from hub.jobs import claiming
from hub.lineage import retraction
from hub.lineage import service as lineage
from hub.models import (
    ConstituencyEntry,
    Directive,
    Event,
    EventVersion,
    LineageArtifact,
    Notification,
    NotificationCorrection,
    NotificationFeedback,
    NotificationItem,
    NotifyMark,
    Observation,
    Partner,
    TargetEntry,
    TicketCounter,
)
from hub.models.base import utcnow
from hub.notifications import matching, templates
from hub.notifications.release import latest_artifact
from hub.sharing.records import addressing_of, label_of
from hub.sharing.view import Gate, summarise

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


def partner_recipient(partner: Partner) -> tlp.Recipient:
    return tlp.Recipient(
        partner.uuid,
        tier=partner.tier,
        status=partner.status,
        tlp_accepted=partner.tlp_accepted_at is not None,
    )


def constituent_ref(partner: Partner, kind: str, value: str) -> str:
    """A stable identity for the constituent a partner's constituency entry stands for."""
    return str(uuid_mod.uuid5(_CONSTITUENT_NS, f"{partner.uuid}|{kind}|{value}"))


# --- 1. observations --------------------------------------------------------------------------


def _members(element: dict[str, Any]) -> str | None:
    group = element.get("SharingGroup")
    if not isinstance(group, dict):
        return None
    members = {
        str(o["Organisation"]["uuid"])
        for o in group.get("SharingGroupOrg") or []
        if isinstance(o, dict) and (o.get("Organisation") or {}).get("uuid")
    }
    if (group.get("Organisation") or {}).get("uuid"):
        members.add(str(group["Organisation"]["uuid"]))
    return orjson.dumps(sorted(members)).decode()


def _addressing(*elements: dict[str, Any]) -> tlp.Addressing:
    addressing: tlp.Addressing | None = None
    for element in elements:
        dist = int(element.get("distribution", 5) or 0)
        if dist == 5 and addressing is not None:
            continue
        mine = addressing_of(dist if dist != 5 else 1, _members(element))
        addressing = mine if addressing is None else addressing.narrow(mine)
    assert addressing is not None
    return addressing


def _stored(addressing: tlp.Addressing) -> tuple[int, str | None]:
    members = addressing.members
    return addressing.distribution, (
        orjson.dumps(sorted(members)).decode() if members is not None else None
    )


def observations_of(
    event: dict[str, Any], labels: dict[str, Any], *, event_version_id: int, version: int
) -> list[dict[str, Any]]:
    """Rows for every matchable value in a version's snapshot (deleted elements skipped)."""
    rows: list[dict[str, Any]] = []
    source = (event.get("Orgc") or {}).get("uuid", "")
    event_kind = matching.kind_of(event) or "target"
    ranks = {k: tlp.parse_label(v).rank for k, v in labels["attributes"].items() if v}
    obj_ranks = {k: tlp.parse_label(v).rank for k, v in labels["objects"].items() if v}
    event_rank = tlp.parse_label(labels["event"]).rank

    def add(attr: dict[str, Any], obj: dict[str, Any] | None) -> None:
        if attr.get("deleted") or (obj is not None and obj.get("deleted")):
            return
        values = matching.values_of(str(attr.get("type")), str(attr.get("value", "")))
        if not values:
            return
        rank = ranks.get(attr["uuid"], event_rank)
        chain = [event] + ([obj] if obj else []) + [attr]
        if obj is not None:
            rank = max(rank, obj_ranks.get(obj["uuid"], rank))
        dist, members = _stored(_addressing(*chain))
        kind = matching.kind_of(attr, obj) or event_kind
        for v in values:
            rows.append(
                {
                    "event_version_id": event_version_id,
                    "event_uuid": event["uuid"],
                    "event_version": version,
                    "attribute_uuid": attr["uuid"],
                    "attribute_type": str(attr["type"]),
                    "field": v.field,
                    "value": v.value,
                    "kind": kind,
                    "tlp_rank": rank,
                    "distribution": dist,
                    "sg_members": members,
                    "source_uuid": source,
                }
            )

    for attr in event.get("Attribute", []):
        add(attr, None)
    for obj in event.get("Object", []):
        for attr in obj.get("Attribute", []):
            add(attr, obj)
    dist, members = _stored(_addressing(event))
    for sector in matching.sectors_of(event):
        rows.append(
            {
                "event_version_id": event_version_id,
                "event_uuid": event["uuid"],
                "event_version": version,
                "attribute_uuid": None,
                "attribute_type": "cwn:sector",
                "field": "sector",
                "value": sector,
                "kind": event_kind,
                "tlp_rank": event_rank,
                "distribution": dist,
                "sg_members": members,
                "source_uuid": source,
            }
        )
    return rows


# --- 2. matching and routing -----------------------------------------------------------------


def match_next(session: Session, *, policy: tlp.Policy) -> int:
    """Match the oldest event version not matched yet; returns 1 if there was one."""
    row = session.execute(
        select(EventVersion, Event.uuid)
        .join(Event, Event.id == EventVersion.event_id)
        .outerjoin(NotifyMark, NotifyMark.event_version_id == EventVersion.id)
        .where(NotifyMark.event_version_id.is_(None))
        .order_by(EventVersion.id)
        .limit(1)
    ).first()
    if row is None:
        return 0
    version, event_uuid = row
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
    retract(
        session, event=event, event_uuid=event_uuid, version=version.version, event_art=event_art
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
        _route(session, rows, policy=policy, activity_id=match_act, event_art=event_art)
    session.add(
        NotifyMark(event_version_id=version.id, observations=len(rows), activity_id=match_act)
    )
    session.flush()
    return 1


def _route(
    session: Session,
    rows: list[dict[str, Any]],
    *,
    policy: tlp.Policy,
    activity_id: int,
    event_art: int,
) -> int:
    values = {matching.Value(r["field"], r["value"]) for r in rows}
    direct = matching.match_values(session, TargetEntry.__table__, values)  # type: ignore[arg-type]
    via = matching.match_values(session, ConstituencyEntry.__table__, values)  # type: ignore[arg-type]
    partner_ids = {h.partner_id for hits in (*direct.values(), *via.values()) for h in hits}
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
            ("via", "constituency", h) for h in via.get(v, [])
        ]
        for route, table, hit in hits:
            partner = partners[hit.partner_id]
            first = tlp.decide(
                recipient=partner_recipient(partner), channel=tlp.Channel.NOTIFY_PARTNER, **ask
            )
            if r["attribute_uuid"] is None:
                first = _with_content(
                    session, first, r["event_uuid"], partner_recipient(partner), policy
                )
            hops = [_hop(first, "ncsc", partner.uuid)]
            if route == "direct":
                ref, allowed = partner.uuid, first.allowed
            else:
                ref = constituent_ref(partner, hit.kind, hit.value)
                constituent = tlp.Recipient.constituent(ref, via=partner_recipient(partner))
                second = tlp.decide(
                    recipient=constituent, channel=tlp.Channel.NOTIFY_CONSTITUENT, **ask
                )
                if r["attribute_uuid"] is None:
                    second = _with_content(session, second, r["event_uuid"], constituent, policy)
                hops.append(_hop(second, partner.uuid, ref))
                allowed = first.allowed and second.allowed
            for hop in hops:
                if not hop["allowed"]:
                    key = (partner.uuid, hop["channel"], hop["reason"], hop["to"])
                    denials[key].append(r["attribute_uuid"] or f"sector:{r['value']}")
            directives.append(
                {
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
            )
    if directives:
        session.execute(insert(Directive), directives)
    if denials:
        event_uuid, version = rows[0]["event_uuid"], rows[0]["event_version"]
        audit.append(
            session,
            [
                audit.Record(
                    action="notify.deny",
                    actor=JOB_AGENT,
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
    return len(directives)


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


# --- 3. aggregation and tickets -----------------------------------------------------------------


def next_ticket(session: Session, *, now: datetime) -> str:
    """``CWN-YYYYMMDD-NNNNNNNN``: a per-day counter row, incremented under the row lock."""
    day = now.strftime("%Y%m%d")
    dialect = session.get_bind().dialect.name
    ins = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = ins(TicketCounter).values(day=day, last=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[TicketCounter.day], set_={"last": TicketCounter.last + 1}
    ).returning(TicketCounter.last)
    number = int(session.execute(stmt).scalar_one())
    return f"CWN-{day}-{number:08d}"


_GROUP = (
    Directive.route,
    Directive.recipient_ref,
    Directive.recipient_partner_id,
    Directive.via_partner_id,
    Directive.kind,
    Directive.case_ref,
)


def aggregate_next(session: Session, *, rules: Rules, now: datetime | None = None) -> int:
    """Turn one due group of pending directives into one notification; 1 if a group was due.

    A group (recipient, kind, case) is due when its oldest directive is ``interval`` old.
    Recipients at their rate limit wait; values already notified to the same recipient for
    the same kind within the suppression window are suppressed.
    """
    now = now or utcnow()
    limited = (
        select(Notification.recipient_ref)
        .where(Notification.created_at >= now - timedelta(seconds=rules.rate_window_seconds))
        .group_by(Notification.recipient_ref)
        .having(func.count() >= rules.rate_limit)
    )
    group = session.execute(
        select(*_GROUP)
        .where(Directive.state == "pending", Directive.recipient_ref.not_in(limited))
        .group_by(*_GROUP)
        .having(func.min(Directive.created_at) <= now - timedelta(seconds=rules.interval_seconds))
        .order_by(func.min(Directive.id))
        .limit(1)
    ).first()
    if group is None:
        return 0
    route, ref, recipient_id, via_id, kind, case = group
    conditions = [
        Directive.state == "pending",
        Directive.route == route,
        Directive.recipient_ref == ref,
        Directive.kind == kind,
        Directive.case_ref == case,
    ]
    rows = session.execute(
        select(Directive, Observation)
        .join(Observation, Observation.id == Directive.observation_id)
        .where(*conditions)
        .order_by(Directive.id)
    ).all()
    recent = set(
        session.execute(
            select(Directive.field, Directive.value)
            .join(Notification, Notification.id == Directive.notification_id)
            .where(
                Directive.recipient_ref == ref,
                Directive.kind == kind,
                Directive.state == "notified",
                Notification.created_at >= now - timedelta(seconds=rules.suppress_seconds),
            )
        )
    )
    keep, suppressed = [], []
    for d, o in rows:
        if (d.field, d.value) in recent:
            suppressed.append(d.id)
        else:
            recent.add((d.field, d.value))
            keep.append((d, o))
    if suppressed:
        session.execute(
            update(Directive).where(Directive.id.in_(suppressed)).values(state="suppressed")
        )
    if keep:
        _notify(session, keep, rules=rules, now=now)
    return 1


def _notify(
    session: Session,
    rows: Sequence[tuple[Directive, Observation]],
    *,
    rules: Rules,
    now: datetime,
) -> Notification:
    first = rows[0][0]
    via = session.get(Partner, first.via_partner_id) if first.via_partner_id else None
    direct = (
        session.get(Partner, first.recipient_partner_id) if first.recipient_partner_id else None
    )
    if direct is not None:
        name = direct.name
    else:
        assert via is not None
        name = f"constituent of {via.name} ({first.entry_value})"
    label = label_of(max(o.tlp_rank for _, o in rows))
    ticket = next_ticket(session, now=now)
    data = {
        "ticket": ticket,
        "kind": first.kind,
        "case": first.case_ref,
        "recipient": name,
        "route": first.route,
        "via": via.name if via is not None else None,
        "tlp": label.value,
        "tlp_display": label.display,
        "handling": label.first_sentence,
        "source": "via hub",
        "observations": [
            {
                "attribute_uuid": o.attribute_uuid,
                "type": o.attribute_type,
                "field": o.field,
                "value": o.value,
                "matched": d.entry_value,
            }
            for d, o in rows
        ],
    }
    body = {"json": data, "text": templates.render(rules.template, data)}
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()
    note = Notification(
        ticket=ticket,
        route=first.route,
        recipient_ref=first.recipient_ref,
        recipient_name=name,
        recipient_partner_id=first.recipient_partner_id,
        via_partner_id=first.via_partner_id,
        kind=first.kind,
        case_ref=first.case_ref,
        tlp=label.value,
        status="pending",
        template=rules.template,
        body=body,
        body_sha256=digest,
        created_at=now,
    )
    session.add(note)
    session.flush()
    session.execute(
        insert(NotificationItem),
        [
            {"notification_id": note.id, "directive_id": d.id, "observation_id": o.id}
            for d, o in rows
        ],
    )
    session.execute(
        update(Directive)
        .where(Directive.id.in_([d.id for d, _ in rows]))
        .values(state="notified", notification_id=note.id)
    )
    # lineage: notification ← event versions, through the routing decision and the render
    versions = {(o.event_uuid, o.event_version, o.event_version_id) for _, o in rows}
    sources = []
    for event_uuid, _number, version_id in sorted(versions):
        version = session.get(EventVersion, version_id)
        assert version is not None
        sources.append(lineage.event_version_artifact(session, version, event_uuid))
    decide_act = lineage.activity(
        session,
        kind="decide",
        agent=JOB_AGENT,
        plan=f"tlp-policy@{first.policy_version}",
        params={"ticket": ticket, "hops": first.hops},
    )
    for s in sources:
        lineage.use(session, by=decide_act, artifact_id=s, role="decided")
    render_act = lineage.activity(
        session,
        kind="render",
        agent=JOB_AGENT,
        plan=f"template:{rules.template}",
        params={"ticket": ticket, "rule_versions": sorted({d.rule_version for d, _ in rows})},
    )
    art = lineage.artifact(
        session,
        kind="notification",
        external_id=ticket,
        version=1,
        generated_by=render_act,
        tlp=label.value,
        content_sha256=digest,
    )
    lineage.derive(session, derived=art, sources=sources, rel="derived_from", by=render_act)
    return note


# --- 5. feedback ------------------------------------------------------------------------------


def feedback(
    session: Session,
    *,
    principal: Principal,
    note: Notification,
    kind: str,
    text: str | None,
    allow_attribution: bool,
) -> NotificationFeedback:
    """Record feedback on a notification; it goes to the item's source anonymised ("via hub")
    unless the sender allows attribution."""
    event = session.scalar(select(Event).where(Event.uuid == note.case_ref))
    row = NotificationFeedback(
        notification_id=note.id,
        from_partner_id=principal.partner_id,
        source_partner_id=event.source_partner_id if event is not None else None,
        case_ref=note.case_ref,
        kind=kind,
        text=text,
        forward="attributed" if allow_attribution else "anonymised",
    )
    session.add(row)
    status = FEEDBACK_STATUS[kind]
    if status is not None and (kind != "ack" or note.status in UNANSWERED):
        note.status = status
    session.flush()
    act = lineage.activity(
        session,
        kind="feedback",
        agent=principal.actor,
        plan=f"feedback:{kind}",
        on_behalf_of=principal.partner_uuid,
        params={"ticket": note.ticket, "forward": row.forward},
    )
    art = lineage.artifact(
        session, kind="feedback", external_id=row.uuid, version=1, generated_by=act
    )
    source = latest_artifact(session, note.ticket)
    if source is not None:
        lineage.derive(session, derived=art, sources=[source], rel="derived_from", by=act)
    audit.append(
        session,
        [
            audit.Record(
                action="notify.feedback",
                actor=principal.actor,
                object_ref=f"notification:{note.ticket}",
                recipient_uuid=principal.partner_uuid,
                request_id=current_request_id(),
                details={"kind": kind, "feedback": row.uuid, "forward": row.forward},
            )
        ],
    )
    return row


def feedback_for_source(
    session: Session, *, principal: Principal, limit: int, after: int | None
) -> list[dict[str, Any]]:
    """Feedback on the caller's own items, anonymised unless its sender allowed attribution;
    the release to the source is audited."""
    stmt = (
        select(NotificationFeedback, Partner.uuid, Partner.name)
        .join(Partner, Partner.id == NotificationFeedback.from_partner_id)
        .where(NotificationFeedback.source_partner_id == principal.partner_id)
        .order_by(NotificationFeedback.id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(NotificationFeedback.id > after)
    out = []
    for fb, org_uuid, org_name in session.execute(stmt):
        attributed = fb.forward == "attributed"
        out.append(
            {
                "id": fb.id,
                "uuid": fb.uuid,
                "event_uuid": fb.case_ref,
                "kind": fb.kind,
                "text": fb.text,
                "received_at": fb.received_at.isoformat(),
                "from": {"uuid": org_uuid, "name": org_name} if attributed else "via hub",
            }
        )
    if out:
        audit.append(
            session,
            [
                audit.Record(
                    action="feedback.release",
                    actor=principal.actor,
                    recipient_uuid=principal.partner_uuid,
                    channel=tlp.Channel.REST.value,
                    decision="allow",
                    request_id=current_request_id(),
                    details={"feedback": [f["uuid"] for f in out]},
                )
            ],
        )
    return out


def sightings_feedback(
    session: Session, *, principal: Principal, sightings: Sequence[tuple[str, int]]
) -> int:
    """MISP sightings (attribute uuid, type) a partner added, as feedback on the delivered
    notifications that carried those attributes to it or, through it, to its constituents:
    one feedback per notification, a false positive if any sighting said so. Forwarded to
    the source anonymised (a MISP sighting carries no consent to attribution)."""
    kinds: dict[str, str] = {}
    for attribute_uuid, sighting_type in sightings:
        kind = SIGHTING_FEEDBACK.get(sighting_type)
        if kind is not None and kinds.get(attribute_uuid) != "false-positive":
            kinds[attribute_uuid] = kind
    if not kinds:
        return 0
    rows = session.execute(
        select(Notification, Observation.attribute_uuid)
        .join(NotificationItem, NotificationItem.notification_id == Notification.id)
        .join(Observation, Observation.id == NotificationItem.observation_id)
        .where(
            Observation.attribute_uuid.in_(sorted(kinds)),
            Notification.sent_at.is_not(None),
            or_(
                Notification.recipient_partner_id == principal.partner_id,
                Notification.via_partner_id == principal.partner_id,
            ),
        )
        .order_by(Notification.id)
    ).all()
    per_note: dict[int, tuple[Notification, set[str]]] = {}
    for note, attribute_uuid in rows:
        per_note.setdefault(note.id, (note, set()))[1].add(attribute_uuid)
    for note, attributes in per_note.values():
        found = {kinds[a] for a in attributes}
        feedback(
            session,
            principal=principal,
            note=note,
            kind="false-positive" if "false-positive" in found else "ack",
            text="MISP sighting on " + ", ".join(sorted(attributes)),
            allow_attribution=False,
        )
    return len(per_note)


# --- 5b. expiry ---------------------------------------------------------------------------------


def expire_due(
    session: Session, *, days: int, now: datetime | None = None, limit: int = 100
) -> int:
    """Notifications nobody acknowledged within ``days`` of being made go to ``expired``:
    each recorded in the audit log and as a lineage ``expire`` activity on the notification.
    They stay readable by their recipient. Returns how many expired (at most ``limit``)."""
    now = now or utcnow()
    notes = list(
        session.scalars(
            claiming(
                select(Notification)
                .where(
                    Notification.status.in_(("pending", "sent")),
                    Notification.created_at <= now - timedelta(days=days),
                )
                .order_by(Notification.id)
                .limit(limit)
            )
        )
    )
    if not notes:
        return 0
    partner_ids = {n.recipient_partner_id or n.via_partner_id for n in notes}
    uuids = dict(
        session.execute(select(Partner.id, Partner.uuid).where(Partner.id.in_(partner_ids))).all()
    )
    records = []
    for note in notes:
        records.append(
            audit.Record(
                action="notify.expire",
                actor=JOB_AGENT,
                object_ref=f"notification:{note.ticket}",
                recipient_uuid=uuids.get(note.recipient_partner_id or note.via_partner_id),
                details={"was": note.status, "after_days": days},
            )
        )
        note.status = "expired"
        act = lineage.activity(
            session,
            kind="expire",
            agent=JOB_AGENT,
            plan=f"expire-after:{days}d",
            params={"ticket": note.ticket},
        )
        art = latest_artifact(session, note.ticket)
        if art is not None:
            lineage.use(session, by=act, artifact_id=art, role="expired")
    audit.append(session, records)
    session.flush()
    return len(notes)


# --- 6. retraction ------------------------------------------------------------------------------


def retract(
    session: Session, *, event: dict[str, Any], event_uuid: str, version: int, event_art: int
) -> int:
    """A new version withdrew (deleted, marked false positive) or changed attributes: record
    the retraction of every earlier release that carried them (``hub.lineage.retraction``);
    for notifications, find them by their observations, record a retraction or correction
    on each affected notification (and a new version of its lineage artifact), and withdraw
    pending ones."""
    retraction.retract_releases(
        session,
        event_uuid=event_uuid,
        version=version,
        state=event,
        event_art=event_art,
        agent=JOB_AGENT,
    )
    current: dict[str, tuple[bool, str]] = {}
    for attr in event.get("Attribute", []):
        current[attr["uuid"]] = (bool(attr.get("deleted")), str(attr.get("value")))
    for obj in event.get("Object", []):
        for attr in obj.get("Attribute", []):
            gone = bool(attr.get("deleted") or obj.get("deleted"))
            current[attr["uuid"]] = (gone, str(attr.get("value")))
    rows = session.execute(
        select(Directive, Observation)
        .join(Observation, Observation.id == Directive.observation_id)
        .where(
            Observation.event_uuid == event_uuid,
            Observation.event_version < version,
            Observation.attribute_uuid.is_not(None),
            Directive.state.in_(("pending", "notified")),
        )
    ).all()
    affected: dict[int, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    withdrawn = []
    for d, o in rows:
        assert o.attribute_uuid is not None
        state = current.get(o.attribute_uuid)
        deleted = state is None or state[0]
        changed = False
        if not deleted:
            assert state is not None
            new_values = {v.value for v in matching.values_of(o.attribute_type, state[1])}
            changed = o.value not in new_values
        if not (deleted or changed):
            continue
        if d.state == "pending":
            withdrawn.append(d.id)
        elif d.notification_id is not None:
            affected[d.notification_id]["retraction" if deleted else "correction"].append(
                o.attribute_uuid
            )
    if withdrawn:
        session.execute(
            update(Directive).where(Directive.id.in_(withdrawn)).values(state="withdrawn")
        )
    if not affected:
        return 0
    notes = session.scalars(select(Notification).where(Notification.id.in_(affected))).all()
    who = _withdrawn_by(session, event_uuid, version)
    records = []
    for note in notes:
        kinds = affected[note.id]
        gone = sorted(set(kinds.get("retraction", [])))
        fixed = sorted(set(kinds.get("correction", [])))
        retracted_uuids = gone + fixed
        session.execute(
            update(NotificationItem)
            .where(
                NotificationItem.notification_id == note.id,
                NotificationItem.observation_id.in_(
                    select(Observation.id).where(Observation.attribute_uuid.in_(retracted_uuids))
                ),
            )
            .values(retracted=True)
        )
        parts = []
        if gone:
            parts.append(
                f"{who} withdrew {len(gone)} observation(s) of this notification "
                f"(version {version}): " + ", ".join(gone)
            )
        if fixed:
            parts.append(
                f"The source corrected {len(fixed)} observation(s) (version {version}): "
                + ", ".join(fixed)
            )
        message = " ".join(parts)
        kind = "retraction" if gone else "correction"
        session.add(
            NotificationCorrection(
                notification_id=note.id,
                kind=kind,
                attribute_uuids=retracted_uuids,
                event_version=version,
                message=message,
            )
        )
        note.correction = message
        left = session.scalar(
            select(func.count()).where(
                NotificationItem.notification_id == note.id, NotificationItem.retracted.is_(False)
            )
        )
        if not left:
            note.status = "retracted"
        partner_id = note.recipient_partner_id or note.via_partner_id
        partner = session.get(Partner, partner_id) if partner_id else None
        act = lineage.activity(
            session,
            kind="retract",
            agent=JOB_AGENT,
            plan=retraction.PLAN,
            on_behalf_of=partner.uuid if partner else None,
            params={"ticket": note.ticket, "attributes": retracted_uuids, "kind": kind},
        )
        old = latest_artifact(session, note.ticket)
        old_version = session.scalar(
            select(func.max(LineageArtifact.version)).where(
                LineageArtifact.kind == "notification",
                LineageArtifact.external_id == note.ticket,
            )
        )
        art = lineage.artifact(
            session,
            kind="notification",
            external_id=note.ticket,
            version=(old_version or 1) + 1,
            generated_by=act,
            tlp=note.tlp,
        )
        if old is not None:
            lineage.derive(session, derived=art, sources=[old], rel="revision_of", by=act)
        lineage.derive(session, derived=art, sources=[event_art], rel="derived_from", by=act)
        records.append(
            audit.Record(
                action="notify.retract",
                actor=JOB_AGENT,
                object_ref=f"notification:{note.ticket}",
                recipient_uuid=partner.uuid if partner else None,
                channel=tlp.Channel.NOTIFY_PARTNER.value,
                details={"kind": kind, "attributes": retracted_uuids, "event_version": version},
            )
        )
    audit.append(session, records)
    session.flush()
    return len(notes)


def _withdrawn_by(session: Session, event_uuid: str, version: int) -> str:
    """Who withdrew, for the message: the source, or the hub (a verdict, a deletion)."""
    channel = session.scalar(
        select(EventVersion.channel)
        .join(Event, Event.id == EventVersion.event_id)
        .where(Event.uuid == event_uuid, EventVersion.version == version)
    )
    if channel == withdrawal.VERDICT_CHANNEL:
        return "The hub, finding them false positives,"
    if channel == withdrawal.DELETE_CHANNEL:
        return "The hub, deleting the event,"
    return "The source"
