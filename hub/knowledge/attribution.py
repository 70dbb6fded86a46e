"""Who a product credits, and how: the sources as every recipient of the product may read them.

A product goes out as one hub event, the same to every recipient, so its credits must be safe
for the widest audience its label and addressing allow. A source is credited by name and item
uuid only when all of these hold (else anonymously, with no uuid and no name):

- the source did not ask to stay unnamed (``named`` false on the source), and its item is not
  TLP:EX:CHR (on the event or the item itself);
- the item is addressed to the community (distribution 1-3, no sharing group at any level),
  with a label no higher than the product's, so everyone who receives the product may receive
  the item; for a CLEAR product, which also goes to the public page and feed, the item is
  CLEAR and addressed to all communities (distribution 3).

An anonymous credit says "a partner in the <sector> sector" only when at least
``CROWD`` active partners share that sector (it cannot point at one), otherwise "an anonymous
source".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.knowledge import repository
from hub.models import Attribute, Event, Partner
from hub.sharing.records import addressing_of
from hub.sharing.view import own_addressing

CROWD = 5
ANONYMOUS = "an anonymous source"
CHR_TAG = "tlp:ex:chr"


@dataclass(frozen=True, slots=True)
class Credit:
    item_uuid: str | None
    event_uuid: str | None
    org_uuid: str
    named: bool
    credit: str  # the line recipients read

    def as_public(self, org_name: str | None) -> dict[str, Any]:
        if not self.named:
            return {"credit": self.credit}
        return {"credit": self.credit, "organisation": org_name, "item": self.item_uuid}


def is_chr(event: Event, attribute: Attribute | None) -> bool:
    if event.chr:
        return True
    if attribute is None:
        return False
    tags = orjson.loads(attribute.doc).get("Tag") or []
    return any(str(t.get("name", "")).strip().lower() == CHR_TAG for t in tags)


def item_rank(event: Event, attribute: Attribute | None) -> int:
    return event.tlp_rank if attribute is None else max(event.tlp_rank, attribute.tlp_rank)


def item_addressing(event: Event, attribute: Attribute | None) -> tlp.Addressing:
    parent = addressing_of(event.distribution, event.sg_members)
    if attribute is None:
        return parent
    return own_addressing(parent, attribute.distribution, attribute.sg_members)


def reaches_every_recipient(event: Event, attribute: Attribute | None, product_tlp: str) -> bool:
    """Whether everyone who may receive a product with this label may receive the item."""
    rank = item_rank(event, attribute)
    addressing = item_addressing(event, attribute)
    if product_tlp == "clear":
        return rank == 0 and addressing.distribution == 3
    return addressing.is_community and rank <= tlp.Tlp(product_tlp).rank


def anonymous(session: Session, partner: Partner | None) -> str:
    if partner is None:
        return ANONYMOUS
    for sector in repository.sectors_of(session, partner.id):
        if sector != "non-vital" and repository.active_in_sector(session, sector) >= CROWD:
            return f"a partner in the {sector} sector"
    return ANONYMOUS


def for_item(
    session: Session, *, event: Event, attribute: Attribute | None, asked_named: bool, tlp_: str
) -> Credit:
    item_uuid = event.uuid if attribute is None else attribute.uuid
    named = (
        asked_named
        and not is_chr(event, attribute)
        and reaches_every_recipient(event, attribute, tlp_)
    )
    source = session.get(Partner, event.source_partner_id)
    org_uuid = event.orgc_uuid
    if named:
        line = f"{event.orgc_name} (item {item_uuid})"
    else:
        line = anonymous(session, source)
    return Credit(item_uuid, event.uuid, org_uuid, named, line)


def for_organisation(session: Session, *, partner: Partner, asked_named: bool) -> Credit:
    """An organisation credited without an item (it contributed knowledge, not a shared item);
    a partner that is not active is credited anonymously (its state is not the recipients')."""
    named = asked_named and partner.status == "active"
    line = partner.name if named else anonymous(session, partner)
    return Credit(None, None, partner.uuid, named, line)
