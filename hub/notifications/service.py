"""DSN pipeline: match event versions to organisations, decide each hop, aggregate into ticketed
notifications, release them to recipients, take feedback, and retract what a source withdrew.

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
from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.auth.principal import Principal
from hub.intel.service import unpack
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
from hub.sharing.service import addressing_of, label_of, recipient_of

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
            hops = [_hop(first, "ncsc", partner.uuid)]
            if route == "direct":
                ref, allowed = partner.uuid, first.allowed
            else:
                ref = constituent_ref(partner, hit.kind, hit.value)
                second = tlp.decide(
                    recipient=tlp.Recipient.constituent(ref, via=partner_recipient(partner)),
                    channel=tlp.Channel.NOTIFY_CONSTITUENT,
                    **ask,
                )
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


# --- 4. release to recipients ------------------------------------------------------------------


@dataclass(slots=True)
class Released:
    """What one caller receives of one notification: only the observations decided for it
    now (and not withdrawn by the source), the text re-rendered from them with the
    notification's own template version, and the label of what is kept."""

    notification: Notification
    body: dict[str, Any]
    corrections: list[NotificationCorrection]
    tlp: str
    template: str


def _obs_key(attribute_uuid: str | None, value: str) -> str:
    return attribute_uuid or f"sector:{value}"


