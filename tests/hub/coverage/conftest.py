"""A partner history laid out over past dates: what happened inside ``timeline.at(day)`` is
recorded as having happened at noon (UTC) that day, as it would have been had it been done then."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.db import session_scope
from hub.models import Partner, PartnerChange
from hub.partners import service as partners
from hub.partners.schemas import PartnerCreate, PartnerUpdate
from hub.vocabulary import PartnerStatus


class Timeline:
    def __init__(self, maker: sessionmaker[Session]) -> None:
        self.maker = maker

    @contextmanager
    def at(self, day: str, *, hour: int = 12) -> Iterator[None]:
        with self.maker() as s:
            before = s.scalar(select(func.max(PartnerChange.id))) or 0
        yield
        moment = datetime.combine(date.fromisoformat(day), time(hour), tzinfo=UTC)
        with session_scope(self.maker) as s:
            s.execute(
                update(PartnerChange).where(PartnerChange.id > before).values(changed_at=moment)
            )

    def create(self, day: str, name: str, **fields: Any) -> str:
        data = PartnerCreate(
            name=name,
            type=fields.pop("type", "sectoral-csirt"),
            tier=fields.pop("tier", "core"),
            region=fields.pop("region", "nl"),
            **fields,
        )
        with self.at(day), session_scope(self.maker) as s:
            return partners.create(s, data=data, actor="test").uuid

    def status(self, day: str, uuid: str, *steps: str, hour: int = 12) -> None:
        with self.at(day, hour=hour), session_scope(self.maker) as s:
            partner = partners.get(s, ref=uuid)
            for step in steps:
                partners.change_status(
                    s, partner=partner, status=PartnerStatus(step), reason="test", actor="test"
                )

    def update(self, day: str, uuid: str, **fields: Any) -> None:
        with self.at(day), session_scope(self.maker) as s:
            partner = partners.get(s, ref=uuid)
            partners.update(s, partner=partner, data=PartnerUpdate(**fields), actor="test")

    def active_since(self, day: str, name: str, **fields: Any) -> str:
        uuid = self.create(day, name, **fields)
        self.status(day, uuid, "onboarding", "active")
        return uuid

    def current(self, uuid: str) -> Partner:
        with self.maker() as s:
            partner = s.scalar(select(Partner).where(Partner.uuid == uuid))
            assert partner is not None
            return partner


@pytest.fixture
def timeline(maker: sessionmaker[Session]) -> Timeline:
    return Timeline(maker)
