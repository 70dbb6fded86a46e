"""MISP writes on objects and their references: add, edit (attributes merged by uuid), delete
(the object with its attributes), add a reference, delete a reference (found by uuid among the
caller's own objects)."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidField, NotFound
from hub.misp_compat.edits.base import (
    Writer,
    Written,
    cleaned,
    deletion,
    element_base,
    event_head,
    own_event,
    own_object,
    owned,
    store,
)
from hub.misp_compat.errors import SaveRefused
from hub.models import Attribute, Event, EventObject


def _object_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("Object"), dict):
        inner = dict(body["Object"])
        if "Attribute" in body and "Attribute" not in inner:
            inner["Attribute"] = body["Attribute"]
        body = inner
    if not isinstance(body, dict):
        raise InvalidField("the body must be one MISP object", field="Object")
    out = cleaned(body)
    out["Attribute"] = [cleaned(a) for a in out.get("Attribute") or [] if isinstance(a, dict)]
    refs = []
    for ref in out.get("ObjectReference") or []:
        if isinstance(ref, dict):
            ref = cleaned(ref)
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
    written = store(session, w, event, {**event_head(event), "Object": [obj]}, name=name)
    return written, str(obj["uuid"])


def edit_object(session: Session, w: Writer, ident: str, body: Any) -> tuple[Written, str]:
    """``objects/edit/{id}``: the object's fields sent replace the stored ones; its
    attributes merge by uuid (newer wins, one without a timestamp always), new ones are
    added, none is removed by omission."""
    name = "Could not edit Object"
    obj_row, event = own_object(session, w, ident, name=name)
    sent = _object_body(body)
    stored = element_base(obj_row.doc)
    edited = {**stored, **sent, "uuid": obj_row.uuid}
    return store(
        session, w, event, {**event_head(event), "Object": [edited]}, name=name
    ), obj_row.uuid


def delete_object(
    session: Session, w: Writer, ident: str, *, hard: bool = False
) -> tuple[Written, str]:
    """``objects/delete/{id}``: the object and its attributes deleted (``deletion``)."""
    name = "Could not delete Object"
    obj_row, event = own_object(session, w, ident, name=name)
    if obj_row.deleted and not hard:
        return Written(event, None), obj_row.uuid
    members = session.scalars(select(Attribute.doc).where(Attribute.object_uuid == obj_row.uuid))
    gone = {
        **deletion(obj_row.doc, hard=hard),
        "uuid": obj_row.uuid,
        "Attribute": [deletion(doc, hard=hard) for doc in members],
    }
    return store(
        session, w, event, {**event_head(event), "Object": [gone]}, name=name
    ), obj_row.uuid


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
    ref = cleaned(body)
    ref.pop("source_uuid", None)
    ref.setdefault("uuid", str(uuid_mod.uuid4()))
    ref["object_uuid"] = obj_row.uuid
    if not ref.get("referenced_uuid") or not ref.get("relationship_type"):
        raise InvalidField(
            "a reference needs referenced_uuid and relationship_type", field="referenced_uuid"
        )
    head = {k: v for k, v in element_base(obj_row.doc).items() if k not in ("ObjectReference",)}
    edit = {
        **event_head(event),
        "Object": [{**head, "uuid": obj_row.uuid, "ObjectReference": [ref]}],
    }
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
    owned(session, w, event, name=name, what="Invalid ObjectReference.")
    gone = {k: v for k, v in ref.items() if k not in ("timestamp", "id")}
    gone["deleted"] = True
    head = {k: v for k, v in element_base(obj_row.doc).items() if k != "ObjectReference"}
    edit = {
        **event_head(event),
        "Object": [{**head, "uuid": obj_row.uuid, "ObjectReference": [gone]}],
    }
    return store(session, w, event, edit, name=name)


MAX_SCAN = 50_000
