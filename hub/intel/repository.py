"""Queries over the store. ``readable`` is the partner-facing pre-filter (SQL), built from
``tlp.audience_for``; the release path still decides every item."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.orm import Session

import tlp
from hub.models import Attribute, Event, EventVersion, QuarantineItem


def readable(audience: tlp.Audience) -> ColumnElement[bool]:
    """Events the audience may see, and that have something left to deliver."""
    branches: list[ColumnElement[bool]] = []
    if audience.own_max is not None and audience.org_uuid:
        cap = audience.own_max.rank
        branches.append(
            and_(
                Event.orgc_uuid == audience.org_uuid,
                Event.tlp_rank <= cap,
                or_(Event.min_rank.is_(None), Event.min_rank <= cap),
            )
        )
    if audience.community_max is not None and audience.community_distributions:
        cap = audience.community_max.rank
        branches.append(
            and_(
                Event.distribution.in_(sorted(audience.community_distributions)),
                Event.tlp_rank <= cap,
                Event.min_rank.is_not(None),
                Event.min_rank <= cap,
            )
        )
    if audience.named_max is not None and audience.org_uuid:
        cap = audience.named_max.rank
        branches.append(
            and_(
                Event.distribution == 4,
                Event.sg_members.like(f'%"{audience.org_uuid}"%'),
                Event.tlp_rank <= cap,
                Event.min_rank.is_not(None),
                Event.min_rank <= cap,
            )
        )
    if not branches:
        return false()
    return or_(*branches)


# What a listing needs of an event, without its document: pages are read as plain rows.
SUMMARY_COLUMNS = (
    Event.id,
    Event.uuid,
    Event.info,
    Event.date,
    Event.timestamp,
    Event.published,
    Event.tlp_rank,
    Event.min_rank,
    Event.version,
    Event.attribute_count,
    Event.tags,
    Event.chr,
    Event.orgc_uuid,
    Event.orgc_name,
    Event.distribution,
    Event.sg_members,
    Event.changed_at,
)


def event_page(
    *,
    audience: tlp.Audience,
    since: int | None,
    tag: str | None,
    published: bool | None,
    type: str | None,
    after: tuple[Any, int] | None,
    limit: int,
) -> Select[Any]:
    stmt = select(*SUMMARY_COLUMNS).where(readable(audience))
    if since is not None:
        stmt = stmt.where(Event.timestamp >= since)
    if published is not None:
        stmt = stmt.where(Event.published.is_(published))
    if tag:
        stmt = stmt.where(Event.tags.like(f'%"{_like_escape(tag)}"%', escape="\\"))
    if type:
        stmt = stmt.where(
            select(Attribute.id)
            .where(
                Attribute.event_id == Event.id, Attribute.type == type, Attribute.deleted.is_(False)
            )
            .exists()
        )
    if after is not None:
        stmt = stmt.where(
            or_(
                Event.changed_at > after[0], and_(Event.changed_at == after[0], Event.id > after[1])
            )
        )
    return stmt.order_by(Event.changed_at, Event.id).limit(limit)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace('"', '\\"')


def by_uuid(session: Session, uuid: str) -> Event | None:
    return session.scalar(select(Event).where(Event.uuid == uuid))


def versions(session: Session, event: Event) -> list[EventVersion]:
    return list(
        session.scalars(
            select(EventVersion)
            .where(EventVersion.event_id == event.id)
            .order_by(EventVersion.version)
        )
    )


def quarantine_page(
    session: Session, *, status: str | None, after: int | None, limit: int
) -> list[QuarantineItem]:
    stmt = select(QuarantineItem)
    if status:
        stmt = stmt.where(QuarantineItem.status == status)
    if after is not None:
        stmt = stmt.where(QuarantineItem.id > after)
    return list(session.scalars(stmt.order_by(QuarantineItem.id).limit(limit)))
