"""The contract's enumerations (DESIGN.md §2): JSON and the CLI spell them exactly so."""

from __future__ import annotations

from enum import StrEnum


class PartnerType(StrEnum):
    NATIONAL_CSIRT = "national-csirt"
    SECTORAL_CSIRT = "sectoral-csirt"
    ISAC = "isac"
    ISP = "isp"
    MSP = "msp"
    MSSP = "mssp"
    BRANCH_ORGANISATION = "branch-organisation"
    COOPERATION = "cooperation"
    VENDOR = "vendor"
    CLOUD_PROVIDER = "cloud-provider"
    GOVERNMENT = "government"
    OTHER = "other"


class Tier(StrEnum):
    CORE = "core"
    ECOSYSTEM = "ecosystem"
    CONNECTION = "connection"


class Region(StrEnum):
    NL = "nl"
    BONAIRE = "bonaire"
    SINT_EUSTATIUS = "sint-eustatius"
    SABA = "saba"
    CURACAO = "curacao"
    ARUBA = "aruba"
    SINT_MAARTEN = "sint-maarten"


class LegalStatus(StrEnum):
    DESIGNATED_CSIRT = "designated-csirt"
    OKTT = "oktt"
    NONE = "none"


class NetworkFunction(StrEnum):
    INFORMATION_SHARING = "information-sharing"
    TARGET_VICTIM_NOTIFICATION = "target-victim-notification"
    INCIDENT_HANDLING = "incident-handling"
    KNOWLEDGE_EXCHANGE = "knowledge-exchange"
    TRAINING_EXERCISES = "training-exercises"


class Sector(StrEnum):
    """NIS2 annexes I and II, plus non-vital."""

    ENERGY = "energy"
    TRANSPORT = "transport"
    BANKING = "banking"
    FINANCIAL_MARKET_INFRASTRUCTURE = "financial-market-infrastructure"
    HEALTH = "health"
    DRINKING_WATER = "drinking-water"
    WASTE_WATER = "waste-water"
    DIGITAL_INFRASTRUCTURE = "digital-infrastructure"
    ICT_SERVICE_MANAGEMENT = "ict-service-management"
    PUBLIC_ADMINISTRATION = "public-administration"
    SPACE = "space"
    POSTAL_COURIER = "postal-courier"
    WASTE_MANAGEMENT = "waste-management"
    CHEMICALS = "chemicals"
    FOOD = "food"
    MANUFACTURING = "manufacturing"
    DIGITAL_PROVIDERS = "digital-providers"
    RESEARCH = "research"
    NON_VITAL = "non-vital"


class PartnerStatus(StrEnum):
    PROSPECT = "prospect"
    ONBOARDING = "onboarding"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    WITHDRAWN = "withdrawn"


class Role(StrEnum):
    OPERATOR = "operator"
    AUDITOR = "auditor"
    PARTNER = "partner"
    SYNC = "sync"


# --- incident handling (issue #19): the incident support a partner offers -------------------


class IncidentService(StrEnum):
    TRIAGE = "triage"
    FORENSICS = "forensics"
    RECOVERY = "recovery"
    LEGAL_REPORTING_ADVICE = "legal-reporting-advice"
    CRISIS_COMMUNICATION = "crisis-communication"


class SupportAudience(StrEnum):
    """To whom a partner offers incident support. ``sector`` and ``region`` name the sectors
    and regions in the entry; ``members-only`` stands alone and counts only a registered
    constituency match (IP address, AS number or domain)."""

    CONSTITUENCY = "constituency"
    SECTOR = "sector"
    REGION = "region"
    ANY_ORGANISATION = "any-organisation"
    MEMBERS_ONLY = "members-only"


class Availability(StrEnum):
    OFFICE_HOURS = "office-hours"
    ALWAYS = "24x7"


class OrganisationType(StrEnum):
    """The kind of organisation asking "who helps me now"."""

    COMPANY = "company"
    GOVERNMENT = "government"
    NON_PROFIT = "non-profit"
    OTHER = "other"


class OrganisationSize(StrEnum):
    """EU SME classes (Recommendation 2003/361/EC): NIS2's size-cap rule starts at medium."""

    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class ReportingStep(StrEnum):
    """NIS2 art. 23(4) steps of a significant incident's report."""

    EARLY_WARNING = "early-warning"
    INCIDENT_NOTIFICATION = "incident-notification"
    FINAL_REPORT = "final-report"


class ReportTo(StrEnum):
    """Whom a report goes to: the sector's designated CSIRT (the NCSC where none is
    designated), the NCSC itself, the sector's supervisory authority."""

    SECTOR_CSIRT = "sector-csirt"
    NCSC = "ncsc"
    SUPERVISORY_AUTHORITY = "supervisory-authority"


class CaseStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
