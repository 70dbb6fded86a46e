"""What every ``/misp`` operation shares: the caller, its numeric ids, finding and viewing events.

Everything that leaves goes through ``hub.sharing`` (decided and audited there), over the
``misp-sync`` channel whatever the client (a partner's MISP or PyMISP): the SQL of this
package only narrows what the release path is asked about. What comes in goes through
``hub.intel.service.ingest_events``; the pusher must be the event's creator.

MISP clients address events, attributes and objects by numeric id. The hub hands each
organisation its own ids (``hub.sharing.ids``): they say nothing about rows it does not see,
and an id it was not given answers as a missing one.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.intel import repository
from hub.models import Attribute, Event, EventObject, EventReport, Partner
from hub.settings import Settings
from hub.sharing.events import EventDelivery, release_event
from hub.sharing.ids import IdScope, parse_public, scope_for
from hub.sharing.pages import EventPage, release_event_page
from hub.sharing.recipients import Recipient

CHANNEL = tlp.Channel.MISP_SYNC


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls ``/misp``: the key's principal, the network policy and its organisation's ids."""

    principal: Principal
    policy: tlp.Policy
    ids: IdScope

    @classmethod
    def of(cls, principal: Principal, policy: tlp.Policy, settings: Settings) -> Caller:
        secret = settings.secret
        return cls(principal, policy, scope_for(secret, principal.partner_uuid))

    @property
    def recipient(self) -> Recipient:
        return Recipient.of_principal(self.principal)

    @property
    def org_uuid(self) -> str:
        return self.principal.partner_uuid

    def audience(self) -> tlp.Audience:
        return tlp.audience_for(self.recipient.tlp, CHANNEL, self.policy)

    def event_id(self, row_id: int) -> str:
        return self.ids.public_str("event", row_id)


def hub_org_uuid(session: Session) -> str | None:
    return session.scalar(select(Partner.uuid).where(Partner.is_hub_org.is_(True)))


def is_uuid(text: str) -> bool:
    try:
        uuid_mod.UUID(text)
    except ValueError:
        return False
    return True


def find_event(session: Session, caller: Caller, ident: str) -> Event | None:
    """An event by uuid or by the numeric id the caller was given; one of another exercise
    (or of real traffic, for an exercise key) is missing for the caller (``tlp.in_scope``)."""
    ident = ident.strip().lower()
    public = parse_public(ident)
    row = None
    if public is not None:
        row_id = caller.ids.row("event", public)
        row = session.get(Event, row_id) if row_id is not None else None
    elif ident.isascii() and is_uuid(ident):
        row = repository.by_uuid(session, str(uuid_mod.UUID(ident)))
    if row is None or not tlp.in_scope(row.exercise_id, caller.recipient.tlp):
        return None
    return row


def _by_ident(session: Session, caller: Caller, model: Any, kind: str, ident: str) -> Any:
    """An element row by id or uuid; one of an event outside the caller's exercise scope
    is missing (as ``find_event``: not decided, so nothing records that it exists)."""
    ident = ident.strip().lower()
    public = parse_public(ident)
    row = None
    if public is not None:
        row_id = caller.ids.row(kind, public)
        row = session.get(model, row_id) if row_id is not None else None
    elif ident.isascii() and is_uuid(ident):
        row = session.scalar(select(model).where(model.uuid == str(uuid_mod.UUID(ident))))
    if row is None:
        return None
    scope = session.scalar(select(Event.exercise_id).where(Event.id == row.event_id))
    return row if tlp.in_scope(scope, caller.recipient.tlp) else None


def find_attribute(session: Session, caller: Caller, ident: str) -> Attribute | None:
    """An attribute row by uuid or by the numeric id the caller was given."""
    return _by_ident(session, caller, Attribute, "attribute", ident)  # type: ignore[no-any-return]


def find_object(session: Session, caller: Caller, ident: str) -> EventObject | None:
    """A MISP object row by uuid or by the numeric id the caller was given."""
    return _by_ident(session, caller, EventObject, "object", ident)  # type: ignore[no-any-return]


def find_report(session: Session, caller: Caller, ident: str) -> EventReport | None:
    """An event report's row by uuid or by the numeric id the caller was given."""
    return _by_ident(session, caller, EventReport, "report", ident)  # type: ignore[no-any-return]


def row_ids(caller: Caller, kind: str, values: list[str]) -> list[int]:
    """Row ids behind the numeric ids among ``values`` (others are ignored)."""
    out = []
    for value in values:
        public = parse_public(value)
        if public is not None:
            row_id = caller.ids.row(kind, public)
            if row_id is not None:
                out.append(row_id)
    return out


def view(
    session: Session,
    caller: Caller,
    row: Event,
    *,
    include_deleted: bool,
    write_answer: bool = False,
) -> EventDelivery | None:
    """The event as the caller may receive it (served with the distribution the hub holds:
    a pulling MISP downgrades on its side), or None; audited either way.
    ``write_answer``: the answer to the caller's write (recorded as such)."""
    delivery = release_event(
        session,
        to=caller.principal,
        event=row,
        channel=CHANNEL,
        policy=caller.policy,
        include_deleted=include_deleted,
        write_answer=write_answer,
    )
    return delivery if delivery.event is not None else None


def visible(session: Session, caller: Caller, row: Event) -> bool:
    """Whether the caller may know the event: exactly when the view would deliver it,
    decided from the event's rows and recorded like a listing of it."""
    return bool(listed(session, caller, row).items)


def listed(session: Session, caller: Caller, row: Event) -> EventPage:
    """The event as a listing shows it to the caller (HEAD): a page holding it, or nothing,
    under the event's label as the index lists it, audited like a listing."""
    return release_event_page(
        session,
        to=caller.principal,
        channel=CHANNEL,
        policy=caller.policy,
        fetch=lambda after, n: [row] if after is None else [],
        position=lambda r: r.id,
        limit=1,
    )
