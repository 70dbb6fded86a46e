"""Partner registry operations. They flush, never commit: the caller owns the transaction."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import Conflict, InvalidField, NotFound
from hub.models import (
    ConstituencyEntry,
    Partner,
    PartnerChange,
    PartnerContact,
    PartnerFunction,
    PartnerSector,
)
from hub.partners import repository
from hub.partners.schemas import Constituency, PartnerCreate, PartnerRead, PartnerUpdate
from hub.vocabulary import (
    LegalStatus,
    NetworkFunction,
    PartnerStatus,
    PartnerType,
    Region,
    Sector,
    Tier,
)

# prospect → onboarding → active ⇄ suspended; withdrawn (final) from any of them.
TRANSITIONS: Mapping[PartnerStatus, frozenset[PartnerStatus]] = {
    PartnerStatus.PROSPECT: frozenset({PartnerStatus.ONBOARDING, PartnerStatus.WITHDRAWN}),
    PartnerStatus.ONBOARDING: frozenset({PartnerStatus.ACTIVE, PartnerStatus.WITHDRAWN}),
    PartnerStatus.ACTIVE: frozenset({PartnerStatus.SUSPENDED, PartnerStatus.WITHDRAWN}),
    PartnerStatus.SUSPENDED: frozenset({PartnerStatus.ACTIVE, PartnerStatus.WITHDRAWN}),
    PartnerStatus.WITHDRAWN: frozenset(),
}
NEEDS_REASON = frozenset({PartnerStatus.SUSPENDED, PartnerStatus.WITHDRAWN})
_NOT_NULL = (
    "name",
    "type",
    "tier",
    "region",
    "legal_status",
    "sectors",
    "functions",
    "constituency",
    "contacts",
)


def get(session: Session, *, ref: str) -> Partner:
    """A partner by uuid or (case-insensitive) name; 404 otherwise."""
    partner = repository.by_uuid(session, ref.lower()) or repository.by_name(session, ref)
    if partner is None:
        raise NotFound(f"no partner {ref!r}")
    return partner


def to_read(partner: Partner) -> PartnerRead:
    entries = partner.constituency
    return PartnerRead(
        uuid=partner.uuid,
        name=partner.name,
        type=PartnerType(partner.type),
        tier=Tier(partner.tier),
        region=Region(partner.region),
        legal_status=LegalStatus(partner.legal_status),
        sectors=[Sector(s.sector) for s in partner.sectors],
        functions=[NetworkFunction(f.function) for f in partner.functions],
        tlp_accepted_at=partner.tlp_accepted_at,
        constituency=Constituency.model_construct(
            ip_prefixes=[e.value for e in entries if e.kind == "prefix"],
            asns=[e.asn for e in entries if e.kind == "asn"],
            domains=[e.value for e in entries if e.kind == "domain"],
            sectors=[Sector(e.value) for e in entries if e.kind == "sector"],
        ),
        contacts=[
            {"name": c.name, "email": c.email, "role": c.role, "pgp_key": c.pgp_key}  # type: ignore[misc]
            for c in partner.contacts
        ],
        status=PartnerStatus(partner.status),
        status_reason=partner.status_reason,
        hub_organisation=partner.is_hub_org,
        created_at=partner.created_at,
        updated_at=partner.updated_at,
    )


def snapshot(partner: Partner) -> dict[str, Any]:
    """The partner's fields as JSON values, for history diffs."""
    data = to_read(partner).model_dump(mode="json")
    for key in ("uuid", "created_at", "updated_at", "hub_organisation"):
        data.pop(key)
    return data


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: {"old": before.get(key), "new": after[key]}
        for key in after
        if before.get(key) != after[key]
    }


