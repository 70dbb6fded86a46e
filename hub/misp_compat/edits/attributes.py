"""MISP writes on attributes: add (one or a list; a duplicate refused or, with
``breakOnDuplicate:0``, touched), edit (tags marked ``deleted`` removed, never a TLP label) and
delete (soft or hard)."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.errors import InvalidField
from hub.misp_compat.edits.base import (
    Writer,
    Written,
    check_removal,
    cleaned,
    deletion,
    element_base,
    event_head,
    in_place,
    own_attribute,
    own_event,
    store,
)
from hub.misp_compat.errors import SaveRefused
from hub.misp_compat.params import truthy
from hub.models import Attribute, Event


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
        attr = cleaned(item)
        attr.setdefault("uuid", str(uuid_mod.uuid4()))
        same = _similar(existing, attr)
        if same is not None:
            if break_on_duplicate:
                errors[f"attribute_{i}"] = {"value": [DUPLICATE]}
                continue
            attr = {**element_base(same.doc), **{k: v for k, v in attr.items() if k != "uuid"}}
        stored.append(attr)
    if not stored:
        if len(items) == 1:
            raise SaveRefused(DUPLICATE, name=name, errors={"value": [DUPLICATE]})
        raise SaveRefused(DUPLICATE, name=name, errors=errors)
    written = store(session, w, event, {**event_head(event), "Attribute": stored}, name=name)
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
    sent = cleaned(body)
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
    edited = {**element_base(attr.doc), **sent, "uuid": attr.uuid}
    removed = _deleted_tags(edited)
    exact = {attr.uuid} if removed else set()
    if removed:
        check_removal(removed, name=name)
    written = store(
        session, w, event, in_place(session, event, attr, edited), name=name, exact_tags=exact
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


def delete_attribute(
    session: Session, w: Writer, ident: str, *, hard: bool = False
) -> tuple[Written, str]:
    """``attributes/delete/{id}`` (soft, or hard with ``{"hard": 1}``, see ``deletion``);
    deleting what is deleted already changes nothing."""
    name = "Could not delete Attribute"
    attr, event = own_attribute(session, w, ident, name=name)
    if attr.deleted and not hard:
        return Written(event, None), attr.uuid
    edited = {**deletion(attr.doc, hard=hard), "uuid": attr.uuid}
    return store(session, w, event, in_place(session, event, attr, edited), name=name), attr.uuid
