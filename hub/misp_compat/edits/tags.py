"""MISP tag writes: attach a tag to one of the caller's events or attributes (a TLP label
replaces the element's own and may only make it stricter; a local tag is kept nowhere) and
remove one (never a TLP label)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

from hub.errors import InvalidField, NotFound
from hub.misp_compat.edits.base import (
    Writer,
    Written,
    check_removal,
    element_base,
    event_head,
    in_place,
    own_attribute,
    own_event,
    store,
    tlp_label,
)
from hub.misp_compat.errors import SaveRefused
from hub.misp_compat.params import truthy
from hub.misp_compat.service import find_attribute, find_event
from hub.models import Event
from hub.sharing.records import label_of


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
    label = tlp_label(tag)
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
        tags = [t for t in current if tlp_label(str(t.get("name"))) is None] + [entry]
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
    check_removal([tag], name=name)
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
        edit = {**event_head(event), "Tag": tags}
        return store(session, w, event, edit, name=name, exact_tags=exact)
    edited = {**element_base(target.doc), "uuid": target.uuid, "Tag": tags}
    return store(
        session, w, event, in_place(session, event, target, edited), name=name, exact_tags=exact
    )
