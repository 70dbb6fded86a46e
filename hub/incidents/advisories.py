"""The current advisories for a sector, released to the asker through the release path.

Advisories are published events tagged ``cwn:sector="<sector>"`` whose latest change falls
in the last ``WINDOW_DAYS`` days. They are listed by ``hub.sharing.pages`` for a recipient
over a channel, so ``tlp.decide`` decides each one and one audit entry records the page:
a partner gets what it may see over REST (CLEAR and GREEN only: an incident answer is no
place for AMBER); the public route asks as the open feed (``tlp.Channel.FEED``), which
``tlp.decide`` lets have TLP:CLEAR addressed to all communities and nothing else.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

import tlp
from hub.intel import repository as events
from hub.sharing import pages
from hub.sharing.recipients import Recipient
from hub.sharing.view import EventSummary

WINDOW_DAYS = 90
LIMIT = 20
#: Who the public route asks as: no partner's uuid (the feed channel ignores it anyway).
PUBLIC = Recipient(
    org_uuid="public:incident-help",
    partner_id=0,
    name="the public",
    tier=None,
    status="active",
    tlp_accepted=False,
    actor="public:incident-help",
)
#: The labels an incident answer lists (the issue: "current CLEAR/GREEN advisories").
SHOWN = frozenset({tlp.Tlp.CLEAR, tlp.Tlp.GREEN})


def sector_tag(sector: str) -> str:
    return f'cwn:sector="{sector}"'


def released(
    session: Session,
    *,
    to: Recipient,
    channel: tlp.Channel,
    policy: tlp.Policy,
    sector: str,
) -> pages.EventPage:
    """The sector's current advisories ``to`` receives over ``channel``, newest change
    last (as the release path pages them), recorded as one delivery."""
    audience = tlp.audience_for(to.tlp, channel, policy)
    since = int(time.time()) - WINDOW_DAYS * 86400
    tag = sector_tag(sector)

    def fetch(position: Any, n: int) -> Any:
        stmt, params = events.event_page(
            audience=audience,
            since=since,
            tag=tag,
            published=True,
            type=None,
            after=position,
            limit=n,
        )
        return session.connection().execute(stmt, params).all()

    wanted = tag.casefold()

    def accept(item: EventSummary) -> bool:
        return (
            item.label in SHOWN
            and item.published
            and item.timestamp >= since
            and any(t.casefold() == wanted for t in item.tags)
        )

    return pages.release_event_page(
        session,
        to=to,
        channel=channel,
        policy=policy,
        fetch=fetch,
        position=lambda row: (row.changed_at, row.id),
        limit=LIMIT,
        accept=accept,
    )


def shown(item: EventSummary) -> dict[str, Any]:
    """An advisory as the answer lists it: what it is and its label, no more (the event
    itself is fetched through the events route, decided again there)."""
    out: dict[str, Any] = {
        "uuid": item.uuid,
        "info": item.row.info,
        "date": item.row.date,
        "timestamp": item.timestamp,
        "tlp": item.label.value,
    }
    if not item.creator_hidden:
        out["orgc"] = item.row.orgc_name
    return out
