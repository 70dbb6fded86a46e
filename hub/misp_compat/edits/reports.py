"""MISP writes on event reports: add, edit, delete (soft or hard)."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

import orjson
from sqlalchemy.orm import Session

from hub.errors import InvalidField, NotFound
from hub.misp_compat.edits.base import (
    ID_KEYS,
    Writer,
    Written,
    cleaned,
    event_head,
    own_event,
    own_report,
    store,
)
from hub.models import Event


def _report_body(body: Any) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("EventReport"), dict):
        body = body["EventReport"]
    if not isinstance(body, dict):
        raise InvalidField("the body must be one event report", field="EventReport")
    return cleaned(body)


def add_report(session: Session, w: Writer, event_ident: str, body: Any) -> tuple[Written, str]:
    """``eventReports/add/{event}``: a new report (name, content)."""
    name = "Could not add Event Report"
    event = own_event(session, w, event_ident, name=name)
    report = _report_body(body)
    report.setdefault("uuid", str(uuid_mod.uuid4()))
    written = store(session, w, event, {**event_head(event), "EventReport": [report]}, name=name)
    return written, str(report["uuid"])


def _stored_report(session: Session, event: Event, uuid: str) -> dict[str, Any]:
    for report in orjson.loads(event.doc).get("EventReport") or []:
        if isinstance(report, dict) and report.get("uuid") == uuid:
            out = dict(report)
            for key in (*ID_KEYS, "timestamp"):
                out.pop(key, None)
            return out
    raise NotFound("Invalid Event Report.")


def edit_report(session: Session, w: Writer, ident: str, body: Any) -> tuple[Written, str]:
    """``eventReports/edit/{id}``: the fields sent replace the stored ones."""
    name = "Could not edit Event Report"
    uuid, event = own_report(session, w, ident, name=name)
    edited = {**_stored_report(session, event, uuid), **_report_body(body), "uuid": uuid}
    edited.pop("timestamp", None)
    return store(session, w, event, {**event_head(event), "EventReport": [edited]}, name=name), uuid


def delete_report(
    session: Session, w: Writer, ident: str, *, hard: bool = False
) -> tuple[Written, str]:
    """``eventReports/delete/{id}`` (soft, or hard: ``deletion``)."""
    name = "Could not delete Event Report"
    uuid, event = own_report(session, w, ident, name=name)
    gone = {**_stored_report(session, event, uuid), "uuid": uuid, "deleted": True}
    if hard:
        gone["purged"] = True
    return store(session, w, event, {**event_head(event), "EventReport": [gone]}, name=name), uuid
