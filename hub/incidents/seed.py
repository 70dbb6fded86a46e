"""The reporting-obligation rows shipped with the package (``data/reporting_obligations.json``,
its sources named there): the migration seeds the table from them; operators maintain it
afterwards."""

from __future__ import annotations

import json
from datetime import datetime
from importlib import resources
from typing import Any

DATA = "data/reporting_obligations.json"


def obligation_rows(now: datetime) -> list[dict[str, Any]]:
    """Rows for ``reporting_obligations``, each with its sources written out."""
    doc = json.loads(resources.files("hub.incidents").joinpath(DATA).read_text(encoding="utf-8"))
    rows = []
    for row in doc["obligations"]:
        sources = "; ".join(doc["sources"][key.strip()] for key in row["source"].split(";"))
        rows.append({**row, "source": sources[:500], "updated_at": now, "updated_by": "seed"})
    return rows
