"""/health (public: liveness and database readiness) and /metrics (operator or auditor)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from hub import __version__
from hub.errors import ErrorBody
from hub.ops import backlog
from hub.responses import JSONResponse
from hub.routing import HubRoute, OperatorOrAuditor, SessionDep, public, read_page

router = APIRouter(tags=["operations"], route_class=HubRoute)
log = logging.getLogger("hub.health")


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when the database does not answer")
    database: str
    version: str


@router.get(
    "/health",
    dependencies=[Depends(public)],
    response_model=Health,
    responses={503: {"model": Health | ErrorBody, "description": "The database does not answer"}},
)
def health(session: SessionDep) -> Response:
    """Liveness and database readiness; 503 when the database does not answer."""
    try:
        session.execute(text("SELECT 1"))
        database = "ok"
    except SQLAlchemyError as err:
        log.warning("database not ready: %s", err)
        database = "unavailable"
    ok = database == "ok"
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "database": database, "version": __version__},
        status_code=200 if ok else 503,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
@read_page
def metrics(request: Request, session: SessionDep, who: OperatorOrAuditor) -> Response:
    """Prometheus text format: this process's requests by route and status, latency and
    authentication failures; and the worker's state, read from the database (connection runs,
    attempts, backoff, dead letters, push outbox, notification queues, STIX backlog, audit
    indexes: ``hub.ops.backlog``)."""
    body = generate_latest(request.app.state.metrics.registry) + backlog.exposition(session)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
