"""Who submits, and what: the partner a submission is stored for (checked: active, TLP rules
accepted; operators submit as the hub's own organisation), and the MISP events a body carries."""

from __future__ import annotations

from typing import Any

from hub.auth.principal import Principal
from hub.errors import Forbidden, InvalidField
from hub.intel import snapshots
from hub.models import Partner
from hub.partners import repository as partners
from hub.vocabulary import PartnerStatus, Role

STIX_MEDIA = "application/stix+json"


def check_may_submit(principal: Principal) -> None:
    """``submitting_partner``'s checks on what authentication read (status, TLP rules), for
    an edge that parses and validates the body before its unit of work touches the database:
    a partner that may not submit still gets 403 before any 422 about its body."""
    if principal.role is Role.OPERATOR:
        return
    if principal.partner_status != PartnerStatus.ACTIVE.value:
        raise Forbidden(f"a {principal.partner_status} partner cannot submit information")
    if not principal.tlp_accepted:
        raise Forbidden("a partner that has not accepted the network's TLP rules cannot submit")


def submitting_partner(session: Any, principal: Principal) -> Partner:
    """Whose submission this is: the key's partner, or the hub's own organisation for operators."""
    if principal.role is Role.OPERATOR:
        org = partners.hub_org(session)
        if org is None:
            raise Forbidden("the hub's own organisation does not exist yet; run `hub init`")
        return org
    partner = partners.by_uuid(session, principal.partner_uuid)
    assert partner is not None
    if partner.status != PartnerStatus.ACTIVE.value:
        raise Forbidden(f"a {partner.status} partner cannot submit information")
    if partner.tlp_accepted_at is None:
        raise Forbidden("a partner that has not accepted the network's TLP rules cannot submit")
    return partner


def parse_misp_payload(body: bytes) -> list[Any]:
    doc = snapshots.parse_body(body)
    if isinstance(doc, dict) and "response" in doc:
        doc = doc["response"]
    if isinstance(doc, dict) and "request" in doc:
        doc = doc["request"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        raise InvalidField("no event in the request", field="Event")
    if isinstance(doc, dict) and doc.get("type") == "bundle":
        raise InvalidField(
            f"this is a STIX bundle: send it with Content-Type: {STIX_MEDIA}", field="Content-Type"
        )
    return items
