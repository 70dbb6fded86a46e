"""MISP writes on the event itself: publish and unpublish, delete (every element soft-deleted
so those who had them get the deletions)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from hub.intel.snapshots import current_state
from hub.misp_compat.edits.base import Writer, Written, event_head, own_event, store


def publish(session: Session, w: Writer, ident: str, *, published: bool) -> Written:
    """``events/publish`` (and ``events/alert``: the hub sends no alert mails) and
    ``events/unpublish``; publishing stamps ``publish_timestamp``."""
    name = "Could not publish Event" if published else "Could not unpublish Event"
    event = own_event(session, w, ident, name=name)
    edit = event_head(event, published=published)
    if published:
        edit["publish_timestamp"] = str(int(time.time()))
    return store(session, w, event, edit, name=name)


def delete_event(session: Session, w: Writer, ident: str) -> Written:
    """``events/delete``: every element soft-deleted (so those who had them get the
    deletions) and the event marked deleted by its source, which then no longer sees it."""
    name = "Could not delete Event"
    event = own_event(session, w, ident, name=name)
    state = current_state(session, event)
    edit: dict[str, Any] = {**event_head(event, published=None), "deleted": True}
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
