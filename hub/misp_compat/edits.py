"""Writes to an existing event through ``/misp``, as MISP applies them: add, edit and delete
attributes, objects, object references and event reports; attach and remove tags; publish,
unpublish and delete the event; a partial ``events/edit``.

Each write is built as the edit MISP would apply and ingested as a new version of the
caller's event (``hub.intel.service.ingest_events``): the caller's organisation is its
creator, the version and its audit entry record the change, the merge applies it (an element
sent without a timestamp is stamped now and always applied). Only an event's creator changes
it; an event or element the caller may not see answers as a missing one. Like MISP, a change
to an event's content leaves it unpublished until it is published again.

TLP tags may only make an element stricter: attaching a label below the element's effective
one, removing a TLP label or sending an unreadable one is refused before anything is stored.
Local tags never leave the hub (DESIGN.md §3), so the hub keeps none: attaching one changes
nothing.
"""

from __future__ import annotations

import time
import uuid as uuid_mod
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.errors import InvalidField, NotFound
from hub.intel.service import Outcome, ingest_events
from hub.intel.snapshots import current_state
from hub.misp_compat import elements
from hub.misp_compat.errors import SaveRefused
from hub.misp_compat.params import truthy
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
from hub.sharing.records import label_of
from hub.sharing.view import deleted_by_source

NOT_OWNER = "Only the event's creator organisation may change it (the hub takes no proposals)."
_ID_KEYS = ("id", "event_id", "object_id", "sharing_group_id", "Event", "event_uuid")


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
    return _owned(session, w, row, name=name, what="Invalid event.")


def _owned(session: Session, w: Writer, row: Event | None, *, name: str, what: str) -> Event:
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
    _owned(session, w, event, name=name, what="Invalid attribute.")
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
    _owned(session, w, event, name=name, what="Invalid object.")
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
    _owned(session, w, event, name=name, what="Invalid Event Report.")
    return row.uuid, event


# --- building and storing an edit ----------------------------------------------------------


def _head(row: Event, *, published: bool | None = False) -> dict[str, Any]:
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


def _doc(blob: bytes) -> dict[str, Any]:
    """A stored element as the base of an edit: its fields, without its numbers and its
    timestamp (an edit without one is stamped now and always applied)."""
    out = orjson.loads(blob)
    for key in (*_ID_KEYS, "timestamp"):
        out.pop(key, None)
    return out


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    """What a client sent for an element, without the numbers it was given (the hub keeps
    uuids only) and without what never leaves or is computed by the hub."""
    out = dict(body)
    for key in (*_ID_KEYS, "ShadowAttribute", "Sighting", "RelatedAttribute", "Galaxy"):
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


# --- attributes ------------------------------------------------------------------------------


def _live_attributes(session: Session, event: Event) -> list[Any]:
    return list(
        session.execute(
            select(
                Attribute.uuid, Attribute.type, Attribute.category, Attribute.value, Attribute.doc
            ).where(
                Attribute.event_id == event.id,
                Attribute.object_uuid.is_(None),
                Attribute.deleted.is_(False),
            )
        )
    )


def _similar(existing: list[Any], attr: dict[str, Any]) -> Any:
    value = str(attr.get("value"))
    for row in existing:
        if (
            row.value == value
            and row.type == attr.get("type")
            and (attr.get("category") in (None, "", row.category))
        ):
            return row
    return None


DUPLICATE = "A similar attribute already exists for this event."


