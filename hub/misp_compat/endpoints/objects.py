"""``/misp`` MISP objects and their references (reference §7.3): add, edit, delete, view (and
its HEAD probe), ``restSearch`` of objects, add and delete a reference. Writes as new
versions of the caller's event, reads through the released view."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy import select

from hub.errors import NotFound, recorded
from hub.misp_compat import edits, elements, schemas, search, service
from hub.misp_compat.endpoints.routes import (
    CallerDep,
    MispRouter,
    carried,
    delete_element,
    filters,
    head_answer,
    ident_of,
    json_body,
    saved,
    write,
    write_element,
)
from hub.misp_compat.service import Caller
from hub.models import Event, EventObject
from hub.responses import JSONResponse
from hub.routing import SessionDep, SettingsDep, read_page

router = MispRouter()


def _released_object(
    request: Request, session: Any, caller: Caller, written: edits.Written, uuid: str
) -> Response:
    if written.held is not None:
        raise recorded(written.held)
    obj = session.scalar(select(EventObject).where(EventObject.uuid == uuid))
    found = elements.objects(
        session, caller, [(obj, written.event)], include_deleted=True, write_answer=True
    )
    if not found.items:
        return JSONResponse({"Object": {"uuid": uuid}}, headers=carried(found))
    return JSONResponse({"Object": found.items[0]}, headers=carried(found))


@router.ident_route(
    ["POST"],
    "/objects/add",
    param="eventId",
    model=schemas.MispObjectAnswer,
    body=schemas.OBJECT_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_object(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return write_element(
        request,
        session,
        caller,
        settings,
        change=edits.add_object,
        answer=_released_object,
        name="Could not add Object",
    )


@router.ident_route(
    ["POST", "PUT"],
    "/objects/edit",
    param="objectId",
    model=schemas.MispObjectAnswer,
    body=schemas.OBJECT_IN,
    responses=schemas.SAVE_REFUSED,
)
def edit_object(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return write_element(
        request,
        session,
        caller,
        settings,
        change=edits.edit_object,
        answer=_released_object,
        name="Could not edit Object",
    )


@router.ident_route(
    ["POST", "DELETE"],
    "/objects/delete",
    param="objectId",
    model=schemas.MispSaved,
    body=schemas.DELETE_IN,
    responses=schemas.SAVE_REFUSED,
)
def delete_object(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return delete_element(
        request,
        session,
        caller,
        settings,
        delete=edits.delete_object,
        message=lambda _uuid: "Object deleted",
        name="Could not delete Object",
    )


@router.ident_route(
    ["GET", "HEAD"], "/objects/view", param="objectId", model=schemas.MispObjectAnswer
)
@read_page
def view_object(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """One MISP object (whole) as the caller receives it; HEAD answers 200 or 404 only."""
    obj = service.find_object(session, caller, ident_of(request))
    event = session.get(Event, obj.event_id) if obj is not None else None
    found = (
        elements.objects(session, caller, [(obj, event)])
        if obj is not None and event is not None
        else elements.Released()
    )
    if request.method == "HEAD":
        return head_answer(found)
    if not found.items:
        raise recorded(NotFound("Invalid object"))
    return JSONResponse({"Object": found.items[0]}, headers=carried(found))


@router.misp_route(
    ["POST"], "/objects/restSearch", tail=True, model=schemas.MispObjectSearch, body=schemas.FILTERS
)
@read_page
def search_objects(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """Objects the caller receives, by ``object_name``, uuid, event or attribute filters; a
    bounded page (``limit`` default 100, at most 1000)."""
    body = filters(request)
    search.json_only(body)
    found = elements.search_objects(session, caller, body)
    return JSONResponse(
        {"response": [{"Object": o} for o in found.items]},
        headers={"X-Result-Count": str(len(found.items)), **carried(found)},
    )


@router.misp_route(
    ["POST"],
    "/objectReferences/add",
    "/object_references/add",
    tail=True,
    model=schemas.MispReferenceAnswer,
    body=schemas.REFERENCE_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_reference(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    body = json_body(request)

    def do(w: edits.Writer) -> Response:
        written, ref = edits.add_reference(session, w, body)
        if written.held is not None:
            raise recorded(written.held)
        obj = session.scalar(select(EventObject).where(EventObject.uuid == ref["object_uuid"]))
        event = written.event
        assert obj is not None and event is not None
        out = {
            **ref,
            "source_uuid": ref["object_uuid"],
            "object_id": caller.ids.public_str("object", obj.id),
            "event_id": caller.event_id(event.id),
            "deleted": False,
        }
        return JSONResponse({"ObjectReference": out})

    return write(request, session, caller, settings, do, name="Could not add ObjectReference")


@router.ident_route(
    ["POST", "DELETE"],
    "/objectReferences/delete",
    "/object_references/delete",
    param="objectReferenceId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def delete_reference(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """A reference of one of the caller's objects, by uuid (references have no numbers)."""
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.delete_reference(session, w, ident)
        if written.held is not None:
            raise recorded(written.held)
        return saved(request, "ObjectReference deleted")

    return write(request, session, caller, settings, do, name="Could not delete ObjectReference")
