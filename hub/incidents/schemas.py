"""Request and response bodies of incident handling, with the validation of every field."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, EmailStr, Field

from hub.partners.schemas import ASN, Domain, Name
from hub.schemas import Schema
from hub.vocabulary import (
    Availability,
    CaseStatus,
    IncidentService,
    OrganisationSize,
    OrganisationType,
    Region,
    ReportingStep,
    ReportTo,
    Sector,
    SupportAudience,
)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # newlines and tabs are text
_PHONE = re.compile(r"\+?[0-9][0-9 ()-]{5,30}")
TLP_LABELS = ("clear", "green", "amber", "amber+strict", "red")


def _text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _phone(value: str) -> str:
    if not _PHONE.fullmatch(value):
        raise ValueError("must be a phone number: digits, spaces, ( ) - and an optional leading +")
    return value


def _unique_nonempty(values: list[Any]) -> list[Any]:
    if not values:
        raise ValueError("must name at least one")
    return list(dict.fromkeys(values))


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


def _tlp(value: str) -> str:
    text = value.strip().lower().removeprefix("tlp:")
    if text == "white":
        text = "clear"
    if text not in TLP_LABELS:
        raise ValueError(f"must be one of {', '.join(TLP_LABELS)}")
    return text


Text = Annotated[str, Field(min_length=1, max_length=20_000), AfterValidator(_text)]
Title = Annotated[str, Field(min_length=1, max_length=300), AfterValidator(_text)]
Phone = Annotated[str, Field(max_length=32), AfterValidator(_phone)]
TlpLabel = Annotated[str, Field(max_length=20), AfterValidator(_tlp)]


class IncidentContact(Schema):
    name: Name
    email: EmailStr = Field(max_length=320)
    phone: Phone


class IncidentSupportBody(Schema):
    """The incident support a partner offers. ``sectors`` go with audience ``sector``,
    ``regions`` with ``region``; ``members-only`` stands alone (checked by the service,
    which names the field)."""

    services: Annotated[list[IncidentService], AfterValidator(_unique_nonempty)]
    audience: Annotated[list[SupportAudience], AfterValidator(_unique_nonempty)]
    sectors: Annotated[list[Sector], AfterValidator(_unique)] = []
    regions: Annotated[list[Region], AfterValidator(_unique)] = []
    availability: Availability
    contact: IncidentContact
    public: bool = False


class IncidentSupportRead(IncidentSupportBody):
    partner_uuid: str
    partner_name: str
    updated_at: datetime
    updated_by: str


class ObligationBody(Schema):
    step: ReportingStep
    deadline: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_text)]
    deadline_hours: int = Field(ge=1, le=24 * 366)
    report_to: Annotated[list[ReportTo], AfterValidator(_unique_nonempty)]
    content: Text
    legal_basis: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_text)]
    source: Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_text)]


class SectorObligations(Schema):
    """Every step of one sector's reporting duty; replaces what the table held."""

    obligations: Annotated[list[ObligationBody], Field(max_length=10)]


class ObligationRead(ObligationBody):
    sector: Sector
    updated_at: datetime
    updated_by: str


class HelpRequest(Schema):
    """The partner route's question: the public one's, plus network identifiers."""

    sector: Sector
    region: Region
    type: OrganisationType
    size: OrganisationSize
    ip_addresses: Annotated[list[str], Field(max_length=256)] = []
    asns: Annotated[list[ASN], Field(max_length=64)] = []
    domains: Annotated[list[Domain], Field(max_length=64)] = []


class CaseCreate(Schema):
    title: Title
    sector: Sector
    tlp: TlpLabel
    description: Text


class CaseLink(Schema):
    event_uuid: UUID


class CaseReferral(Schema):
    referred: Name = Field(description="the organisation referred, as the case names it")
    to_partner: UUID
    note: Text | None = None


class CaseClose(Schema):
    lessons_learned: Text


class CaseToProduct(Schema):
    """A knowledge product from a closed case's lessons learned: every field has a default
    taken from the case (its label, ``Lessons learned: <title>``, the lessons as the body)."""

    kind: Literal["best-practice", "analysis"] = "best-practice"
    tlp: Literal["clear", "green", "amber"] | None = Field(
        default=None, description="the case's label or stricter; default the case's"
    )
    title: Annotated[str | None, Field(min_length=1, max_length=255)] = None
    body: Annotated[str | None, Field(min_length=1, max_length=500_000)] = None
    themes: Annotated[list[str], Field(max_length=20)] = []
    name_opener: bool = Field(
        default=False, description="credit the case's opener by name (default: anonymously)"
    )


class CaseSummary(Schema):
    uuid: str
    title: str
    sector: Sector
    tlp: str
    status: CaseStatus
    opener: str | None
    opened_at: datetime


class CaseRead(Schema):
    uuid: str
    title: str
    sector: Sector
    tlp: str
    description: str
    status: CaseStatus
    opener: dict[str, str]
    opened_by: str
    opened_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    lessons_learned: str | None
    items: list[dict[str, Any]]
    referrals: list[dict[str, Any]]


class HelpReason(Schema):
    code: str = Field(description="why: designated-csirt, national-csirt, constituency-match, …")
    text: str


class HelpOrganisation(Schema):
    uuid: str | None = Field(None, description="partner route only")
    name: str
    type: str
    region: str
    designated_csirt: bool
    services: list[str]
    availability: str | None
    contact: dict[str, str] | None
    reasons: list[HelpReason]


class HelpAnswer(Schema):
    """The answer of both "who helps me now" routes (the public one without ``uuid``)."""

    organisation: dict[str, str]
    organisations: list[HelpOrganisation]
    reporting_obligations: dict[str, Any]
    advisories: list[dict[str, Any]]
    tlp: dict[str, Any]
