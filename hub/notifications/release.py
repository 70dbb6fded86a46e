"""Releasing notifications: every fetch (REST) and every send (e-mail) of a notification is
decided here by ``tlp`` and audited, whatever the medium.

A release has two steps so that a medium that can fail after the decision (SMTP) records
only what really went out: `decide` reads and decides, writing nothing; `record` writes the
audit entry (allowed or refused), the lineage activity and the status. `release` does both,
for a fetch.

Each observation is decided again for the addressee as it is now (its status, tier or
agreement may have changed since routing). For a notification the addressee passes on to a
constituent (route ``via``), both hops are decided again: NCSC → partner
(``notify-partner``) and partner → constituent (``notify-constituent``); what either hop
refuses is removed and recorded with its hop and reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.intel import repository
from hub.lineage import service as lineage
from hub.models import (
    Attribute,
    Event,
    LineageArtifact,
    Notification,
    NotificationCorrection,
    NotificationItem,
    Observation,
)
from hub.models.base import utcnow
from hub.notifications import templates
from hub.sharing.attribute_pages import objects_of
from hub.sharing.records import addressing_of, label_of
from hub.sharing.view import Gate, own_addressing, summarise

CHANNEL = tlp.Channel.NOTIFY_PARTNER


@dataclass(slots=True)
class Released:
    """What one addressee receives of one notification: only the observations decided for it
    now (and not withdrawn by the source), the text re-rendered from them with the
    notification's own template version, and the label of what is kept."""

    notification: Notification
    body: dict[str, Any]
    corrections: list[NotificationCorrection]
    tlp: str
    template: str


@dataclass(slots=True)
class Verdict:
    """The decision on a set of notifications for one addressee, not yet recorded."""

    recipient: tlp.Recipient
    notes: Sequence[Notification]
    policy_version: str
    released: list[Released] = field(default_factory=list)
    releases: list[list[Any]] = field(default_factory=list)  # the audit's release rows
    removed: dict[str, list[list[str]]] = field(default_factory=dict)  # ticket → [key, hop, why]


@dataclass(slots=True)
class _Kept:
    """Per observation key of one notification: allowed only if every observation under it is
    allowed now; withdrawn if any of them was retracted by the source."""

    allowed: dict[str, bool] = field(default_factory=dict)
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (hop, reason)
    withdrawn: set[str] = field(default_factory=set)
    rank: dict[str, int] = field(default_factory=dict)
    versions: dict[str, set[tuple[str, int]]] = field(default_factory=lambda: defaultdict(set))


def obs_key(attribute_uuid: str | None, value: str) -> str:
    return attribute_uuid or f"sector:{value}"


def latest_artifact(session: Session, ticket: str) -> int | None:
    """The newest lineage artifact of a ticket (a correction makes a new version)."""
    return session.scalar(
        select(LineageArtifact.id)
        .where(LineageArtifact.kind == "notification", LineageArtifact.external_id == ticket)
        .order_by(LineageArtifact.version.desc())
        .limit(1)
    )


@dataclass(frozen=True, slots=True)
class _Now:
    """What an observation's element is now: its label and addressing in the current version
    (for a sector observation, the event's), and the event row."""

    rank: int
    addressing: tlp.Addressing
    event: Any
    # an object's attribute: the addressings of every attribute in the object (it goes whole)
    members: tuple[tlp.Addressing, ...] = ()


