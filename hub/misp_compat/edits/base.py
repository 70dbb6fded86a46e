"""What every MISP write shares: who writes (``Writer``) and what came of it (``Written``),
finding the caller's own event or element to write to (another organisation's answers as
missing unless the caller may see it, then 403), building an edit from stored elements, and
storing it through ingest as the next version of the event. TLP tags are checked here: an
unreadable one, or the removal of a TLP label, is refused before anything is stored."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.errors import InvalidField, NotFound
from hub.intel.service import Outcome, ingest_events
from hub.misp_compat import elements
from hub.misp_compat.errors import SaveRefused
from hub.misp_compat.service import (
    CHANNEL,
    Caller,
    find_attribute,
    find_event,
    find_object,
    find_report,
    visible,
)
from hub.models import Attribute, Event, EventObject, Partner
from hub.sharing.view import deleted_by_source

NOT_OWNER = "Only the event's creator organisation may change it (the hub takes no proposals)."
ID_KEYS = ("id", "event_id", "object_id", "sharing_group_id", "Event", "event_uuid")


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes: the caller and its organisation (checked active and bound by the TLP
    rules by ``hub.intel.submission.submitting_partner``)."""

    caller: Caller
    source: Partner
    default_distribution: int


@dataclass(slots=True)
class Written:
    """A stored write: the event row after it, or why it was held instead (quarantine);
    ``outcome`` None: nothing needed storing (a delete of what is deleted already)."""

    event: Event | None
    outcome: Outcome | None
    held: SaveRefused | None = None


# --- finding what is written to ------------------------------------------------------------


def own_event(session: Session, w: Writer, ident: str, *, name: str) -> Event:
    """The caller's event by uuid or id; another organisation's answers as missing unless
    the caller may see it (then 403: only its creator changes it)."""
    row = find_event(session, w.caller, ident)
    return owned(session, w, row, name=name, what="Invalid event.")


def owned(session: Session, w: Writer, row: Event | None, *, name: str, what: str) -> Event:
    """``row`` if the caller's organisation created it and it is in the caller's scope;
    otherwise ``what`` as a missing one, or 403 when the caller may see it."""
    if row is None or (row.source_partner_id == w.source.id and deleted_by_source(row)):
        raise NotFound(what)
    if not tlp.in_scope(row.exercise_id, w.caller.recipient.tlp):
        raise NotFound(what)  # another exercise's, or real traffic for an exercise key
    if row.source_partner_id != w.source.id:
        if not visible(session, w.caller, row):
            raise NotFound(what)
        raise SaveRefused(NOT_OWNER, name=name)
    return row


def own_attribute(session: Session, w: Writer, ident: str, *, name: str) -> tuple[Attribute, Event]:
    """An attribute of one of the caller's events (by uuid or id)."""
    attr = find_attribute(session, w.caller, ident)
    event = session.get(Event, attr.event_id) if attr is not None else None
    if attr is None or event is None:
        raise NotFound("Invalid attribute.")
    if event.source_partner_id != w.source.id:
        seen = elements.attributes(session, w.caller, [(attr, event)], include_deleted=False)
        if not seen.items:
            raise NotFound("Invalid attribute.")
        raise SaveRefused(NOT_OWNER, name=name)
    owned(session, w, event, name=name, what="Invalid attribute.")
    return attr, event


def own_object(session: Session, w: Writer, ident: str, *, name: str) -> tuple[EventObject, Event]:
    """A MISP object of one of the caller's events (by uuid or id)."""
    obj = find_object(session, w.caller, ident)
    event = session.get(Event, obj.event_id) if obj is not None else None
    if obj is None or event is None:
        raise NotFound("Invalid object.")
    if event.source_partner_id != w.source.id:
        seen = elements.objects(session, w.caller, [(obj, event)])
        if not seen.items:
            raise NotFound("Invalid object.")
        raise SaveRefused(NOT_OWNER, name=name)
    owned(session, w, event, name=name, what="Invalid object.")
    return obj, event


def own_report(session: Session, w: Writer, ident: str, *, name: str) -> tuple[str, Event]:
    """(report uuid, event) of a report of one of the caller's events (by uuid or id)."""
    row = find_report(session, w.caller, ident)
    event = session.get(Event, row.event_id) if row is not None else None
    if row is None or event is None:
        raise NotFound("Invalid Event Report.")
    if event.source_partner_id != w.source.id:
        seen = elements.reports(session, w.caller, event, uuids=frozenset({row.uuid}))
        if not seen.items:
            raise NotFound("Invalid Event Report.")
        raise SaveRefused(NOT_OWNER, name=name)
    owned(session, w, event, name=name, what="Invalid Event Report.")
    return row.uuid, event