def add_attributes(
    session: Session,
    w: Writer,
    event_ident: str,
    body: Any,
    *,
    break_on_duplicate: bool,
) -> tuple[Written, list[str], dict[str, Any]]:
    """``attributes/add/{event}``: one attribute or a list. Returns the write, the uuids of
    the attributes stored (in order) and MISP's per-attribute errors (``attribute_<i>``).
    A value already in the event (same type and category) is refused, or, with
    ``breakOnDuplicate:0``, touched (MISP updates the existing one)."""
    name = "Could not add Attribute"
    event = own_event(session, w, event_ident, name=name)
    items = body if isinstance(body, list) else [body]
    existing = _live_attributes(session, event)
    stored: list[dict[str, Any]] = []
    errors: dict[str, Any] = {}
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("Attribute"), dict):
            item = item["Attribute"]
        if not isinstance(item, dict):
            raise InvalidField(f"attribute {i} must be an object", field="Attribute")
        attr = _clean(item)
        attr.setdefault("uuid", str(uuid_mod.uuid4()))
        same = _similar(existing, attr)
        if same is not None:
            if break_on_duplicate:
                errors[f"attribute_{i}"] = {"value": [DUPLICATE]}
                continue
            attr = {**_doc(same.doc), **{k: v for k, v in attr.items() if k != "uuid"}}
        stored.append(attr)
    if not stored:
        if len(items) == 1:
            raise SaveRefused(DUPLICATE, name=name, errors={"value": [DUPLICATE]})
        raise SaveRefused(DUPLICATE, name=name, errors=errors)
    written = store(session, w, event, {**_head(event), "Attribute": stored}, name=name)
    return written, [a["uuid"] for a in stored], errors


def edit_attribute(session: Session, w: Writer, ident: str, body: Any) -> tuple[Written, str]:
    """``attributes/edit/{id}``: the fields sent replace the stored ones (the others stay);
    an explicit timestamp must be newer than the stored one."""
    name = "Could not edit Attribute"
    attr, event = own_attribute(session, w, ident, name=name)
    if isinstance(body, dict) and isinstance(body.get("Attribute"), dict):
        body = body["Attribute"]
    if not isinstance(body, dict):
        raise InvalidField("the body must be one attribute", field="Attribute")
    sent = _clean(body)
    if "timestamp" in sent:
        try:
            newer = int(sent["timestamp"]) > attr.timestamp
        except (TypeError, ValueError):
            raise InvalidField("timestamp must be a number", field="timestamp") from None
        if not newer:
            raise SaveRefused(
                "Attribute could not be saved: Attribute in the request not newer than the "
                "local copy.",
                name=name,
            )
    edited = {**_doc(attr.doc), **sent, "uuid": attr.uuid}
    removed = _deleted_tags(edited)
    exact = {attr.uuid} if removed else set()
    if removed:
        _check_removal(removed, name=name)
    written = store(
        session, w, event, _in_place(session, event, attr, edited), name=name, exact_tags=exact
    )
    return written, attr.uuid


def _deleted_tags(element: dict[str, Any]) -> list[str]:
    """Tags a client marks ``deleted`` (PyMISP's ``MISPTag.delete()``): removed from the
    element; the rest of its list is then its whole tag list."""
    tags = element.get("Tag") or []
    gone = [t["name"] for t in tags if isinstance(t, dict) and truthy(t.get("deleted"))]
    if gone:
        element["Tag"] = [t for t in tags if not (isinstance(t, dict) and truthy(t.get("deleted")))]
    return gone


def _check_removal(names: list[str], *, name: str) -> None:
    for tag in names:
        if _label(tag) is not None:
            raise SaveRefused(
                f"Tag {tag} is a TLP label: the hub never lowers an element's label by "
                "removing it (attach a stricter label instead).",
                name=name,
            )


def _in_place(session: Session, event: Event, attr: Any, edited: dict[str, Any]) -> dict[str, Any]:
    """The edit of one attribute: standalone, or inside its object (whose timestamp moves
    with it, as MISP's does)."""
    if attr.object_uuid is None:
        return {**_head(event), "Attribute": [edited]}
    obj = session.scalar(select(EventObject).where(EventObject.uuid == attr.object_uuid))
    assert obj is not None
    return {**_head(event), "Object": [{**_doc(obj.doc), "Attribute": [edited]}]}