def _current(session: Session, observations: Sequence[Observation]) -> dict[int, _Now | None]:
    """Per observation, its element as it is now; None when it is gone (withdrawn, deleted):
    every delivery, a re-fetch included, is decided against the current version (DESIGN §3)."""
    attr_uuids = sorted({o.attribute_uuid for o in observations if o.attribute_uuid})
    event_uuids = sorted({o.event_uuid for o in observations})
    events: dict[str, Any] = {}
    for start in range(0, len(event_uuids), 500):
        for row in session.execute(
            select(*repository.SUMMARY_COLUMNS).where(
                Event.uuid.in_(event_uuids[start : start + 500])
            )
        ):
            events[row.uuid] = row
    attrs: dict[str, Any] = {}
    for start in range(0, len(attr_uuids), 500):
        for row in session.execute(
            select(
                Attribute.uuid,
                Attribute.object_uuid,
                Attribute.tlp_rank,
                Attribute.distribution,
                Attribute.sg_members,
                Attribute.deleted,
            ).where(Attribute.uuid.in_(attr_uuids[start : start + 500]))
        ):
            attrs[row.uuid] = row
    objects = objects_of(session, list(attrs.values()))
    out: dict[int, _Now | None] = {}
    for obs in observations:
        event = events.get(obs.event_uuid)
        if event is None:
            out[obs.id] = None
            continue
        e_addr = addressing_of(event.distribution, event.sg_members)
        if obs.attribute_uuid is None:
            out[obs.id] = _Now(event.tlp_rank, e_addr, event)
            continue
        attr = attrs.get(obs.attribute_uuid)
        if attr is None or attr.deleted:
            out[obs.id] = None
            continue
        rank = max(attr.tlp_rank, event.tlp_rank)
        addressing = e_addr
        members: tuple[tlp.Addressing, ...] = ()
        if attr.object_uuid is not None:
            obj = objects.get(attr.object_uuid)
            if obj is None or obj.deleted:
                out[obs.id] = None
                continue
            rank = max([rank, obj.tlp_rank, *(m.tlp_rank for m in obj.members)])
            addressing = own_addressing(addressing, obj.distribution, obj.sg_members)
            members = tuple(
                own_addressing(addressing, m.distribution, m.sg_members) for m in obj.members
            )
        addressing = own_addressing(addressing, attr.distribution, attr.sg_members)
        out[obs.id] = _Now(rank, addressing, event, members)
    return out


def _decide_hops(
    session: Session,
    obs: Observation,
    now: _Now,
    *,
    addressee: tlp.Recipient,
    constituent: str | None,
    policy: tlp.Policy,
) -> tlp.Decision:
    """The first refusal among the hops to the addressee (and on to its constituent), else
    the last hop's allowance; decided with the element's label and addressing now, never
    looser than when it was matched. A sector observation names the event: each hop must
    also receive something of the event (its title says nothing on its own)."""
    ask: dict[str, Any] = {
        "label": label_of(max(now.rank, obs.tlp_rank)),
        "addressing": addressing_of(obs.distribution, obs.sg_members).narrow(now.addressing),
        "source_org_uuid": obs.source_uuid,
        "policy": policy,
    }
    hops = [(addressee, CHANNEL)]
    if constituent is not None:
        hops.append(
            (tlp.Recipient.constituent(constituent, via=addressee), tlp.Channel.NOTIFY_CONSTITUENT)
        )
    decision: tlp.Decision | None = None
    event = now.event
    for recipient, channel in hops:
        if not tlp.in_scope(event.exercise_id, recipient):  # the exercise rule, first
            return tlp.out_of_scope(recipient, channel, policy)
        # the event itself first: nothing of an event goes where the event may not go
        decision = tlp.decide(
            recipient=recipient,
            channel=channel,
            label=label_of(event.tlp_rank),
            addressing=addressing_of(event.distribution, event.sg_members),
            source_org_uuid=obs.source_uuid,
            policy=policy,
        )
        if not decision.allowed:
            return decision
        decision = tlp.decide(recipient=recipient, channel=channel, **ask)
        if not decision.allowed:
            return decision
        for member in now.members:  # a MISP object goes or stays whole (DESIGN §3)
            whole = tlp.decide(
                recipient=recipient, channel=channel, **{**ask, "addressing": member}
            )
            if not whole.allowed:
                return tlp.Decision(
                    allowed=False,
                    reason=tlp.Reason.OBJECT_WHOLE,
                    sentence="An object goes or stays whole: " + whole.sentence,
                    label=ask["label"],
                    channel=channel,
                    policy_version=policy.version,
                )
        if obs.attribute_uuid is None:
            gate = Gate(recipient, channel, policy)
            summary = summarise(session, gate, [now.event])[0][1]
            if summary is None or summary.attribute_count == 0:
                return tlp.Decision(
                    allowed=False,
                    reason=tlp.Reason.NOTHING_LEFT,
                    sentence="Nothing of the event this sector is named in may go there.",
                    label=ask["label"],
                    channel=channel,
                    policy_version=policy.version,
                )
    assert decision is not None
    return decision


def _items(session: Session, notes: Sequence[Notification]) -> dict[int, list[Any]]:
    ids = [n.id for n in notes]
    rows = session.execute(
        select(NotificationItem.notification_id, Observation, NotificationItem.retracted)
        .join(Observation, Observation.id == NotificationItem.observation_id)
        .where(NotificationItem.notification_id.in_(ids))
        .order_by(NotificationItem.directive_id)
    ).all()
    out: dict[int, list[Any]] = defaultdict(list)
    for note_id, obs, retracted in rows:
        out[note_id].append((obs, retracted))
    return out


