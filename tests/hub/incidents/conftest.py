"""Every test starts from empty tables: put back the reporting obligations the migration
seeds (the same rows, from the package's data file)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, insert, select

from hub.incidents.seed import obligation_rows
from hub.models import ReportingObligation
from hub.models.base import utcnow


@pytest.fixture(autouse=True)
def seeded_obligations(engine: Engine) -> Iterator[None]:
    with engine.begin() as conn:
        if not conn.scalar(select(func.count()).select_from(ReportingObligation)):
            conn.execute(insert(ReportingObligation), obligation_rows(utcnow()))
    yield
