"""``/misp`` event reports (reference §7.3): add, edit, delete, view, and the reports of one
event. Writes as new versions of the caller's event, reads through the released view."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from hub.errors import InvalidField, NotFound, recorded
from hub.misp_compat import edits, elements, schemas, service
from hub.misp_compat.endpoints.routes import (
    CallerDep,
    MispRouter,
    carried,
    delete_element,
    filters,
    ident_of,
    write_element,
)
from hub.misp_compat.service import Caller
from hub.models import Event
from hub.responses import JSONResponse
from hub.routing import SessionDep, SettingsDep, read_page

router = MispRouter()


def _released_report(
    request: Request, session: Any, caller: Caller, written: edits.Written, uuid: str
) -> Response:
    if written.held is not None:
        raise recorded(written.held)
    event = written.event
    assert event is not None
    found = elements.reports(
        session, caller, event, uuids=frozenset({uuid}), include_deleted=True, write_answer=True
    )
    if not found.items:
        return JSONResponse(
            {"EventReport": {"uuid": uuid, "event_id": caller.event_id(event.id)}},
            headers=carried(found),
        )
    return JSONResponse({"EventReport": found.items[0]}, headers=carried(found))


@router.ident_route(
    ["POST"],
    "/eventReports/add",
    "/event_reports/add",
    param="eventId",
    model=schemas.MispReportAnswer,
    body=schemas.REPORT_IN,
    responses=schemas.SAVE_REFUSED,
)
def add_report(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return write_element(
        request,
        session,
        caller,
        settings,
        change=edits.add_report,
        answer=_released_report,
        name="Could not add Event Report",
    )


@router.ident_route(
    ["POST", "PUT"],
    "/eventReports/edit",
    "/event_reports/edit",
    param="eventReportId",
    model=schemas.MispReportAnswer,
    body=schemas.REPORT_IN,
    responses=schemas.SAVE_REFUSED,
)
def edit_report(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return write_element(
        request,
        session,
        caller,
        settings,
        change=edits.edit_report,
        answer=_released_report,
        name="Could not edit Event Report",
    )


@router.ident_route(
    ["POST", "DELETE"],
    "/eventReports/delete",
    "/event_reports/delete",
    param="eventReportId",
    model=schemas.MispSaved,
    body=schemas.DELETE_IN,
    responses=schemas.SAVE_REFUSED,
)
def delete_report(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    return delete_element(
        request,
        session,
        caller,
        settings,
        delete=edits.delete_report,
        message=lambda uuid: f"Event Report {uuid} soft deleted",
        name="Could not delete Event Report",
    )


@router.ident_route(
    ["GET"],
    "/eventReports/view",
    "/event_reports/view",
    param="eventReportId",
    model=schemas.MispReportAnswer,
)
@read_page
def view_report(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    row = service.find_report(session, caller, ident_of(request))
    event = session.get(Event, row.event_id) if row is not None else None
    found = (
        elements.reports(session, caller, event, uuids=frozenset({row.uuid}))
        if row is not None and event is not None
        else elements.Released()
    )
    if not found.items:
        raise recorded(NotFound("Invalid Event Report"))
    return JSONResponse({"EventReport": found.items[0]}, headers=carried(found))


@router.misp_route(
    ["GET", "POST"],
    "/eventReports/index",
    "/event_reports/index",
    tail=True,
    model=list[schemas.MispReportAnswer],
    body=schemas.FILTERS,
)
@read_page
def report_index(request: Request, session: SessionDep, caller: CallerDep) -> Response:
    """The reports of one event (``event_id:N``, by id or uuid) the caller receives, as
    ``[{"EventReport": …}]``; the hub lists reports per event only."""
    body = filters(request)
    ident = str(body.get("event_id") or body.get("eventid") or "")
    event = service.find_event(session, caller, ident) if ident else None
    if event is None:
        if not ident:
            raise InvalidField("name the event: eventReports/index/event_id:<id>", field="event_id")
        return JSONResponse([])
    found = elements.reports(session, caller, event)
    return JSONResponse([{"EventReport": r} for r in found.items], headers=carried(found))
