"""The rows coverage is counted from: the partner history, replayed in the order it happened."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.models import Partner, PartnerChange


def history_before(session: Session, *, before: datetime) -> Iterator[Any]:
    """Every recorded change to every partner strictly before ``before``, per partner in the
    order the changes were made: ``(partner_id, uuid, is_hub_org, changed_at, changes)``."""
    stmt = (
        select(
            PartnerChange.partner_id,
            Partner.uuid,
            Partner.is_hub_org,
            PartnerChange.changed_at,
            PartnerChange.changes,
        )
        .join(Partner, Partner.id == PartnerChange.partner_id)
        .where(PartnerChange.changed_at < before)
        .order_by(PartnerChange.changed_at, PartnerChange.id)
    )
    yield from session.execute(stmt)