def _corrections(
    session: Session, notes: Sequence[Notification]
) -> dict[int, list[NotificationCorrection]]:
    out: dict[int, list[NotificationCorrection]] = defaultdict(list)
    for c in session.scalars(
        select(NotificationCorrection)
        .where(NotificationCorrection.notification_id.in_([n.id for n in notes]))
        .order_by(NotificationCorrection.id)
    ):
        out[c.notification_id].append(c)
    return out


def _keep(
    session: Session,
    note: Notification,
    items: list[Any],
    now: dict[int, _Now | None],
    *,
    addressee: tlp.Recipient,
    policy: tlp.Policy,
) -> _Kept:
    constituent = note.recipient_ref if note.route == "via" else None
    kept = _Kept()
    for obs, retracted in items:
        key = obs_key(obs.attribute_uuid, obs.value)
        current = now.get(obs.id)
        if current is None:  # gone from the current version: withdrawn, whatever was marked
            kept.allowed.setdefault(key, True)
            kept.withdrawn.add(key)
            kept.rank[key] = max(kept.rank.get(key, 0), obs.tlp_rank)
            kept.versions[key].add((obs.event_uuid, obs.event_version))
            continue
        decision = _decide_hops(
            session, obs, current, addressee=addressee, constituent=constituent, policy=policy
        )
        kept.allowed[key] = kept.allowed.get(key, True) and decision.allowed
        if not decision.allowed:
            kept.refused.setdefault(key, (decision.channel.value, decision.reason.value))
        if retracted:
            kept.withdrawn.add(key)
        kept.rank[key] = max(kept.rank.get(key, 0), obs.tlp_rank)
        kept.versions[key].add((obs.event_uuid, obs.event_version))
    return kept


def _body(note: Notification, kept_keys: set[str], label: tlp.Tlp) -> dict[str, Any]:
    """The stored body cut down to the kept observations, re-rendered under their label."""
    body = orjson.loads(orjson.dumps(note.body))
    data = body["json"]
    data["observations"] = [
        o for o in data["observations"] if obs_key(o["attribute_uuid"], o["value"]) in kept_keys
    ]
    data["tlp"] = label.value
    data["tlp_display"] = label.display
    data["handling"] = label.first_sentence
    body["text"] = templates.render(note.template, data)
    if note.exercise_id is not None:
        body["text"] = {lang: exercise_marked(text) for lang, text in body["text"].items()}
    return body


# Exercise traffic says so in its text too, not only in the subject: the text is what a
# participant passes on (issue #20: "always marked as exercise traffic").
EXERCISE_BANNER = (
    "*** OEFENING / EXERCISE — dit bericht hoort bij een oefening / "
    "this message is part of an exercise ***"
)


def exercise_marked(text: str) -> str:
    """The text with the exercise banner under its first line (the subject of a mail) and
    at its end."""
    first, _, rest = text.partition("\n")
    return f"{first}\n{EXERCISE_BANNER}\n{rest.rstrip()}\n\n{EXERCISE_BANNER}\n"


