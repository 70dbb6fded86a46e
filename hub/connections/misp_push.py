"""Pushing to a partner's MISP: each new published version decided for the partner into the
outbox, then sent, decided again against the current version, and recorded as a release only
once the remote accepted it."""

from __future__ import annotations

import zlib
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import connectors
import tlp
from connectors.misp import prepare_for_push
from hub.connections.leases import Lease, Unit, recipient_of, tally, unit_of_work
from hub.models import Event, EventVersion, Partner, PushOutboxItem
from hub.sharing.events import EventDelivery, decide_event, record_event_release
from hub.sharing.recipients import Recipient

PLAN_BATCH = 200  # event versions decided per transaction


SEND_BATCH = 20  # pushes per batch (each committed on its own)


def step_misp_push(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.EventPusher,
    policy: tlp.Policy,
) -> bool:
    """Decide new event versions into the outbox, then send what is pending, oldest first."""
    with unit_of_work(maker, lease) as unit:
        if _decide_new_versions(unit, lease, policy):
            return False  # the decisions (the outbox) commit before anything is sent
        pending = _pending(unit, limit=SEND_BATCH)
        partner = unit.session.get(Partner, lease.partner.id)
        if partner is None or partner.status != "active":
            # Nothing goes out until the partner is active again (a suspension stops even
            # what was decided already); the items stay pending.
            status = partner.status if partner else "gone"
            tally(unit.job, "held", error=f"partner is {status}; pushes held")
            return True
    for item_id in pending:
        _send(maker, lease, connector, policy, item_id)
    with unit_of_work(maker, lease) as unit:
        return not _pending(unit, limit=1)


def _pending(unit: Unit, *, limit: int) -> list[int]:
    return list(
        unit.session.scalars(
            select(PushOutboxItem.id)
            .where(
                PushOutboxItem.connection_id == unit.connection.id,
                PushOutboxItem.state == "pending",
            )
            .order_by(PushOutboxItem.id)
            .limit(limit)
        )
    )


def _decide_new_versions(unit: Unit, lease: Lease, policy: tlp.Policy) -> int:
    """Release each published event version after the cursor to the partner, into the
    outbox; returns how many versions were looked at."""
    session, connection = unit.session, unit.connection
    last = int((connection.cursor or {}).get("version_id", 0))
    rows = session.execute(
        select(EventVersion.id, EventVersion.version, Event)
        .join(Event, Event.id == EventVersion.event_id)
        .where(EventVersion.id > last)
        .order_by(EventVersion.id)
        .limit(PLAN_BATCH)
    ).all()
    partner = session.get(Partner, lease.partner.id)
    assert partner is not None
    recipient = recipient_of(connection, partner)
    for version_id, version, event in rows:
        last = version_id
        if version != event.version or not event.published:
            continue  # a later version supersedes it; MISP syncs published events only
        if event.source_partner_id == partner.id:
            continue  # it came from there
        if not tlp.in_scope(event.exercise_id, recipient.tlp):
            # Another scope's: a real connection never carries an exercise's items, an
            # exercise-mode one only its own exercise's (``recipient_of``); never named.
            continue
        delivery = _decide(session, recipient, event, policy)
        if delivery.event is None:
            record_event_release(session, to=recipient, event=event, delivery=delivery)
            tally(unit.job, "withheld")
            continue
        payload = _packed(delivery)
        if _same_as_sent(session, connection.id, event.uuid, payload):
            # A version whose changes the partner cannot see (or a publication of them):
            # its copy is the one it has, sending it again would tell that something changed.
            tally(unit.job, "unchanged")
            continue
        # Recorded as a release only once the remote accepted it (``_settle_item``).
        session.add(
            PushOutboxItem(
                connection_id=connection.id,
                event_uuid=event.uuid,
                event_version=version,
                payload=payload,
                audit_seq=None,
                state="pending",
                attempts=0,
            )
        )
        tally(unit.job, "released")
    connection.cursor = {**(connection.cursor or {}), "version_id": last}
    session.flush()
    return len(rows)


def _decide(
    session: Session, recipient: Recipient, event: Event, policy: tlp.Policy
) -> EventDelivery:
    """A push is decided as a MISP pushing to another (``hub.sharing.events._as_pushed``):
    nothing addressed to this community only, 2 sent as 1; deletions go only to a partner
    that had received the element."""
    return decide_event(
        session,
        to=recipient,
        event=event,
        channel=tlp.Channel.MISP_SYNC,
        policy=policy,
        include_deleted=True,
        push=True,
    )


