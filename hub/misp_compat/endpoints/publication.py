"""``/misp`` publication (reference §7.3): publish, unpublish and delete one of the caller's
events, each a new version through ingest."""

from __future__ import annotations

from fastapi import Request, Response

from hub.errors import recorded
from hub.misp_compat import edits, schemas
from hub.misp_compat.endpoints.routes import CallerDep, MispRouter, ident_of, saved, write
from hub.routing import SessionDep, SettingsDep

router = MispRouter()


@router.ident_route(
    ["POST"],
    "/events/publish",
    "/events/alert",
    param="eventId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def publish_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Publish one of the caller's events (``events/alert`` too: the hub sends no alert
    mails); stamps ``publish_timestamp``."""
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.publish(session, w, ident, published=True)
        if written.held is not None:
            raise recorded(written.held)
        event_id = caller.event_id(written.event.id)  # type: ignore[union-attr]
        return saved(request, "Event published without alerts", id=event_id)

    return write(request, session, caller, settings, do, name="Could not publish Event")


@router.ident_route(
    ["POST"],
    "/events/unpublish",
    param="eventId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def unpublish_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.publish(session, w, ident, published=False)
        if written.held is not None:
            raise recorded(written.held)
        event_id = caller.event_id(written.event.id)  # type: ignore[union-attr]
        return saved(request, "Event unpublished.", id=event_id)

    return write(request, session, caller, settings, do, name="Could not unpublish Event")


@router.ident_route(
    ["POST", "DELETE"],
    "/events/delete",
    param="eventId",
    model=schemas.MispSaved,
    responses=schemas.SAVE_REFUSED,
)
def delete_event(
    request: Request, session: SessionDep, caller: CallerDep, settings: SettingsDep
) -> Response:
    """Delete one of the caller's events: its elements are withdrawn (those who had them get
    the deletions) and the caller no longer sees it."""
    ident = ident_of(request)

    def do(w: edits.Writer) -> Response:
        written = edits.delete_event(session, w, ident)
        if written.held is not None:
            raise recorded(written.held)
        return saved(request, "Event deleted.", id=caller.event_id(written.event.id))  # type: ignore[union-attr]

    return write(request, session, caller, settings, do, name="Could not delete Event")