def event_head(row: Event, *, published: bool | None = False) -> dict[str, Any]:
    """The event's own fields an edit must carry so that normalisation keeps them (title,
    addressing, publication); ``published`` None keeps the stored one."""
    doc = orjson.loads(row.doc)
    head: dict[str, Any] = {
        "uuid": row.uuid,
        "info": row.info,
        "distribution": str(row.distribution),
        "published": bool(row.published) if published is None else published,
    }
    if row.distribution == 4 and isinstance(doc.get("SharingGroup"), dict):
        head["SharingGroup"] = doc["SharingGroup"]
    return head


def element_base(blob: bytes) -> dict[str, Any]:
    """A stored element as the base of an edit: its fields, without its numbers and its
    timestamp (an edit without one is stamped now and always applied)."""
    out = orjson.loads(blob)
    for key in (*ID_KEYS, "timestamp"):
        out.pop(key, None)
    return out


def cleaned(body: dict[str, Any]) -> dict[str, Any]:
    """What a client sent for an element, without the numbers it was given (the hub keeps
    uuids only) and without what never leaves or is computed by the hub."""
    out = dict(body)
    for key in (*ID_KEYS, "ShadowAttribute", "Sighting", "RelatedAttribute", "Galaxy"):
        out.pop(key, None)
    if out.get("timestamp") in (None, "", 0, "0"):
        out.pop("timestamp", None)
    return out


def _check_tags(*elements_: dict[str, Any]) -> None:
    """Refuse an unreadable TLP marking before anything is stored (module doc)."""
    for element in elements_:
        for tag in element.get("Tag") or []:
            name = tag.get("name") if isinstance(tag, dict) else tag
            try:
                tlp.parse_tag(str(name))
            except tlp.TLPError:
                raise InvalidField(
                    f"tag {name!r} looks like TLP but is not a TLP label; nothing was stored",
                    field="Tag",
                ) from None
        for child in element.get("Attribute") or []:
            if isinstance(child, dict):
                _check_tags(child)


def store(
    session: Session,
    w: Writer,
    row: Event,
    edit: dict[str, Any],
    *,
    name: str,
    exact_tags: Collection[str] = (),
) -> Written:
    """Ingest ``edit`` as the next version of the caller's event ``row``."""
    _check_tags(edit)
    payload = orjson.loads(orjson.dumps(edit))  # normalised in place: a fresh copy
    [outcome] = ingest_events(
        session,
        payloads=[payload],
        source=w.source,
        actor=w.caller.principal.actor,
        channel=CHANNEL.value,
        policy=w.caller.policy,
        default_distribution=w.default_distribution,
        exact_tags=exact_tags,
        exercise=w.caller.recipient.exercise_id,
    )
    if outcome.status == "quarantined":
        held = SaveRefused(
            f"The change was held in quarantine ({outcome.quarantine_uuid}): "
            f"{outcome.detail or 'unreadable marking'}. The event is unchanged.",
            name=name,
        )
        return Written(None, outcome, held)
    if outcome.status == "unchanged":
        raise SaveRefused(
            "Could not save: the element in the request is not newer than the hub's copy.",
            name=name,
        )
    session.refresh(row)
    return Written(row, outcome)


def tlp_label(name: str) -> tlp.Tlp | None:
    """The TLP label a tag names (None for any other tag); one that looks like TLP but is
    not a label is refused (module doc)."""
    try:
        return tlp.parse_tag(name).label
    except tlp.TLPError:
        raise InvalidField(
            f"tag {name!r} looks like TLP but is not a TLP label; nothing was stored", field="tag"
        ) from None


def check_removal(names: list[str], *, name: str) -> None:
    """Refuse removing a TLP label: that could lower the element's label."""
    for tag in names:
        if tlp_label(tag) is not None:
            raise SaveRefused(
                f"Tag {tag} is a TLP label: the hub never lowers an element's label by "
                "removing it (attach a stricter label instead).",
                name=name,
            )


def in_place(session: Session, event: Event, attr: Any, edited: dict[str, Any]) -> dict[str, Any]:
    """The edit of one attribute: standalone, or inside its object (whose timestamp moves
    with it, as MISP's does)."""
    if attr.object_uuid is None:
        return {**event_head(event), "Attribute": [edited]}
    obj = session.scalar(select(EventObject).where(EventObject.uuid == attr.object_uuid))
    assert obj is not None
    return {**event_head(event), "Object": [{**element_base(obj.doc), "Attribute": [edited]}]}


def deletion(doc: bytes, *, hard: bool) -> dict[str, Any]:
    """A stored element, deleted: soft (its creator still sees it with ``deleted``), or hard
    (``purged``: its creator no longer sees it at all). Either way those who had received it
    get the deletion, and the version history keeps what was shared."""
    out = {**element_base(doc), "deleted": True}
    if hard:
        out["purged"] = True
    return out