def decide(
    session: Session,
    *,
    recipient: tlp.Recipient,
    notes: Sequence[Notification],
    policy: tlp.Policy,
) -> Verdict:
    """Decide what ``recipient`` may receive of ``notes`` now; nothing is written.

    Observations the source withdrew are left out (the correction note stays); a
    notification with nothing the recipient may see, or all of whose observations were
    withdrawn before it was first delivered, is withheld whole.
    """
    verdict = Verdict(recipient, notes, policy.version)
    if not notes:
        return verdict
    items = _items(session, notes)
    now = _current(session, [obs for rows in items.values() for obs, _r in rows])
    corrections = _corrections(session, notes)
    for note in notes:
        if not tlp.in_scope(note.exercise_id, recipient):  # the exercise rule, first
            refusal = tlp.out_of_scope(recipient, CHANNEL, policy).reason.value
            every = sorted({(o.event_uuid, o.event_version) for o, _r in items[note.id]})
            verdict.releases += [[u, v, False, refusal, None, 0] for u, v in every]
            continue
        kept = _keep(session, note, items[note.id], now, addressee=recipient, policy=policy)
        permitted = {k for k, ok in kept.allowed.items() if ok}
        kept_keys = permitted - kept.withdrawn
        refused = kept.refused
        if refused:
            verdict.removed[note.ticket] = [[k, *hop] for k, hop in sorted(refused.items())]
        if not permitted or (not kept_keys and note.sent_at is None):
            # Nothing the addressee may see, or everything withdrawn before it ever went out:
            # a correction of something never received would only tell that it existed.
            if permitted:
                reason = "withdrawn-before-delivery"
            else:
                reason = next(iter(refused.values()))[1] if refused else "nothing-left"
            every = sorted({v for vs in kept.versions.values() for v in vs})
            verdict.releases += [[u, v, False, reason, None, 0] for u, v in every]
            continue
        # the label and handling obligation of what is delivered (a notification whose
        # observations were all withdrawn keeps the label of what the caller may see)
        label = label_of(max(kept.rank[k] for k in (kept_keys or permitted)))
        body = _body(note, kept_keys, label)
        removed = len(note.body["json"]["observations"]) - len(body["json"]["observations"])
        sent = sorted({v for k in kept_keys for v in kept.versions[k]})
        held = {v: k for k in kept.allowed if k not in kept_keys for v in kept.versions[k]}
        verdict.releases += [
            [u, v, True, f"notification:{note.ticket}", label.value, removed] for u, v in sent
        ]
        verdict.releases += [
            [u, v, False, refused[k][1] if k in refused else "withdrawn", None, 0]
            for (u, v), k in sorted(held.items())
            if (u, v) not in sent
        ]
        verdict.released.append(
            Released(note, body, corrections[note.id], label.value, note.template)
        )
    return verdict


def record(
    session: Session,
    verdict: Verdict,
    *,
    actor: str,
    activity: str = "deliver",
    medium: str = "rest",
    extra: dict[str, Any] | None = None,
) -> int | None:
    """Record a decided release: one audit entry (also when everything is withheld), a
    lineage ``activity`` (``deliver`` for a fetch, ``send`` for an e-mail) using each
    delivered notification, and pending → sent. Returns the audit sequence number."""
    if not verdict.notes:
        return None
    out = verdict.released
    delivered = {r.notification.id for r in out}
    who = verdict.recipient.org_uuid
    seq = audit.append(
        session,
        [
            audit.Record(
                action="notify.release",
                actor=actor,
                object_ref=(
                    f"notification:{verdict.notes[0].ticket}" if len(verdict.notes) == 1 else None
                ),
                recipient_uuid=who,
                channel=CHANNEL.value,
                decision="allow" if out else "deny",
                request_id=current_request_id(),
                details={
                    "policy_version": verdict.policy_version,
                    "medium": medium,
                    "tickets": [r.notification.ticket for r in out],
                    "withheld": [n.ticket for n in verdict.notes if n.id not in delivered],
                    "removed": verdict.removed,
                    "templates": {r.notification.ticket: r.template for r in out},
                    "labels": {r.notification.ticket: r.tlp for r in out},
                    "releases": verdict.releases,
                    **(extra or {}),
                },
            )
        ],
    )[0]
    if out:
        _lineage(session, verdict, actor=actor, activity=activity, medium=medium, seq=seq)
    session.flush()
    # Nothing released: the entry is the refusal, the operators' and auditors' (not named to
    # the recipient, as an answer that had nothing to release names none).
    return seq if out else None


def _lineage(
    session: Session, verdict: Verdict, *, actor: str, activity: str, medium: str, seq: int
) -> None:
    act = lineage.activity(
        session,
        kind=activity,
        agent=actor,
        plan=f"tlp-policy@{verdict.policy_version}",
        on_behalf_of=verdict.recipient.org_uuid,
        params={
            "audit_seq": seq,
            "channel": CHANNEL.value,
            "medium": medium,
            "templates": sorted({r.template for r in verdict.released}),
        },
    )
    now = utcnow()
    for r in verdict.released:
        art = latest_artifact(session, r.notification.ticket)
        if art is not None:
            lineage.use(session, by=act, artifact_id=art, role="delivered")
        if r.notification.status == "pending":
            r.notification.status = "sent"
            r.notification.sent_at = now


def release(
    session: Session,
    *,
    recipient: tlp.Recipient,
    actor: str,
    notes: Sequence[Notification],
    policy: tlp.Policy,
) -> tuple[list[Released], int | None]:
    """Release notifications to a caller that fetches them (their recipient, or the partner
    passing them on): decided now and recorded in the caller's transaction. Returns what
    is released and the audit entry's sequence number."""
    verdict = decide(session, recipient=recipient, notes=notes, policy=policy)
    seq = record(session, verdict, actor=actor)
    return verdict.released, seq
