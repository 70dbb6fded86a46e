"""Aggregation and tickets: routed observations are grouped per addressee into notifications, each
with a ticket (an opaque reference, see `next_ticket`), after the batching interval."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

import tlp
from hub.lineage import service as lineage
from hub.models import (
    Directive,
    Event,
    EventVersion,
    Notification,
    NotificationItem,
    Observation,
    Partner,
)
from hub.models.base import utcnow
from hub.notifications import templates
from hub.notifications.service import JOB_AGENT, Rules
from hub.sharing.records import label_of

# Crockford's base32: no I, L, O or U, so a reference read aloud or retyped stays the same
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_LENGTH = 8
_DRAWS = 8


def next_ticket(session: Session, *, now: datetime) -> str:
    """``CWN-YYYY-XXXX-XXXX``: a random code (40 bits), drawn again on the rare clash.

    Not a counter: a hub-wide sequence told a recipient how many notifications others got
    between two of its own, and a per-recipient one would still show a gap where one of its
    own is withheld now (DESIGN §3, "What leaves the hub"). The year helps a person filing it.
    """
    for _ in range(_DRAWS):
        code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
        ticket = f"CWN-{now:%Y}-{code[:4]}-{code[4:]}"
        if session.scalar(select(Notification.id).where(Notification.ticket == ticket)) is None:
            return ticket
    raise RuntimeError("no free ticket code after repeated draws")  # 2^40 codes a year


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
        .where(
            Notification.created_at >= now - timedelta(seconds=rules.rate_window_seconds),
            # an exercise's notifications never hold back real ones
            Notification.exercise_id.is_(None),
        )
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
    # a case is one event: an exercise's or real traffic's, never both
    exercise = session.scalar(select(Event.exercise_id).where(Event.uuid == case))
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
                # an exercise's notification never suppresses a real one, nor the reverse
                Notification.exercise_id.is_(None)
                if exercise is None
                else Notification.exercise_id == exercise,
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
        _notify(session, keep, rules=rules, now=now, exercise=exercise)
    return 1


def _notify(
    session: Session,
    rows: Sequence[tuple[Directive, Observation]],
    *,
    rules: Rules,
    now: datetime,
    exercise: str | None = None,
) -> Notification:
    """One notification of ``rows`` (directives of one recipient and route): its body,
    rendered once and hashed, its items, the directives marked notified, its lineage."""
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
    data = _data(rows, ticket=ticket, recipient=name, via=via, label=label)
    if exercise is not None:  # marked as exercise traffic wherever it is shown
        data["exercise"] = exercise
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
        exercise_id=exercise,
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
    _record_lineage(session, rows, ticket=ticket, rules=rules, label=label, digest=digest)
    return note


def _data(
    rows: Sequence[tuple[Directive, Observation]],
    *,
    ticket: str,
    recipient: str,
    via: Partner | None,
    label: tlp.Tlp,
) -> dict[str, Any]:
    """What the notification says (its JSON, and what the template renders)."""
    first = rows[0][0]
    return {
        "ticket": ticket,
        "kind": first.kind,
        "case": first.case_ref,
        "recipient": recipient,
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


def _record_lineage(
    session: Session,
    rows: Sequence[tuple[Directive, Observation]],
    *,
    ticket: str,
    rules: Rules,
    label: tlp.Tlp,
    digest: str,
) -> None:
    """Lineage: notification ← event versions, through the routing decision and the render."""
    first = rows[0][0]
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