def _record(
    session: Session,
    partner: Partner,
    *,
    action: str,
    actor: str,
    changes: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> None:
    """Partner changes go to the audit log too: an auditor sees them beside every release."""
    audit.append(
        session,
        [
            audit.Record(
                action=f"partner.{action}",
                actor=actor,
                object_ref=f"partner:{partner.uuid}",
                request_id=current_request_id(),
                details={"fields": sorted(changes), **(extra or {})},
            )
        ],
    )


def record_change(
    session: Session, partner: Partner, *, action: str, actor: str, changes: dict[str, Any]
) -> None:
    """Keep a change made elsewhere about a partner (its incident support, for one) in the
    partner history and the audit log, as the registry's own changes are kept."""
    session.add(PartnerChange(partner_id=partner.id, actor=actor, action=action, changes=changes))
    _record(session, partner, action=action, actor=actor, changes=changes)
    session.flush()


def _constituency_rows(constituency: Constituency) -> list[ConstituencyEntry]:
    rows = []
    for prefix in constituency.ip_prefixes:
        net = ipaddress.ip_network(prefix)
        rows.append(
            ConstituencyEntry(
                kind="prefix",
                value=prefix,
                family=net.version,
                prefix_len=net.prefixlen,
                net_start=f"{int(net.network_address):032x}",
                net_end=f"{int(net.broadcast_address):032x}",
            )
        )
    rows += [ConstituencyEntry(kind="asn", value=str(asn), asn=asn) for asn in constituency.asns]
    rows += [ConstituencyEntry(kind="domain", value=d) for d in constituency.domains]
    rows += [ConstituencyEntry(kind="sector", value=s.value) for s in constituency.sectors]
    return rows


def _apply(partner: Partner, fields: dict[str, Any], model: PartnerCreate | PartnerUpdate) -> None:
    for key in ("name", "type", "tier", "region", "legal_status"):
        if key in fields:
            value = getattr(model, key)
            setattr(partner, key, value.value if hasattr(value, "value") else value)
    if "name" in fields:
        partner.name_key = model.name.casefold()  # type: ignore[union-attr]
    if "tlp_accepted_at" in fields:
        partner.tlp_accepted_at = model.tlp_accepted_at  # type: ignore[assignment]
    if "sectors" in fields:
        partner.sectors = [PartnerSector(sector=s.value) for s in model.sectors or []]
    if "functions" in fields:
        partner.functions = [PartnerFunction(function=f.value) for f in model.functions or []]
    if "constituency" in fields and model.constituency is not None:
        partner.constituency = _constituency_rows(model.constituency)
    if "contacts" in fields:
        partner.contacts = [
            PartnerContact(name=c.name, email=str(c.email), role=c.role, pgp_key=c.pgp_key)
            for c in model.contacts or []
        ]


def _ensure_name_free(session: Session, name: str, *, own_id: int | None = None) -> None:
    other = repository.by_name(session, name)
    if other is not None and other.id != own_id:
        raise Conflict(
            f"a partner named {other.name!r} already exists ({other.uuid})", field="name"
        )


def create(
    session: Session,
    *,
    data: PartnerCreate,
    actor: str,
    action: str = "create",
    is_hub_org: bool = False,
    status: PartnerStatus = PartnerStatus.PROSPECT,
) -> Partner:
    """Register a new partner as a prospect, with its creation in the history."""
    _ensure_name_free(session, data.name)
    if data.uuid is not None and repository.by_uuid(session, str(data.uuid)) is not None:
        raise Conflict(f"a partner with uuid {data.uuid} already exists", field="uuid")
    partner = Partner(status=status.value, is_hub_org=is_hub_org)
    if data.uuid is not None:
        partner.uuid = str(data.uuid)
    partner.sectors, partner.functions, partner.constituency, partner.contacts = [], [], [], []
    _apply(partner, set(PartnerCreate.model_fields), data)  # type: ignore[arg-type]
    session.add(partner)
    session.flush()
    changes = {k: {"old": None, "new": v} for k, v in snapshot(partner).items()}
    session.add(PartnerChange(partner_id=partner.id, actor=actor, action=action, changes=changes))
    _record(session, partner, action=action, actor=actor, changes=changes)
    session.flush()
    return partner


def update(
    session: Session, *, partner: Partner, data: PartnerUpdate, actor: str, action: str = "update"
) -> dict[str, dict[str, Any]]:
    """Change the fields given; record old → new for each one that really changed."""
    fields = data.model_fields_set
    for key in fields & set(_NOT_NULL):
        if getattr(data, key) is None:
            raise InvalidField(f"{key} may not be null", field=key)
    if "name" in fields:
        _ensure_name_free(session, data.name, own_id=partner.id)  # type: ignore[arg-type]
    before = snapshot(partner)
    _apply(partner, fields, data)  # type: ignore[arg-type]
    session.flush()
    changes = _diff(before, snapshot(partner))
    if changes:
        session.add(
            PartnerChange(partner_id=partner.id, actor=actor, action=action, changes=changes)
        )
        _record(session, partner, action=action, actor=actor, changes=changes)
        session.flush()
    return changes


def change_status(
    session: Session, *, partner: Partner, status: PartnerStatus, reason: str | None, actor: str
) -> Partner:
    """Move along the lifecycle; anything the lifecycle does not allow is a 409 saying why."""
    current = PartnerStatus(partner.status)
    if status in NEEDS_REASON and not reason:
        raise InvalidField(f"a reason is required to make a partner {status.value}", field="reason")
    if partner.is_hub_org and status is not PartnerStatus.ACTIVE:
        raise Conflict("the hub's own organisation is always active")
    if status is current:
        raise Conflict(f"partner is already {current.value}")
    allowed = TRANSITIONS[current]
    if status not in allowed:
        nexts = ", ".join(sorted(s.value for s in allowed)) or "none (withdrawn is final)"
        raise Conflict(
            f"a partner cannot go from {current.value} to {status.value}; "
            f"allowed from {current.value}: {nexts}"
        )
    partner.status = status.value
    old_reason, partner.status_reason = partner.status_reason, reason
    session.add(
        PartnerChange(
            partner_id=partner.id,
            actor=actor,
            action="status",
            changes={
                "status": {"old": current.value, "new": status.value},
                "status_reason": {"old": old_reason, "new": reason},
            },
        )
    )
    _record(
        session,
        partner,
        action="status",
        actor=actor,
        changes={"status": None},
        extra={"from": current.value, "to": status.value},
    )
    session.flush()
    return partner


def ensure_hub_org(session: Session, *, name: str, actor: str) -> tuple[Partner, bool]:
    """The hub's own organisation (a national CSIRT): created once, renamed with HUB_ORG_NAME."""
    existing = repository.hub_org(session)
    if existing is not None:
        if existing.name != name:
            update(session, partner=existing, data=PartnerUpdate(name=name), actor=actor)
        return existing, False
    data = PartnerCreate(
        name=name,
        type=PartnerType.NATIONAL_CSIRT,
        tier=Tier.CORE,
        region=Region.NL,
        legal_status=LegalStatus.DESIGNATED_CSIRT,
        functions=list(NetworkFunction),
        tlp_accepted_at=datetime.now().astimezone(),
    )
    partner = create(session, data=data, actor=actor, is_hub_org=True, status=PartnerStatus.ACTIVE)
    return partner, True
