"""Reading and writing knowledge products, their versions and sources (flush, never commit)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.models import (
    Attribute,
    Event,
    KnowledgeProduct,
    KnowledgeSource,
    KnowledgeVersion,
    Partner,
    PartnerSector,
)


def product_by_uuid(session: Session, uuid: str) -> KnowledgeProduct | None:
    return session.scalar(select(KnowledgeProduct).where(KnowledgeProduct.uuid == uuid.lower()))


def version_of(session: Session, product: KnowledgeProduct, version: int) -> KnowledgeVersion:
    found = session.scalar(
        select(KnowledgeVersion).where(
            KnowledgeVersion.product_id == product.id, KnowledgeVersion.version == version
        )
    )
    assert found is not None, f"product {product.uuid} has no version {version}"
    return found


def sources_of(session: Session, version: KnowledgeVersion) -> Sequence[KnowledgeSource]:
    return session.scalars(
        select(KnowledgeSource)
        .where(KnowledgeSource.version_id == version.id)
        .order_by(KnowledgeSource.id)
    ).all()


def item(session: Session, uuid: str) -> tuple[Event, Attribute | None] | None:
    """The event an item uuid names (an event, or an attribute with its event)."""
    event = session.scalar(select(Event).where(Event.uuid == uuid))
    if event is not None:
        return event, None
    attribute = session.scalar(select(Attribute).where(Attribute.uuid == uuid))
    if attribute is None:
        return None
    parent = session.get(Event, attribute.event_id)
    assert parent is not None
    return parent, attribute


def partner_by_uuid(session: Session, uuid: str) -> Partner | None:
    return session.scalar(select(Partner).where(Partner.uuid == uuid.lower()))


def sectors_of(session: Session, partner_id: int) -> list[str]:
    return list(
        session.scalars(
            select(PartnerSector.sector)
            .where(PartnerSector.partner_id == partner_id)
            .order_by(PartnerSector.sector)
        )
    )


def active_in_sector(session: Session, sector: str) -> int:
    """How many active partners name this sector (the crowd an anonymous credit hides in)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(PartnerSector)
            .join(Partner, Partner.id == PartnerSector.partner_id)
            .where(PartnerSector.sector == sector, Partner.status == "active")
        )
        or 0
    )


def owned_page(
    session: Session, *, owner_id: int | None, after: int | None, limit: int
) -> Sequence[KnowledgeProduct]:
    """Products of one owner (None: all, for operators), oldest first, keyset on id."""
    stmt = select(KnowledgeProduct).order_by(KnowledgeProduct.id).limit(limit)
    if owner_id is not None:
        stmt = stmt.where(KnowledgeProduct.owner_partner_id == owner_id)
    if after is not None:
        stmt = stmt.where(KnowledgeProduct.id > after)
    return session.scalars(stmt).all()


def published_by_event(session: Session, event_uuids: Sequence[str]) -> dict[str, Any]:
    """Published products by the uuid of the event they go out as."""
    rows = session.scalars(
        select(KnowledgeProduct).where(
            KnowledgeProduct.event_uuid.in_(list(event_uuids)),
            KnowledgeProduct.published_version.is_not(None),
        )
    ).all()
    return {p.event_uuid: p for p in rows}


def published_event_uuids() -> Any:
    """A subquery: the events published products go out as."""
    return select(KnowledgeProduct.event_uuid).where(
        KnowledgeProduct.published_version.is_not(None)
    )


def newest_published(session: Session, *, limit: int) -> Sequence[KnowledgeProduct]:
    return session.scalars(
        select(KnowledgeProduct)
        .where(KnowledgeProduct.published_version.is_not(None))
        .order_by(KnowledgeProduct.changed_at.desc(), KnowledgeProduct.id.desc())
        .limit(limit)
    ).all()


def products_using(session: Session, *, item_uuids: Sequence[str], event_uuid: str | None) -> Any:
    """(product, version, source) rows whose version used one of these items (or, given
    ``event_uuid``, anything of that event)."""
    cond = KnowledgeSource.item_uuid.in_(list(item_uuids))
    if event_uuid is not None:
        cond = cond | (KnowledgeSource.event_uuid == event_uuid)
    return session.execute(
        select(KnowledgeProduct, KnowledgeVersion, KnowledgeSource)
        .join(KnowledgeVersion, KnowledgeVersion.product_id == KnowledgeProduct.id)
        .join(KnowledgeSource, KnowledgeSource.version_id == KnowledgeVersion.id)
        .where(cond)
        .order_by(KnowledgeProduct.id, KnowledgeVersion.version, KnowledgeSource.id)
    ).all()
