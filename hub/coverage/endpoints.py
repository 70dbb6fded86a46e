"""Operator REST for coverage: /api/v1/admin/coverage (JSON, or CSV with Accept: text/csv)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from hub.coverage import actual, service
from hub.coverage.schemas import ActualCoverage, CellPartners, CoverageReport, Trend
from hub.errors import NotAcceptable
from hub.routing import HubRoute, OperatorOrAuditor, SessionDep, read_page
from hub.vocabulary import NetworkFunction, PartnerStatus, Region, Sector, Tier

CSV = "text/csv"


def _media(accept: str) -> dict[str, float]:
    """Each media range of an Accept header with its quality."""
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media:
            ranges[media.lower()] = max(quality, ranges.get(media.lower(), 0.0))
    return ranges


def wants_csv(accept: str | None) -> bool:
    """CSV when the client names text/csv at least as gladly as JSON; JSON otherwise."""
    if not accept:
        return False
    ranges = _media(accept)
    csv_q = ranges.get(CSV, 0.0)
    json_q = max(
        [q for m, q in ranges.items() if m == "application/json" or m.endswith("+json")] or [0.0]
    )
    return csv_q > 0 and csv_q >= json_q


class CoverageRoute(HubRoute):
    """JSON, or the same figures as CSV when the client asks for text/csv."""

    def check_media(self, request: Request) -> None:
        accept = request.headers.get("accept")
        if not accept or wants_csv(accept):
            return
        ranges = _media(accept)
        if not any(
            q > 0
            and (m in ("*/*", "application/*", "application/json", "text/*") or m.endswith("+json"))
            for m, q in ranges.items()
        ):
            raise NotAcceptable(f"this route answers application/json or text/csv, not {accept!r}")


router = APIRouter(prefix="/api/v1/admin/coverage", tags=["coverage"], route_class=CoverageRoute)

Status = Annotated[
    PartnerStatus,
    Query(description="count partners with this status (coverage: active, the default)"),
]
TierFilter = Annotated[Tier | None, Query(description="count one tier only")]
AsOf = Annotated[
    str | None,
    Query(
        max_length=40,
        description="count as at the end of this day (UTC), YYYY-MM-DD; default today",
    ),
]


@router.get(
    "",
    response_model=CoverageReport,
    responses={
        200: {
            "content": {CSV: {"schema": {"type": "string"}}},
            "description": "JSON, or CSV with Accept: text/csv",
        }
    },
)
@read_page
def coverage(
    request: Request,
    session: SessionDep,
    who: OperatorOrAuditor,
    as_of: AsOf = None,
    status: Status = PartnerStatus.ACTIVE,
    tier: TierFilter = None,
) -> CoverageReport | Response:
    """Registered coverage: active partners per function × sector × region, and the gaps
    (NIS2 sectors first), rebuilt from the partner history for ``as_of``."""
    report = service.registered(session, as_of=service.parse_as_of(as_of), status=status, tier=tier)
    if wants_csv(request.headers.get("accept")):
        return Response(
            service.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="coverage-{report.as_of}.csv"'},
        )
    return report


@router.get("/partners", response_model=CellPartners)
@read_page
def coverage_partners(
    session: SessionDep,
    who: OperatorOrAuditor,
    as_of: AsOf = None,
    function: NetworkFunction | None = None,
    sector: Sector | None = None,
    region: Region | None = None,
    status: Status = PartnerStatus.ACTIVE,
    tier: TierFilter = None,
) -> CellPartners:
    """Drill-down: the active partners counted in the cells of a function, sector and
    region (leave one out to take a whole row or column)."""
    return service.cell_partners(
        session,
        as_of=service.parse_as_of(as_of),
        function=function,
        sector=sector,
        region=region,
        status=status,
        tier=tier,
    )


@router.get("/actual", response_model=ActualCoverage)
@read_page
def coverage_actual(
    session: SessionDep, who: OperatorOrAuditor, as_of: AsOf = None
) -> ActualCoverage:
    """Actual coverage: per cell, the partners that received, shared, acknowledged or synced
    in the last 30 and 90 days; notification reach per sector and region; constituency reach
    per sector — all as at the end of ``as_of``."""
    return actual.actual(session, as_of=service.parse_as_of(as_of))


@router.get("/trend", response_model=Trend)
@read_page
def coverage_trend(
    session: SessionDep,
    who: OperatorOrAuditor,
    as_of: AsOf = None,
    months: Annotated[int, Query(ge=1, le=36, description="how many months back")] = 12,
) -> Trend:
    """The monthly series: coverage figures at each month's end, replayed from the history."""
    return actual.trend(session, as_of=service.parse_as_of(as_of), months=months)