def release(
    session: Session,
    *,
    principal: Principal,
    notes: Sequence[Notification],
    policy: tlp.Policy,
) -> list[Released]:
    """Release notifications to the caller (their recipient, or the partner passing them on).

    Each observation is decided again for the caller as it is now (its status or agreement
    may have changed); observations the source withdrew are left out (the correction note
    stays). The JSON body and the text are rebuilt from what is kept, with the template
    version the notification was made with, under the label of the kept observations. One
    audit entry per delivery lists the tickets and item versions delivered and withheld
    (also when everything is withheld); the lineage records a ``deliver`` activity.
    """
    if not notes:
        return []
    caller = recipient_of(principal)
    channel = tlp.Channel.NOTIFY_PARTNER
    items = session.execute(
        select(NotificationItem.notification_id, Observation, NotificationItem.retracted)
        .join(Observation, Observation.id == NotificationItem.observation_id)
        .where(NotificationItem.notification_id.in_([n.id for n in notes]))
        .order_by(NotificationItem.directive_id)
    ).all()
    by_note: dict[int, list[tuple[Observation, bool]]] = defaultdict(list)
    for note_id, obs, retracted in items:
        by_note[note_id].append((obs, retracted))
    corrections: dict[int, list[NotificationCorrection]] = defaultdict(list)
    for c in session.scalars(
        select(NotificationCorrection)
        .where(NotificationCorrection.notification_id.in_([n.id for n in notes]))
        .order_by(NotificationCorrection.id)
    ):
        corrections[c.notification_id].append(c)
    out: list[Released] = []
    releases: list[list[Any]] = []
    delivered_ids: list[int] = []
    for note in notes:
        # per observation key: allowed only if every observation under it is allowed now;
        # withdrawn if any of them was retracted by the source
        allowed: dict[str, bool] = {}
        withdrawn: set[str] = set()
        rank: dict[str, int] = {}
        versions: dict[str, set[tuple[str, int]]] = defaultdict(set)
        reasons: list[str] = []
        refused: dict[str, str] = {}
        for obs, retracted in by_note[note.id]:
            key = _obs_key(obs.attribute_uuid, obs.value)
            decision = tlp.decide(
                label=label_of(obs.tlp_rank),
                recipient=caller,
                channel=channel,
                addressing=addressing_of(obs.distribution, obs.sg_members),
                source_org_uuid=obs.source_uuid,
                policy=policy,
            )
            allowed[key] = allowed.get(key, True) and decision.allowed
            if not decision.allowed:
                reasons.append(decision.reason.value)
                refused.setdefault(key, decision.reason.value)
            if retracted:
                withdrawn.add(key)
            rank[key] = max(rank.get(key, 0), obs.tlp_rank)
            versions[key].add((obs.event_uuid, obs.event_version))
        permitted = {k for k, ok in allowed.items() if ok}
        kept_keys = permitted - withdrawn
        if not permitted:
            reason = reasons[0] if reasons else "nothing-left"
            every = sorted({v for vs in versions.values() for v in vs})
            releases += [[u, v, False, reason, None, 0] for u, v in every]
            continue
        # the label and handling obligation of what is delivered (a notification whose
        # observations were all withdrawn keeps the label of what the caller may see)
        label = label_of(max(rank[k] for k in (kept_keys or permitted)))
        body = orjson.loads(orjson.dumps(note.body))
        data = body["json"]
        kept = [
            o
            for o in data["observations"]
            if _obs_key(o["attribute_uuid"], o["value"]) in kept_keys
        ]
        removed = len(data["observations"]) - len(kept)
        data["observations"] = kept
        data["tlp"] = label.value
        data["tlp_display"] = label.display
        data["handling"] = label.first_sentence
        body["text"] = templates.render(note.template, data)
        sent = sorted({v for k in kept_keys for v in versions[k]})
        held = {v: k for k in allowed if k not in kept_keys for v in versions[k]}
        releases += [
            [u, v, True, f"notification:{note.ticket}", label.value, removed] for u, v in sent
        ]
        releases += [
            [u, v, False, refused.get(k, "withdrawn"), None, 0]
            for (u, v), k in sorted(held.items())
            if (u, v) not in sent
        ]
        delivered_ids.append(note.id)
        out.append(Released(note, body, corrections[note.id], label.value, note.template))
    seq = audit.append(
        session,
        [
            audit.Record(
                action="notify.release",
                actor=principal.actor,
                object_ref=f"notification:{notes[0].ticket}" if len(notes) == 1 else None,
                recipient_uuid=principal.partner_uuid,
                channel=channel.value,
                decision="allow" if out else "deny",
                request_id=audit.current_request_id(),
                details={
                    "policy_version": policy.version,
                    "tickets": [r.notification.ticket for r in out],
                    "withheld": [n.ticket for n in notes if n.id not in delivered_ids],
                    "templates": {r.notification.ticket: r.template for r in out},
                    "labels": {r.notification.ticket: r.tlp for r in out},
                    "releases": releases,
                },
            )
        ],
    )[0]
    now = utcnow()
    if out:
        deliver = lineage.activity(
            session,
            kind="deliver",
            agent=principal.actor,
            plan=f"tlp-policy@{policy.version}",
            on_behalf_of=principal.partner_uuid,
            params={
                "audit_seq": seq,
                "channel": channel.value,
                "templates": sorted({r.template for r in out}),
            },
        )
        for r in out:
            art = latest_artifact(session, r.notification.ticket)
            if art is not None:
                lineage.use(session, by=deliver, artifact_id=art, role="delivered")
            if r.notification.status == "pending":
                r.notification.status = "sent"
                r.notification.sent_at = now
    session.flush()
    return out


def latest_artifact(session: Session, ticket: str) -> int | None:
    return session.scalar(
        select(LineageArtifact.id)
        .where(LineageArtifact.kind == "notification", LineageArtifact.external_id == ticket)
        .order_by(LineageArtifact.version.desc())
        .limit(1)
    )


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
    if status is not None:
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
                request_id=audit.current_request_id(),
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
                    request_id=audit.current_request_id(),
                    details={"feedback": [f["uuid"] for f in out]},
                )
            ],
        )
    return out


# --- 6. retraction ------------------------------------------------------------------------------


def retract(
    session: Session, *, event: dict[str, Any], event_uuid: str, version: int, event_art: int
) -> int:
    """A new version withdrew (deleted) or changed attributes that went out in notifications:
    find them by their observations, record a retraction or correction on each affected
    notification (and a new version of its lineage artifact), and withdraw pending ones."""
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
                f"The source withdrew {len(gone)} observation(s) of this notification "
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
        act = lineage.activity(
            session,
            kind="retract",
            agent=JOB_AGENT,
            plan="retraction@1",
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
        partner_id = note.recipient_partner_id or note.via_partner_id
        partner = session.get(Partner, partner_id) if partner_id else None
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