def _deletion(doc: bytes, *, hard: bool) -> dict[str, Any]:
    """A stored element, deleted: soft (its creator still sees it with ``deleted``), or hard
    (``purged``: its creator no longer sees it at all). Either way those who had received it
    get the deletion, and the version history keeps what was shared."""
    out = {**_doc(doc), "deleted": True}
    if hard:
        out["purged"] = True
    return out


def delete_attribute(
    session: Session, w: Writer, ident: str, *, hard: bool = False
) -> tuple[Written, str]:
    """``attributes/delete/{id}`` (soft, or hard with ``{"hard": 1}``, see ``_deletion``);
    deleting what is deleted already changes nothing."""
    name = "Could not delete Attribute"
    attr, event = own_attribute(session, w, ident, name=name)
    if attr.deleted and not hard:
        return Written(event, None), attr.uuid
    edited = {**_deletion(attr.doc, hard=hard), "uuid": attr.uuid}
    return store(session, w, event, _in_place(session, event, attr, edited), name=name), attr.uuid


# --- objects -------------------------------------------------------------------------------


def _object_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("Object"), dict):
        inner = dict(body["Object"])
        if "Attribute" in body and "Attribute" not in inner:
            inner["Attribute"] = body["Attribute"]
        body = inner
    if not isinstance(body, dict):
        raise InvalidField("the body must be one MISP object", field="Object")
    out = _clean(body)
    out["Attribute"] = [_clean(a) for a in out.get("Attribute") or [] if isinstance(a, dict)]
    refs = []
    for ref in out.get("ObjectReference") or []:
        if isinstance(ref, dict):
            ref = _clean(ref)
            ref.pop("source_uuid", None)
            refs.append(ref)
    out["ObjectReference"] = refs
    return out


def add_object(session: Session, w: Writer, event_ident: str, body: Any) -> tuple[Written, str]:
    """``objects/add/{event}``: a new MISP object with its attributes."""
    name = "Could not add Object"
    event = own_event(session, w, event_ident, name=name)
    obj = _object_body(body)
    obj.setdefault("uuid", str(uuid_mod.uuid4()))
    # In this event: refused. Elsewhere: ingest's UuidClash, which names nothing.
    if session.scalar(
        select(EventObject.id).where(
            EventObject.uuid == obj["uuid"], EventObject.event_id == event.id
        )
    ):
        raise SaveRefused("Could not save: this event has an object with this uuid.", name=name)
    written = store(session, w, event, {**_head(event), "Object": [obj]}, name=name)
    return written, str(obj["uuid"])


def edit_object(session: Session, w: Writer, ident: str, body: Any) -> tuple[Written, str]:
    """``objects/edit/{id}``: the object's fields sent replace the stored ones; its
    attributes merge by uuid (newer wins, one without a timestamp always), new ones are
    added, none is removed by omission."""
    name = "Could not edit Object"
    obj_row, event = own_object(session, w, ident, name=name)
    sent = _object_body(body)
    stored = _doc(obj_row.doc)
    edited = {**stored, **sent, "uuid": obj_row.uuid}
    return store(session, w, event, {**_head(event), "Object": [edited]}, name=name), obj_row.uuid


def delete_object(
    session: Session, w: Writer, ident: str, *, hard: bool = False
) -> tuple[Written, str]:
    """``objects/delete/{id}``: the object and its attributes deleted (``_deletion``)."""
    name = "Could not delete Object"
    obj_row, event = own_object(session, w, ident, name=name)
    if obj_row.deleted and not hard:
        return Written(event, None), obj_row.uuid
    members = session.scalars(select(Attribute.doc).where(Attribute.object_uuid == obj_row.uuid))
    gone = {
        **_deletion(obj_row.doc, hard=hard),
        "uuid": obj_row.uuid,
        "Attribute": [_deletion(doc, hard=hard) for doc in members],
    }
    return store(session, w, event, {**_head(event), "Object": [gone]}, name=name), obj_row.uuid