def _same_as_sent(session: Session, connection_id: int, event_uuid: str, payload: bytes) -> bool:
    """Whether the last push of this event the partner accepted carried exactly ``payload``."""
    last = session.scalar(
        select(PushOutboxItem.payload)
        .where(
            PushOutboxItem.connection_id == connection_id,
            PushOutboxItem.event_uuid == event_uuid,
            PushOutboxItem.state == "sent",
        )
        .order_by(PushOutboxItem.id.desc())
        .limit(1)
    )
    return last is not None and zlib.decompress(last) == zlib.decompress(payload)


def _packed(delivery: EventDelivery) -> bytes:
    assert delivery.event is not None
    return zlib.compress(orjson.dumps(prepare_for_push(delivery.event["Event"])))


def _send(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.EventPusher,
    policy: tlp.Policy,
    item_id: int,
) -> None:
    """Decide the item again, send what that decision releases, record the outcome: the
    release (audit entry, releases row) only when the remote accepted it, so a failed
    attempt leaves no delivery on record and a retried one is recorded once."""
    with unit_of_work(maker, lease) as unit:
        decided = _decide_again(unit, lease, policy, item_id)
    if decided is None:
        return
    payload, delivery = decided
    try:
        result = connector.push(payload)
    except (connectors.RemoteRejected, connectors.MappingError) as err:
        _settle_item(maker, lease, item_id, stat="rejected", state="dead", last_error=str(err))
        return  # this event only; the rest goes on
    except connectors.ConnectorError as err:
        _settle_item(maker, lease, item_id, stat=None, last_error=str(err))
        raise
    _settle_item(
        maker,
        lease,
        item_id,
        stat=result.outcome,
        delivered=delivery,
        state="sent",
        outcome=result.outcome,
        sent_at=lease.now,
        last_error=None,
    )


def _decide_again(
    unit: Unit, lease: Lease, policy: tlp.Policy, item_id: int
) -> tuple[dict[str, Any], EventDelivery] | None:
    """The content to send now, under the rules and the partner's standing of now; None
    when the version was superseded or is withheld now (both recorded on the item), or
    while the partner is not active (the item stays pending)."""
    session = unit.session
    item = session.get(PushOutboxItem, item_id)
    assert item is not None
    event = session.scalar(select(Event).where(Event.uuid == item.event_uuid))
    if event is None or event.version != item.event_version:
        # The newer version is decided on its own; never send a superseded decision.
        item.state = "superseded"
        tally(unit.job, "superseded")
        return None
    partner = session.get(Partner, lease.partner.id)
    assert partner is not None
    if partner.status != "active":
        # Suspended while this batch was being sent: held like the batch check holds it
        # (sent once active again), not withheld for good.
        tally(unit.job, "held", error=f"{item.event_uuid}: partner is {partner.status}; held")
        return None
    recipient = recipient_of(unit.connection, partner)
    delivery = _decide(session, recipient, event, policy)
    if delivery.event is None:
        item.audit_seq = record_event_release(session, to=recipient, event=event, delivery=delivery)
        item.state = "withheld"
        item.last_error = f"withheld when decided again before sending: {_why(delivery)}"
        tally(unit.job, "withheld", error=f"{item.event_uuid}: {item.last_error}")
        return None
    item.payload = _packed(delivery)
    item.attempts += 1
    return orjson.loads(zlib.decompress(item.payload)), delivery


def _why(delivery: EventDelivery) -> str:
    if not delivery.decision.allowed:
        return delivery.decision.sentence
    return "nothing in it may go to this partner any more"


def _settle_item(
    maker: sessionmaker[Session],
    lease: Lease,
    item_id: int,
    *,
    stat: str | None,
    delivered: EventDelivery | None = None,
    **fields: Any,
) -> None:
    with unit_of_work(maker, lease) as unit:
        item = unit.session.get(PushOutboxItem, item_id)
        assert item is not None
        for name, value in fields.items():
            setattr(item, name, value)
        if delivered is not None:
            event = unit.session.scalar(select(Event).where(Event.uuid == item.event_uuid))
            partner = unit.session.get(Partner, lease.partner.id)
            assert event is not None and partner is not None
            item.audit_seq = record_event_release(
                unit.session,
                to=recipient_of(unit.connection, partner),
                event=event,
                delivery=delivered,
            )
        if stat is not None:
            error = fields.get("last_error")
            tally(unit.job, stat, error=f"{item.event_uuid}: {error}" if error else None)
