"""Cleaning a whole event for one recipient, in place: what never leaves the hub is cut
(DESIGN.md §3, "What leaves the hub"), withdrawn elements are kept only for those who had
them, sharing groups are shown as their members may see them and sightings are rebuilt from
the store (anonymised unless they are the recipient's own). Used by ``hub.sharing.events``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.intel.snapshots import group_id
from hub.models import Event, Sighting
from hub.sharing.recipients import Recipient
from hub.sharing.records import is_tlp_tag
from tlp.misp_read import without_producers

_EVENT_NEVER = (
    "ShadowAttribute",
    "Sighting",
    "RelatedEvent",
    "event_creator_email",
    "Org",
    "deleted",
)
_ELEMENT_NEVER = ("ShadowAttribute", "Sighting", "RelatedAttribute")
_GROUP_KEEP = ("uuid", "name", "description", "releasability")


def never(_uuid: str) -> bool:
    """Keep no withdrawn element."""
    return False


def always(_uuid: str) -> bool:
    """Keep every withdrawn element (the event's creator)."""
    return True


def visible(
    state: dict[str, Any], keep: Callable[[str], bool], *, creator: bool = False
) -> set[str]:
    """Cut the loaded state down to what may be decided for the recipient, in place: live
    elements, and the deleted ones ``keep`` admits (not, for their creator, those it
    deleted hard: ``purged``); strip what never leaves. Returns the uuids of the deleted
    elements kept."""
    for key in _EVENT_NEVER:
        state.pop(key, None)
    deleted: set[str] = set()

    def element(item: dict[str, Any]) -> bool:
        for key in _ELEMENT_NEVER:
            if key in item:
                del item[key]
        if item.get("deleted"):
            purged = item.pop("purged", False)
            if not keep(item["uuid"]) or (purged and creator):
                return False
            deleted.add(item["uuid"])
        return True

    attributes = state.get("Attribute") or []
    if any(a.get("deleted") or "ShadowAttribute" in a or "Sighting" in a for a in attributes):
        state["Attribute"] = [a for a in attributes if element(a)]
    objects = []
    for obj in state.get("Object") or []:
        if not element(obj):
            continue
        if obj.get("deleted"):  # a deleted object goes (to those who had it) with all of it
            for attr in obj.get("Attribute") or []:
                deleted.add(attr["uuid"])
                attr.pop("purged", None)
                for key in _ELEMENT_NEVER:
                    attr.pop(key, None)
        else:
            obj["Attribute"] = [a for a in obj.get("Attribute") or [] if element(a)]
        objects.append(obj)
    state["Object"] = objects
    if "EventReport" in state:
        state["EventReport"] = [r for r in state["EventReport"] or [] if element(r)]
    return deleted


def empty_event(state: dict[str, Any], tlp_rank: int) -> dict[str, Any]:
    """The event's head with no elements, under its own label (``tlp_rank``, the event
    row's): what its creator sees of an event with nothing live in it."""
    head = {k: v for k, v in state.items() if k not in ("Attribute", "Object", "EventReport")}
    tags = [
        t
        for t in head.get("Tag") or []
        if isinstance(t, dict) and not is_tlp_tag(t) and not t.get("local")
    ]
    label = tlp.Tlp.from_rank(tlp_rank)
    head["Tag"] = [*tags, {"name": label.tag, "local": False}]
    head["Attribute"], head["Object"] = [], []
    return head


def finish(
    session: Session,
    body: dict[str, Any],
    event: Event,
    recipient: Recipient,
    *,
    hide_creator: bool,
) -> int:
    """Sightings (anonymised), sharing groups (members only, stable ids), producer tags of a
    TLP:EX:CHR event: on the released event, in place. Returns the live attributes it holds."""
    holds = bool(body.get("Attribute")) or any(o.get("Attribute") for o in body.get("Object") or [])
    return finish_with(
        body,
        event.uuid,
        recipient,
        hide_creator=hide_creator,
        sightings=sighting_rows(session, event) if holds else [],
    )


def finish_with(
    body: dict[str, Any],
    event_uuid: str,
    recipient: Recipient,
    *,
    hide_creator: bool,
    sightings: list[tuple[Any, ...]],
) -> int:
    """``finish`` with the event's sighting rows (``sighting_rows``) read beforehand: no
    database work, so it can run in another process (``hub.sharing.rendered``)."""
    attrs: dict[str, dict[str, Any]] = {}
    count = 0
    for attr in body.get("Attribute") or []:
        attrs[attr["uuid"]] = attr
        count += not attr.get("deleted")
        if "SharingGroup" in attr:
            _group(attr, hide_creator)
    for obj in body.get("Object") or []:
        if "SharingGroup" in obj:
            _group(obj, hide_creator)
        for attr in obj.get("Attribute") or []:
            attrs[attr["uuid"]] = attr
            count += not (attr.get("deleted") or obj.get("deleted"))
            if "SharingGroup" in attr:
                _group(attr, hide_creator)
    for report in body.get("EventReport") or []:
        if "SharingGroup" in report:
            _group(report, hide_creator)
    if "SharingGroup" in body:
        _group(body, hide_creator)
    if hide_creator:  # TLP:EX:CHR: nothing that names the producer
        without_producers(body)
        for attr in attrs.values():
            without_producers(attr)
    for attribute_uuid, sighting in _sightings(sightings, event_uuid, recipient, attrs):
        attrs[attribute_uuid].setdefault("Sighting", []).append(sighting)
    return count


def _org(org: Any) -> dict[str, str] | None:
    if not isinstance(org, dict) or not org.get("uuid"):
        return None
    return {"uuid": str(org["uuid"]), "name": str(org.get("name") or "")}


def _group(element: dict[str, Any], hide_creator: bool) -> None:
    """The sharing group as its members may see it: who is in it (unless that would name a
    TLP:EX:CHR creator), never the source's servers or numbers."""
    group = element.get("SharingGroup")
    if not isinstance(group, dict):
        element.pop("SharingGroup", None)
        return
    clean: dict[str, Any] = {k: group[k] for k in _GROUP_KEEP if k in group}
    gid = group_id(group)
    clean["id"] = gid
    if not hide_creator:
        owner = _org(group.get("Organisation"))
        if owner is not None:
            clean["Organisation"] = owner
        clean["SharingGroupOrg"] = [
            {"Organisation": org}
            for org in (
                _org((e or {}).get("Organisation")) for e in group.get("SharingGroupOrg") or []
            )
            if org is not None
        ]
    element["SharingGroup"] = clean
    element["sharing_group_id"] = gid


def sighting_rows(session: Session, event: Event) -> list[tuple[Any, ...]]:
    """The event's stored sightings, in order: (uuid, attribute uuid, organisation uuid,
    type, date, document)."""
    return [
        tuple(row)
        for row in session.execute(
            select(
                Sighting.uuid,
                Sighting.attribute_uuid,
                Sighting.org_uuid,
                Sighting.type,
                Sighting.date_sighting,
                Sighting.doc,
            )
            .where(Sighting.event_id == event.id)
            .order_by(Sighting.id)
        )
    ]


def _sightings(
    rows: list[tuple[Any, ...]],
    event_uuid: str,
    recipient: Recipient,
    attrs: dict[str, dict[str, Any]],
) -> list[tuple[str, dict[str, Any]]]:
    """The sightings on the released attributes: the recipient's own with its organisation,
    everyone else's anonymised (no organisation, no source text)."""
    if not attrs:
        return []
    out = []
    for uuid, attribute_uuid, org_uuid, kind, date_sighting, doc in rows:
        if attribute_uuid not in attrs:
            continue
        sighting: dict[str, Any] = {
            "uuid": uuid,
            "type": str(kind),
            "date_sighting": str(date_sighting),
            "attribute_uuid": attribute_uuid,
            "event_uuid": event_uuid,
            "org_id": "0",
        }
        if org_uuid == recipient.org_uuid:
            sighting["source"] = str(orjson.loads(doc).get("source") or "")
            sighting["Organisation"] = {"uuid": recipient.org_uuid, "name": recipient.name}
        out.append((attribute_uuid, sighting))
    return out