def add_reference(session: Session, w: Writer, body: Any) -> tuple[Written, dict[str, Any]]:
    """``objectReferences/add``: a reference from one of the caller's objects to an
    attribute or object (``object_uuid`` → ``referenced_uuid``)."""
    name = "Could not add ObjectReference"
    if isinstance(body, dict) and isinstance(body.get("ObjectReference"), dict):
        body = body["ObjectReference"]
    if not isinstance(body, dict):
        raise InvalidField("the body must be one object reference", field="ObjectReference")
    source = str(body.get("object_uuid") or body.get("source_uuid") or "")
    if not source:
        raise InvalidField(
            "object_uuid names the object the reference starts from", field="object_uuid"
        )
    obj_row, event = own_object(session, w, source, name=name)
    ref = _clean(body)
    ref.pop("source_uuid", None)
    ref.setdefault("uuid", str(uuid_mod.uuid4()))
    ref["object_uuid"] = obj_row.uuid
    if not ref.get("referenced_uuid") or not ref.get("relationship_type"):
        raise InvalidField(
            "a reference needs referenced_uuid and relationship_type", field="referenced_uuid"
        )
    head = {k: v for k, v in _doc(obj_row.doc).items() if k not in ("ObjectReference",)}
    edit = {**_head(event), "Object": [{**head, "uuid": obj_row.uuid, "ObjectReference": [ref]}]}
    return store(session, w, event, edit, name=name), ref


def delete_reference(session: Session, w: Writer, ident: str) -> Written:
    """``objectReferences/delete/{uuid}``: soft-deletes a reference of one of the caller's
    objects. References have no numbers of their own: they are named by uuid, and only the
    caller's own events are searched for them (its last ``MAX_SCAN`` objects)."""
    name = "Could not delete ObjectReference"
    ident = ident.strip().lower()
    found = None
    needle = ident.encode()
    rows = session.execute(
        select(EventObject, Event)
        .join(Event, Event.id == EventObject.event_id)
        .where(
            Event.source_partner_id == w.source.id,
            Event.exercise_id.is_(None)
            if w.caller.recipient.exercise_id is None
            else Event.exercise_id == w.caller.recipient.exercise_id,
        )
        .order_by(EventObject.id.desc())
        .limit(MAX_SCAN)
    )
    for obj_row, event in rows:
        if needle not in obj_row.doc:
            continue
        doc = orjson.loads(obj_row.doc)
        for ref in doc.get("ObjectReference") or []:
            if str(ref.get("uuid")) == ident and not ref.get("deleted"):
                found = (obj_row, event, doc, ref)
                break
        if found:
            break
    if found is None:
        raise NotFound("Invalid ObjectReference.")
    obj_row, event, doc, ref = found
    _owned(session, w, event, name=name, what="Invalid ObjectReference.")
    gone = {k: v for k, v in ref.items() if k not in ("timestamp", "id")}
    gone["deleted"] = True
    head = {k: v for k, v in _doc(obj_row.doc).items() if k != "ObjectReference"}
    edit = {**_head(event), "Object": [{**head, "uuid": obj_row.uuid, "ObjectReference": [gone]}]}
    return store(session, w, event, edit, name=name)


MAX_SCAN = 50_000


# --- event reports -------------------------------------------------------------------------


def _report_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("EventReport"), dict):
        body = body["EventReport"]
    if not isinstance(body, dict):
        raise InvalidField("the body must be one event report", field="EventReport")
    return _clean(body)


def add_report(session: Session, w: Writer, event_ident: str, body: Any) -> tuple[Written, str]:
    """``eventReports/add/{event}``: a new report (name, content)."""
    name = "Could not add Event Report"
    event = own_event(session, w, event_ident, name=name)
    report = _report_body(body)
    report.setdefault("uuid", str(uuid_mod.uuid4()))
    written = store(session, w, event, {**_head(event), "EventReport": [report]}, name=name)
    return written, str(report["uuid"])


