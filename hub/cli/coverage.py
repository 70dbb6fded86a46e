"""`hub coverage`: registered and actual coverage (dekkingsgraad) and its trend."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from hub.cli.common import dump, fail, unit_of_work
from hub.vocabulary import (
    PartnerStatus,
    Tier,
)


class CoverageFormat(StrEnum):
    JSON = "json"
    CSV = "csv"


def coverage(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="count as at the end of this day (UTC), YYYY-MM-DD"),
    ] = None,
    format: Annotated[
        CoverageFormat, typer.Option("--format", help="json (with how it was counted) or csv")
    ] = CoverageFormat.JSON,
    actual: Annotated[
        bool,
        typer.Option("--actual", help="actual coverage (what partners did in 30/90 days), JSON"),
    ] = False,
    trend: Annotated[
        int | None,
        typer.Option("--trend", min=1, max=36, help="the monthly series over N months, JSON"),
    ] = None,
    status: Annotated[
        PartnerStatus, typer.Option("--status", help="count partners with this status")
    ] = PartnerStatus.ACTIVE,
    tier: Annotated[Tier | None, typer.Option("--tier", help="count one tier only")] = None,
) -> None:
    """Registered coverage (dekkingsgraad) and its gaps, rebuilt from the partner history."""
    from hub.coverage import actual as activity
    from hub.coverage import service as coverage_service

    if (actual or trend) and format is CoverageFormat.CSV:
        raise fail("CSV is for registered coverage only; --actual and --trend answer JSON", 2)
    with unit_of_work() as session:
        day = coverage_service.parse_as_of(as_of)
        if actual:
            dump(activity.actual(session, as_of=day).model_dump(mode="json"))
        elif trend:
            dump(activity.trend(session, as_of=day, months=trend).model_dump(mode="json"))
        else:
            report = coverage_service.registered(session, as_of=day, status=status, tier=tier)
            if format is CoverageFormat.CSV:
                typer.echo(coverage_service.to_csv(report), nl=False)
            else:
                dump(report.model_dump(mode="json"))
