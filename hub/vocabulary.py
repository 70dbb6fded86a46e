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