def _stored_report(session: Session, event: Event, uuid: str) -> dict[str, Any]:
    for report in orjson.loads(event.doc).get("EventReport") or []:
        if isinstance(report, dict) and report.get("uuid") == uuid:
            out = dict(report)
            for key in (*_ID_KEYS, "timestamp"):
                out.pop(key, None)
            return out
    raise NotFound("Invalid Event Report.")


def edit_report(session: Session, w: Writer, ident: str, body: Any) -> tuple[Written, str]:
    """``eventReports/edit/{id}``: the fields sent replace the stored ones."""
    name = "Could not edit Event Report"
    uuid, event = own_report(session, w, ident, name=name)
    edited = {**_stored_report(session, event, uuid), **_report_body(body), "uuid": uuid}
    edited.pop("timestamp", None)
    return store(session, w, event, {**_head(event), "EventReport": [edited]}, name=name), uuid


def delete_report(
    session: Session, w: Writer, ident: str, *, hard: bool = False
) -> tuple[Written, str]:
    """``eventReports/delete/{id}`` (soft, or hard: ``_deletion``)."""
    name = "Could not delete Event Report"
    uuid, event = own_report(session, w, ident, name=name)
    gone = {**_stored_report(session, event, uuid), "uuid": uuid, "deleted": True}
    if hard:
        gone["purged"] = True
    return store(session, w, event, {**_head(event), "EventReport": [gone]}, name=name), uuid


# --- tags ----------------------------------------------------------------------------------


def _label(name: str) -> tlp.Tlp | None:
    try:
        return tlp.parse_tag(name).label
    except tlp.TLPError:
        raise InvalidField(
            f"tag {name!r} looks like TLP but is not a TLP label; nothing was stored", field="tag"
        ) from None


@dataclass(slots=True)
class Tagged:
    """A tag change: the element it was made on (``Event`` or ``Attribute``), the caller's
    id for it, and the write (None when nothing changed: a local tag)."""

    kind: str
    public_id: str
    written: Written | None


def _tag_target(session: Session, w: Writer, uuid: str, *, name: str) -> tuple[str, Any, Event]:
    """("Event", event, event) or ("Attribute", attribute row, its event) for a uuid (or
    an id) of the caller's own."""
    # One answer for a missing target and a hidden one, whichever kind it is.
    try:
        event = find_event(session, w.caller, uuid)
        if event is not None:
            return "Event", event, own_event(session, w, uuid, name=name)
        attr = find_attribute(session, w.caller, uuid)
        if attr is not None:
            attr, event = own_attribute(session, w, uuid, name=name)
            return "Attribute", attr, event
    except NotFound:
        pass
    raise NotFound("Invalid Target.")


def attach_tag(session: Session, w: Writer, body: dict[str, Any]) -> Tagged:
    """``tags/attachTagToObject``: a tag on one of the caller's events or attributes. A TLP
    label replaces the element's own one and must not be below the label the element goes
    out with."""
    name = "Could not attach Tag"
    uuid, tag = _tag_request(body)
    kind, target, event = _tag_target(session, w, uuid, name=name)
    public = (
        w.caller.event_id(event.id)
        if kind == "Event"
        else w.caller.ids.public_str("attribute", target.id)
    )
    if truthy(body.get("local", False)):
        return Tagged(kind, public, None)  # local tags never leave the hub: none is kept
    label = _label(tag)
    if kind == "Event":
        current = orjson.loads(event.doc).get("Tag") or []
        effective = event.tlp_rank
    else:
        current = orjson.loads(target.doc).get("Tag") or []
        effective = max(target.tlp_rank, event.tlp_rank)
    entry = {"name": tag}
    if body.get("relationship_type"):
        entry["relationship_type"] = str(body["relationship_type"])
    exact: set[str] = set()
    tags = [*current, entry]
    if label is not None:
        if label.rank < effective:
            raise SaveRefused(
                f"Tag {tag} would lower the element's TLP label ({label_of(effective).tag}): "
                "TLP tags may only make an element stricter.",
                name=name,
            )
        tags = [t for t in current if _label(str(t.get("name"))) is None] + [entry]
        exact = {target.uuid}
    written = _store_tags(session, w, kind, target, event, tags, exact, name=name)
    return Tagged(kind, public, written)


