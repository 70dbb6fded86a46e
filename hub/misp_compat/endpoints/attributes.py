"""``/misp`` attributes (reference §7.3): add, edit, delete, view (and its HEAD probe) and the
paged index. Writes go through ingest as a new version of the caller's event
(``hub.misp_compat.edits``); reads through the released view (``elements``), one audit entry
per answer."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy import select

from hub.errors import NotFound, recorded
from hub.misp_compat import edits, elements, schemas, service
from hub.misp_compat.endpoints.routes import (
    CallerDep,
    MispRouter,
    carried,
    delete_element,
    filters,
    head_answer,
    ident_of,
    json_body,
    url_params,
    write,
    write_element,
)
from hub.misp_compat.params import truthy
from hub.misp_compat.service import Caller
from hub.models import Attribute, Event
from hub.responses import JSONResponse
from hub.routing import SessionDep, SettingsDep, read_page

router = MispRouter()


def _released_attribute(
    request: Request, session: Any, caller: Caller, written: edits.Written, uuid: str
) -> Response:
    """The answer to an attribute write: the attribute as the caller now receives it."""
    if written.held is not None:
        raise recorded(written.held)
    attr = session.scalar(select(Attribute).where(Attribute.uuid == uuid))
    event = written.event
    found = elements.attributes(
        session, caller, [(attr, event)], include_deleted=True, write_answer=True
    )
    if not found.items:  # stored, not released over /misp even to its source: RED never
        # travels in MISP sync (DESIGN.md §3), nor does what is held in quarantine
        return JSONResponse(
            {"Attribute": {"uuid": uuid, "event_id": caller.event_id(event.id)}},  # type: ignore[union-attr]
            headers=carried(found),
        )
    return JSONResponse({"Attribute": found.items[0]}, headers=carried(found))


@router.ident_route(
    ["POST"],
    "/attributes/add",
    param="eventId",
    model=schemas.MispAttributeAnswer,
    body=schemas.ATTRIBUTE_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_attribute(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """One attribute (or a list) on one of the caller's events; a value already in the
    event is refused as MISP refuses it, or touched with ``breakOnDuplicate:0``."""
    _, named = url_params(request)
    body = json_body(request)
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written, uuids, errors = edits.add_attributes(
            session,
            w,
            ident,
            body,
            break_on_duplicate=truthy(named.get("breakOnDuplicate", True)),
        )
        if written.held is not None:
            raise recorded(written.held)
        if not isinstance(body, list):
            return _released_attribute(request, session, caller, written, uuids[0])
        rows = session.execute(
            select(Attribute, Event)
            .join(Event, Event.id == Attribute.event_id)
            .where(Attribute.uuid.in_(uuids))
            .order_by(Attribute.id)
        ).all()
        found = elements.attributes(session, caller, [(a, e) for a, e in rows], write_answer=True)
        out: dict[str, Any] = {
            "Attribute": found.items[0] if len(found.items) == 1 else found.items
        }
        if errors:
            out["errors"] = errors
        return JSONResponse(out, headers=carried(found))

    return write(request, session, caller, settings, do, name="Could not add Attribute")


@router.ident_route(
    ["POST", "PUT"],
    "/attributes/edit",
    param="attributeId",
    model=schemas.MispAttributeAnswer,
    body=schemas.ATTRIBUTE_IN,
    responses=schemas.SAVE_REFUSED,
)
def edit_attribute(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return write_element(
        request,
        session,
        caller,
        settings,
        change=edits.edit_attribute,
        answer=_released_attribute,
        name="Could not edit Attribute",
    )


@router.ident_route(
    ["POST", "DELETE"],
    "/attributes/delete",
    param="attributeId",
    model=schemas.MispSaved,
    body=schemas.DELETE_IN,
    responses=schemas.SAVE_REFUSED,
)
def delete_attribute(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return delete_element(
        request,
        session,
        caller,
        settings,
        delete=edits.delete_attribute,
        message=lambda _uuid: "Attribute deleted.",
        name="Could not delete Attribute",
    )


@router.ident_route(
    ["GET", "HEAD"], "/attributes/view", param="attributeId", model=schemas.MispAttributeAnswer
)
@read_page
def view_attribute(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """One attribute as the caller receives it; HEAD answers 200 or 404 only
    (``attribute_exists``)."""
    attr = service.find_attribute(session, caller, ident_of(request))
    event = session.get(Event, attr.event_id) if attr is not None else None
    found = (
        elements.attributes(session, caller, [(attr, event)])
        if attr is not None and event is not None
        else elements.Released()
    )
    if request.method == "HEAD":
        return head_answer(found)
    if not found.items:
        raise recorded(NotFound("Invalid attribute"))
    return JSONResponse({"Attribute": found.items[0]}, headers=carried(found))


@router.misp_route(
    ["GET", "POST"],
    "/attributes/index",
    tail=True,
    model=list[schemas.MispAttribute],
    body=schemas.FILTERS,
)
@read_page
def attribute_index(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Every attribute the caller receives, a bounded page at a time (``limit`` default
    100, at most 1000; ``page``)."""
    found = elements.attribute_index(session, caller, filters(request))
    return JSONResponse(found.items, headers=carried(found))
