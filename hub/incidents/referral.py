""" "Who helps me now": the organisations an organisation with an incident can turn to, in
order and with the reasons each was chosen, its legal reporting duties, and the current
advisories for its sector that the asker may receive.

Order: the sector's designated CSIRT first (``legal_status`` designated-csirt, serving the
sector, where the Cyberbeveiligingswet designates it: the European Netherlands, or a region
its incident support names); where the registry knows none for a NIS2 sector, the hub's
own organisation, the national CSIRT; then every other partner whose incident support
covers the organisation, the closest match first (a registered constituency match, then its
constituency's sectors, sector and region, sector, region, any organisation), round the
clock before office hours, then by name. Only active partners that take part in incident
handling are considered.

Network identifiers (IP addresses, AS numbers, domains) are matched against constituencies
by ``hub.notifications.matching``, exactly as notifications are; the public route passes
none, so it cannot be used to probe the constituency registry.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from hub.errors import InvalidField
from hub.incidents import repository
from hub.incidents.schemas import HelpRequest
from hub.models import ConstituencyEntry, IncidentSupport, Partner
from hub.notifications import matching
from hub.vocabulary import (
    Availability,
    LegalStatus,
    OrganisationSize,
    Region,
    Sector,
    SupportAudience,
)

# Rank of each way an audience covers an organisation: lower is closer.
_CLOSENESS = {
    "constituency-match": 0,
    "members-match": 0,
    "constituency-sector": 1,
    "sector-and-region": 2,
    "sector": 3,
    "region": 4,
    "any-organisation": 5,
}


@dataclass(slots=True)
class Candidate:
    partner: Partner
    support: IncidentSupport | None
    group: int = 9  # 0 designated CSIRT, 1 national CSIRT as fallback, 2 audience
    closeness: int = 9
    reasons: list[dict[str, str]] = field(default_factory=list)

    def reason(self, code: str, text: str) -> None:
        self.reasons.append({"code": code, "text": text})


def network_values(request: HelpRequest) -> list[matching.Value]:
    """The request's identifiers as ``matching`` values; a malformed address is a 422."""
    values: list[matching.Value] = []
    for index, text in enumerate(request.ip_addresses):
        found = matching.values_of("ip-dst", text)
        if not found:
            raise InvalidField(
                f"ip_addresses.{index}: {text[:60]!r} is not an IP address or prefix",
                field=f"ip_addresses.{index}",
            )
        values += found
    for asn in request.asns:
        values += matching.values_of("AS", str(asn))
    for domain in request.domains:
        values += matching.values_of("domain", domain)
    return values


def _network_hits(session: Session, values: list[matching.Value]) -> dict[int, list[str]]:
    """Per partner id, the constituency entries the identifiers matched (kind: value)."""
    if not values:
        return {}
    table = ConstituencyEntry.__table__
    out: dict[int, list[str]] = defaultdict(list)
    for hits in matching.match_values(session, table, values).values():  # type: ignore[arg-type]
        for hit in hits:
            text = f"{hit.kind} {hit.value}"
            if text not in out[hit.partner_id]:
                out[hit.partner_id].append(text)
    return out


def _serves_sector(partner: Partner, sector: str) -> bool:
    own = {s.sector for s in partner.sectors}
    served = {e.value for e in partner.constituency if e.kind == "sector"}
    return sector in own or sector in served


def _designated(cand: Candidate, sector: str, region: str) -> bool:
    partner, support = cand.partner, cand.support
    if partner.legal_status != LegalStatus.DESIGNATED_CSIRT.value or sector == "non-vital":
        return False
    if partner.is_hub_org or not _serves_sector(partner, sector):
        return False
    named = support is not None and region in (support.regions or [])
    if region != Region.NL.value and not named:
        return False
    where = "the European Netherlands" if region == Region.NL.value else region
    cand.reason(
        "designated-csirt",
        f"designated CSIRT for the {sector} sector (Cyberbeveiligingswet), serving {where}",
    )
    return True


def _coverage(cand: Candidate, sector: str, region: str, hits: list[str]) -> int | None:
    """How closely the partner's incident support covers the organisation (``_CLOSENESS``),
    recording why; None when it does not."""
    support = cand.support
    if support is None:
        return None
    scopes = set(support.audience)
    found: list[str] = []
    if SupportAudience.MEMBERS_ONLY.value in scopes:
        if hits:
            found.append("members-match")
            cand.reason("members-match", f"serves its members only; registered: {', '.join(hits)}")
    if SupportAudience.CONSTITUENCY.value in scopes:
        if hits:
            found.append("constituency-match")
            cand.reason("constituency-match", f"in its constituency: {', '.join(hits)}")
        elif sector in {e.value for e in cand.partner.constituency if e.kind == "sector"}:
            found.append("constituency-sector")
            cand.reason("constituency-sector", f"its constituency includes the {sector} sector")
    in_sector = SupportAudience.SECTOR.value in scopes and sector in support.sectors
    in_region = SupportAudience.REGION.value in scopes and region in support.regions
    wants_sector = SupportAudience.SECTOR.value in scopes
    wants_region = SupportAudience.REGION.value in scopes
    if wants_sector and wants_region:
        if in_sector and in_region:
            found.append("sector-and-region")
            cand.reason("sector-and-region", f"supports the {sector} sector in {region}")
    elif in_sector:
        found.append("sector")
        cand.reason("sector", f"supports the {sector} sector")
    elif in_region:
        found.append("region")
        cand.reason("region", f"supports organisations in {region}")
    if SupportAudience.ANY_ORGANISATION.value in scopes:
        found.append("any-organisation")
        cand.reason("any-organisation", "supports any organisation")
    return min((_CLOSENESS[f] for f in found), default=None)