def remove_tag(session: Session, w: Writer, body: dict[str, Any]) -> Tagged:
    """``tags/removeTagFromObject``: a tag off one of the caller's events or attributes;
    a TLP label is never removed (that could lower the element's label)."""
    name = "Could not remove Tag"
    uuid, tag = _tag_request(body)
    kind, target, event = _tag_target(session, w, uuid, name=name)
    public = (
        w.caller.event_id(event.id)
        if kind == "Event"
        else w.caller.ids.public_str("attribute", target.id)
    )
    current = orjson.loads((event if kind == "Event" else target).doc).get("Tag") or []
    kept = [t for t in current if str(t.get("name", "")).casefold() != tag.casefold()]
    if len(kept) == len(current):
        return Tagged(kind, public, None)  # not there (a local tag never is): nothing to do
    _check_removal([tag], name=name)
    written = _store_tags(session, w, kind, target, event, kept, {target.uuid}, name=name)
    return Tagged(kind, public, written)


def _tag_request(body: dict[str, Any]) -> tuple[str, str]:
    uuid = str(body.get("uuid") or "").strip()
    tag = body.get("tag")
    if isinstance(tag, dict):
        tag = tag.get("name")
    if not uuid or not isinstance(tag, str) or not tag.strip():
        raise InvalidField("uuid and tag are required", field="tag")
    return uuid, tag.strip()


def _store_tags(
    session: Session,
    w: Writer,
    kind: str,
    target: Any,
    event: Event,
    tags: list[dict[str, Any]],
    exact: set[str],
    *,
    name: str,
) -> Written:
    if kind == "Event":
        edit = {**_head(event), "Tag": tags}
        return store(session, w, event, edit, name=name, exact_tags=exact)
    edited = {**_doc(target.doc), "uuid": target.uuid, "Tag": tags}
    return store(
        session, w, event, _in_place(session, event, target, edited), name=name, exact_tags=exact
    )


# --- the event itself ----------------------------------------------------------------------


def publish(session: Session, w: Writer, ident: str, *, published: bool) -> Written:
    """``events/publish`` (and ``events/alert``: the hub sends no alert mails) and
    ``events/unpublish``; publishing stamps ``publish_timestamp``."""
    name = "Could not publish Event" if published else "Could not unpublish Event"
    event = own_event(session, w, ident, name=name)
    edit = _head(event, published=published)
    if published:
        edit["publish_timestamp"] = str(int(time.time()))
    return store(session, w, event, edit, name=name)


def delete_event(session: Session, w: Writer, ident: str) -> Written:
    """``events/delete``: every element soft-deleted (so those who had them get the
    deletions) and the event marked deleted by its source, which then no longer sees it."""
    name = "Could not delete Event"
    event = own_event(session, w, ident, name=name)
    state = current_state(session, event)
    edit: dict[str, Any] = {**_head(event, published=None), "deleted": True}
    for key in ("Attribute", "EventReport"):
        edit[key] = [
            {**_strip_stamp(e), "deleted": True}
            for e in state.get(key) or []
            if isinstance(e, dict) and not e.get("deleted")
        ]
    edit["Object"] = [
        {
            **_strip_stamp(o),
            "deleted": True,
            "Attribute": [{**_strip_stamp(a), "deleted": True} for a in o.get("Attribute") or []],
        }
        for o in state.get("Object") or []
        if not o.get("deleted")
    ]
    return store(session, w, event, edit, name=name)


def _strip_stamp(element: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in element.items() if k != "timestamp"}
