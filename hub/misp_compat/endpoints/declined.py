"""``/misp`` calls of MISP sync the hub does not take part in (reference §2.5-2.7):
proposals, custom galaxy clusters, analyst data and the event-report probe, answered so a
MISP skips them quietly."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from hub.misp_compat import schemas
from hub.misp_compat.endpoints.routes import MispRouter
from hub.responses import JSONResponse
from hub.routing import PartnerKey

router = MispRouter()


@router.misp_route(
    ["GET"],
    "/shadow_attributes/index",
    "/shadowAttributes/index",
    tail=True,
    model=list[dict[str, Any]],
)
def proposals(who: PartnerKey) -> Response:
    """Proposals are not shared through the hub: an empty list ends MISP's paging."""
    return JSONResponse([])


@router.misp_route(
    ["POST"],
    "/events/pushProposals/{eventId}",
    model=schemas.MispProposalsPush,
    body=schemas.ANY_JSON,
)
def push_proposals(who: PartnerKey) -> Response:
    return JSONResponse({"success": True, "message": "Nothing to update.", "counter": 0})


@router.misp_route(
    ["POST"],
    "/galaxy_clusters/restSearch",
    "/galaxyClusters/restSearch",
    tail=True,
    model=schemas.MispEmptyResponse,
    body=schemas.FILTERS,
)
def galaxy_clusters(who: PartnerKey) -> Response:
    """Custom galaxy clusters are not synced (galaxies travel as ``misp-galaxy:`` tags)."""
    return JSONResponse({"response": []})


@router.misp_route(
    ["POST"],
    "/analyst_data/indexMinimal",
    "/analystData/indexMinimal",
    "/analyst_data/filterAnalystDataForPush",
    "/analystData/filterAnalystDataForPush",
    tail=True,
    model=list[Any],
    body=schemas.ANY_JSON,
)
def analyst_data(who: PartnerKey) -> Response:
    """Analyst data is off (``perm_analyst_data: false``); an empty answer if asked anyway."""
    return JSONResponse([])


@router.misp_route(["GET"], "/eventReports/add", "/event_reports/add", model=schemas.MispProbe)
def event_reports_probe(who: PartnerKey) -> Response:
    """The push-time probe: a ``description`` tells the pushing MISP to include event
    reports in the events it sends (Event.php:1240-1289)."""
    return JSONResponse(
        {
            "name": "Add Event Report",
            "description": "Event reports travel inside the events pushed to /events/add.",
            "url": "/eventReports/add",
        }
    )
