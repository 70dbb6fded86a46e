"""What each caller reads of a product.

The owner's organisation and operators read the product from its rows (every version,
drafts, the workflow and the sources as recorded). Everyone else reads only a published
product, and only as the release path gives it: the product's event released to them over
REST (decided by ``tlp.decide``, audited), its event report the body. The public page and feed
read it as an open feed would (``Channel.FEED``: only CLEAR sent to all communities).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.errors import NotFound
from hub.intel.repository import SUMMARY_COLUMNS
from hub.knowledge import repository
from hub.knowledge.service import is_staff, owns
from hub.models import Event, KnowledgeProduct, Partner
from hub.sharing import pages
from hub.sharing.events import decide_event, release_event
from hub.sharing.recipients import Recipient
from hub.sharing.records import record

#: Who reads the public page and feed: nobody in particular, over the open-feed channel.
PUBLIC = Recipient(
    org_uuid="public",
    partner_id=0,
    name="public",
    tier=None,
    status="active",
    tlp_accepted=False,
    actor="public",
)


def may_read_rows(who: Principal, product: KnowledgeProduct) -> bool:
    return is_staff(who) or owns(who, product)


def owner_view(
    session: Session, product: KnowledgeProduct, version: int | None = None
) -> dict[str, Any]:
    """Everything about one version (the current one by default), for its owner and operators."""
    row = repository.version_of(session, product, version or product.version)
    sources = repository.sources_of(session, row)
    return {
        "uuid": product.uuid,
        "kind": row.kind,
        "title": row.title,
        "tlp": row.tlp,
        "themes": list(row.themes),
        "state": product.state,
        "version": row.version,
        "body": row.body,
        "event_uuid": product.event_uuid if product.published_version else None,
        # an anonymous source's organisation is not given, not even to the owner: for a
        # TLP:EX:CHR item of another organisation, the owner received it without its creator
        "sources": [
            {
                "credit": s.credit,
                "organisation": s.org_uuid if s.named else None,
                "item": s.item_uuid,
            }
            for s in sources
        ],
        "workflow": {
            "author": row.author,
            "created_at": row.created_at.isoformat(),
            "reviewed_by": row.reviewed_by,
            "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
            "review_note": row.review_note,
            "published_by": row.published_by,
            "published_at": row.published_at.isoformat() if row.published_at else None,
            "published_version": product.published_version,
            "event_version": row.event_version,
        },
    }


def released_view(
    session: Session, *, product: KnowledgeProduct, event: dict[str, Any]
) -> dict[str, Any]:
    """A published product as the released event shows it (its report is the body)."""
    row = repository.version_of(session, product, product.published_version or 0)
    reports = [r for r in event.get("EventReport") or [] if r.get("uuid") == product.report_uuid]
    sources = repository.sources_of(session, row)
    names = _org_names(session, sources)
    return {
        "uuid": product.uuid,
        "kind": row.kind,
        "title": event.get("info", row.title),
        "tlp": row.tlp,
        "themes": list(row.themes),
        "state": "published",
        "version": row.version,
        "body": reports[0].get("content") if reports else None,
        "event_uuid": product.event_uuid,
        "sources": [
            {"credit": s.credit, "organisation": names.get(s.org_uuid), "item": s.item_uuid}
            if s.named
            else {"credit": s.credit}
            for s in sources
        ],
    }


def _org_names(session: Session, sources: Sequence[Any]) -> dict[str, str]:
    uuids = {s.org_uuid for s in sources if s.named}
    rows = session.execute(select(Partner.uuid, Partner.name).where(Partner.uuid.in_(uuids)))
    return {str(row[0]): str(row[1]) for row in rows}


def release_one(
    session: Session, *, who: Principal, product: KnowledgeProduct, policy: tlp.Policy
) -> tuple[dict[str, Any], int | None]:
    """A published product to a partner that does not own it, through the release path; a
    product it may not receive answers as a missing one."""
    event = _published_event(session, product)
    if event is None:
        raise NotFound(f"no knowledge product {product.uuid}")
    delivery = release_event(session, to=who, event=event, channel=tlp.Channel.REST, policy=policy)
    if delivery.event is None:
        raise NotFound(f"no knowledge product {product.uuid}")
    return released_view(
        session, product=product, event=delivery.event["Event"]
    ), delivery.audit_seq


def _published_event(session: Session, product: KnowledgeProduct) -> Event | None:
    if product.published_version is None:
        return None
    return session.scalar(select(Event).where(Event.uuid == product.event_uuid))


def released_page(
    session: Session, *, who: Principal, policy: tlp.Policy, after: Any, limit: int
) -> tuple[list[dict[str, Any]], Any, int | None]:
    """Published products whose event the release path gives ``who`` over REST: (items, the
    position after the last, the audit entry of the page)."""

    def fetch(position: Any, n: int) -> Any:
        stmt = (
            select(*SUMMARY_COLUMNS)
            .where(Event.uuid.in_(repository.published_event_uuids()))
            .order_by(Event.changed_at, Event.id)
            .limit(n)
        )
        if position is not None:
            stmt = stmt.where(
                (Event.changed_at > position[0])
                | ((Event.changed_at == position[0]) & (Event.id > position[1]))
            )
        return session.connection().execute(stmt).all()

    page = pages.release_event_page(
        session,
        to=who,
        channel=tlp.Channel.REST,
        policy=policy,
        fetch=fetch,
        position=lambda row: (row.changed_at, row.id),
        limit=limit,
    )
    products = repository.published_by_event(session, [s.uuid for s in page.items])
    items = []
    for summary in page.items:
        product = products.get(summary.uuid)
        if product is None:
            continue
        row = repository.version_of(session, product, product.published_version or 0)
        items.append(
            {
                "uuid": product.uuid,
                "kind": row.kind,
                "title": summary.row.info,
                "tlp": row.tlp,
                "themes": list(row.themes),
                "state": "published",
                "version": row.version,
                "event_uuid": product.event_uuid,
            }
        )
    last = page.items[-1].row if page.more and page.items else None
    return items, (last.changed_at, last.id) if last is not None else None, page.audit_seq


def public_products(
    session: Session, *, policy: tlp.Policy, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest published products an open feed may carry (CLEAR, to all communities),
    decided one by one and recorded as one page delivery to the public."""
    out, releases = [], []
    for product in repository.newest_published(session, limit=limit):
        event = _published_event(session, product)
        if event is None:
            continue
        delivery = decide_event(
            session, to=PUBLIC, event=event, channel=tlp.Channel.FEED, policy=policy
        )
        label = delivery.decision.label
        releases.append(
            [
                event.uuid,
                delivery.version,
                delivery.event is not None,
                delivery.reason,
                label.value if label else None,
                0,
            ]
        )
        if delivery.event is not None:
            view = released_view(session, product=product, event=delivery.event["Event"])
            view["published_at"] = product.changed_at
            out.append(view)
    if releases:
        record(
            session,
            PUBLIC,
            action="release.page",
            channel=tlp.Channel.FEED,
            object_ref=None,
            decision="allow",
            details={"policy_version": policy.version, "releases": releases},
        )
    return out
