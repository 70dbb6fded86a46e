"""Queries over ``stix_objects``: one statement per page, whatever its size.

``readable`` is the SQL pre-filter built from ``tlp.audience_for`` (the same branches as the
REST event pre-filter); the release path still decides every object and every reference.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select
from sqlalchemy.orm import Session, aliased

import tlp
from hub.models import (
    ElementWithdrawal,
    Event,
    PartnerSector,
    StixObject,
    StixRendering,
    TaxiiStatus,
)
from hub.taxii.query import Filters

PAGE_COLUMNS = (
    StixObject.id,
    StixObject.stix_id,
    StixObject.type,
    StixObject.version,
    StixObject.date_added,
    StixObject.tlp_rank,
    StixObject.distribution,
    StixObject.sg_members,
    StixObject.orgc_uuid,
    StixObject.event_uuid,
    StixObject.event_version,
    StixObject.refs,
    StixObject.doc,
    # the event's own label and addressing: nothing of an event goes where it may not go
    Event.tlp_rank.label("event_rank"),
    Event.distribution.label("event_distribution"),
    Event.sg_members.label("event_sg_members"),
    Event.exercise_id.label("event_exercise"),
)


def readable(audience: tlp.Audience) -> ColumnElement[bool]:
    """Objects the audience may see (label and addressing of the object itself)."""
    branches: list[ColumnElement[bool]] = []
    if audience.own_max is not None and audience.org_uuid:
        branches.append(
            and_(
                StixObject.orgc_uuid == audience.org_uuid,
                StixObject.tlp_rank <= audience.own_max.rank,
            )
        )
    if audience.community_max is not None and audience.community_distributions:
        branches.append(
            and_(
                StixObject.distribution.in_(sorted(audience.community_distributions)),
                StixObject.tlp_rank <= audience.community_max.rank,
            )
        )
    if audience.named_max is not None and audience.org_uuid:
        branches.append(
            and_(
                StixObject.distribution == 4,
                StixObject.sg_members.like(f'%"{audience.org_uuid}"%'),
                StixObject.tlp_rank <= audience.named_max.rank,
            )
        )
    return or_(*branches) if branches else false()


def in_exercise(audience: tlp.Audience) -> ColumnElement[bool]:
    """Objects of the audience's exercise only (real traffic: of none); the page joins the
    object's event. Written as an expression no index serves (``coalesce``), so that the
    planner keeps walking ``ix_stix_objects_added`` from the cursor (SQLite would otherwise
    drive the page from ``ix_events_exercise_id``, every real event matching it)."""
    return func.coalesce(Event.exercise_id, "") == (audience.exercise or "")


def in_sector(sector: str, member_partner_id: int, org_uuid: str) -> ColumnElement[bool]:
    """Objects from sources in ``sector``, and only while the caller itself is in it. Never
    a TLP:EX:CHR event's (a sector collection would narrow down who shared it), except to
    its own source."""
    return and_(
        StixObject.source_partner_id.in_(
            select(PartnerSector.partner_id).where(PartnerSector.sector == sector)
        ),
        exists().where(
            PartnerSector.partner_id == member_partner_id, PartnerSector.sector == sector
        ),
        # (the page joins the object's event)
        or_(StixObject.orgc_uuid == org_uuid, Event.chr.is_(False)),
    )


def revocation_reaches(org_uuid: str) -> ColumnElement[bool]:
    """A revoked object goes only to who had received what it revokes (its creator, and the
    recipients recorded for its element): for anyone else it never existed (DESIGN.md §3)."""
    return or_(
        StixObject.revoked.is_(False),
        StixObject.orgc_uuid == org_uuid,
        exists().where(
            ElementWithdrawal.event_id == StixObject.event_id,
            ElementWithdrawal.element_uuid == StixObject.element_uuid,
            ElementWithdrawal.recipient_uuid == org_uuid,
        ),
    )


def page(
    *,
    audience: tlp.Audience,
    scope: ColumnElement[bool] | None,
    filters: Filters,
    stix_id: str | None,
    after: tuple[datetime, int] | None,
    limit: int,
    org_uuid: str,
) -> Select[tuple[object, ...]]:
    """Rows in ``date_added`` order (TAXII 2.1 §3.4: ascending), keyset after ``after``."""
    current = exists().where(
        StixRendering.event_id == StixObject.event_id, StixRendering.status == "rendered"
    )
    stmt = (
        select(*PAGE_COLUMNS)
        .join(Event, Event.id == StixObject.event_id)
        .where(readable(audience), in_exercise(audience), current, revocation_reaches(org_uuid))
    )
    if scope is not None:
        stmt = stmt.where(scope)
    if stix_id is not None:
        stmt = stmt.where(StixObject.stix_id == stix_id)
    if filters.ids:
        stmt = stmt.where(StixObject.stix_id.in_(filters.ids))
    if filters.types:
        stmt = stmt.where(StixObject.type.in_(filters.types))
    if filters.spec_versions and "2.1" not in filters.spec_versions:
        stmt = stmt.where(false())
    if filters.version == "last":
        stmt = stmt.where(StixObject.latest.is_(True))
    elif filters.version == "first":
        older = aliased(StixObject)
        stmt = stmt.where(
            ~exists().where(
                older.event_id == StixObject.event_id,
                older.stix_id == StixObject.stix_id,
                older.version < StixObject.version,
            )
        )
    elif filters.version == "at":
        stmt = stmt.where(StixObject.version.in_(filters.versions))
    if filters.added_after is not None:
        stmt = stmt.where(StixObject.date_added > filters.added_after)
    if after is not None:
        stmt = stmt.where(
            # Implied by the next condition, and what lets the index seek to the position:
            # without it SQLite walks ix_stix_objects_added from the start on every page.
            StixObject.date_added >= after[0],
            or_(
                StixObject.date_added > after[0],
                and_(StixObject.date_added == after[0], StixObject.id > after[1]),
            ),
        )
    return stmt.order_by(StixObject.date_added, StixObject.id).limit(limit)


def sectors_of(session: Session, partner_id: int) -> list[str]:
    return list(
        session.scalars(
            select(PartnerSector.sector)
            .where(PartnerSector.partner_id == partner_id)
            .order_by(PartnerSector.sector)
        )
    )


def is_in_sector(session: Session, partner_id: int, sector: str) -> bool:
    found = session.scalar(
        select(PartnerSector.partner_id).where(
            PartnerSector.partner_id == partner_id, PartnerSector.sector == sector
        )
    )
    return found is not None


def status(
    session: Session, uuid: str, partner_uuid: str, exercise: str | None = None
) -> TaxiiStatus | None:
    """The submitter's status resource, in the scope of the key asking (an exercise key's
    and a real key's of one organisation never read each other's)."""
    scope = (
        TaxiiStatus.exercise_id.is_(None)
        if exercise is None
        else TaxiiStatus.exercise_id == exercise
    )
    return session.scalar(
        select(TaxiiStatus).where(
            TaxiiStatus.uuid == uuid, TaxiiStatus.partner_uuid == partner_uuid, scope
        )
    )