def candidates(
    session: Session, *, sector: Sector, region: Region, values: list[matching.Value]
) -> list[Candidate]:
    """The ordered organisations to turn to (module doc), each with its reasons."""
    hits = _network_hits(session, values)
    chosen: list[Candidate] = []
    hub_org: Candidate | None = None
    for partner, support in repository.incident_handlers(session):
        cand = Candidate(partner, support)
        if partner.is_hub_org:
            hub_org = cand
        if _designated(cand, sector.value, region.value):
            cand.group = 0
        closeness = _coverage(cand, sector.value, region.value, hits.get(partner.id, []))
        if closeness is not None:
            cand.closeness = closeness
            cand.group = min(cand.group, 2)
        if cand.group < 9:
            chosen.append(cand)
    nis2 = sector is not Sector.NON_VITAL and region is Region.NL
    if nis2 and hub_org is not None and not any(c.group == 0 for c in chosen):
        if hub_org not in chosen:
            chosen.append(hub_org)
        hub_org.group = min(hub_org.group, 1)
        hub_org.reasons.insert(
            0,
            {
                "code": "national-csirt",
                "text": "national CSIRT: the registry knows no designated CSIRT for "
                f"{sector.value}",
            },
        )
    return sorted(chosen, key=_order)


def _order(cand: Candidate) -> tuple[Any, ...]:
    always = cand.support is not None and cand.support.availability == Availability.ALWAYS.value
    return (cand.group, cand.closeness, not always, cand.partner.name.casefold())


def listed(cand: Candidate, *, public: bool) -> dict[str, Any] | None:
    """A candidate as the answer shows it. Publicly, a partner's incident contact shows only
    when its entry is marked public; a designated CSIRT is named either way (its
    designation is public by law); anyone else without a public entry is left out."""
    support, partner = cand.support, cand.partner
    shown = support is not None and (support.public or not public)
    if public and not shown and cand.group > 1:
        return None
    out: dict[str, Any] = {
        "name": partner.name,
        "type": partner.type,
        "region": partner.region,
        "designated_csirt": cand.group == 0,
        "services": list(support.services) if shown and support else [],
        "availability": support.availability if shown and support else None,
        "contact": (
            {
                "name": support.contact_name,
                "email": support.contact_email,
                "phone": support.contact_phone,
            }
            if shown and support
            else None
        ),
        "reasons": cand.reasons,
    }
    if not public:
        out["uuid"] = partner.uuid
    return out


def obligations(
    session: Session,
    *,
    sector: Sector,
    region: Region,
    size: OrganisationSize,
    chosen: list[Candidate],
) -> dict[str, Any]:
    """The sector's reporting duties from the maintained table, whom each goes to resolved
    against the registry; none outside the European Netherlands or for non-vital
    organisations, with a note that says why."""
    if region is not Region.NL:
        return {
            "applies": False,
            "note": f"The table holds the NIS2/Cbw reporting duties of the European "
            f"Netherlands; none are stated for {region.value}.",
            "steps": [],
        }
    rows = repository.obligations(session, sector=sector.value)
    if not rows:
        return {
            "applies": False,
            "note": f"No legal reporting duty is recorded for the {sector.value} sector.",
            "steps": [],
        }
    csirts = [c.partner.name for c in chosen if c.group == 0]
    national = [c.partner.name for c in chosen if c.group == 1] or ["NCSC"]
    note = "Applies to essential and important entities of the sector (NIS2 art. 2-3)."
    if size in (OrganisationSize.MICRO, OrganisationSize.SMALL):
        note += (
            " Micro and small organisations fall under it only in the cases NIS2 art. 2(2) "
            "lists (for instance DNS, TLD or trust service providers, or a sole provider of "
            "an essential service): check whether yours is one."
        )
    steps = []
    for row in rows:
        whom = []
        for target in row.report_to:
            if target == "sector-csirt":
                whom.append({"role": target, "organisations": csirts or national})
            elif target == "ncsc":
                whom.append({"role": target, "organisations": national})
            else:
                whom.append({"role": target, "organisations": []})
        steps.append(
            {
                "step": row.step,
                "deadline": row.deadline,
                "report_to": whom,
                "content": row.content,
                "legal_basis": row.legal_basis,
                "source": row.source,
            }
        )
    return {"applies": True, "note": note, "steps": steps}
