"""Partner request and response bodies, with the validation of every field."""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BeforeValidator, ConfigDict, EmailStr, Field, StrictInt

from hub.schemas import Schema
from hub.vocabulary import (
    LegalStatus,
    NetworkFunction,
    PartnerStatus,
    PartnerType,
    Region,
    Role,
    Sector,
    Tier,
)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def canonical_prefix(value: str) -> str:
    """A CIDR prefix in canonical form; host bits set is an error, not silently masked."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a valid IP prefix in CIDR notation ({err})") from None
    return network.with_prefixlen


def canonical_domain(value: str) -> str:
    """Lower-case, no trailing dot, IDNA-encoded; at least two labels."""
    text = value.strip().rstrip(".").lower()
    try:
        text = text.encode("idna").decode("ascii")
    except UnicodeError as err:
        raise ValueError(f"{value!r} is not a valid domain name ({err})") from None
    labels = text.split(".")
    if len(text) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(lb) for lb in labels):
        raise ValueError(f"{value!r} is not a valid domain name")
    if labels[-1].isdigit():
        raise ValueError(f"{value!r} is an IP address, not a domain name")
    return text


def _date_is_midnight(value: object) -> object:
    """Accept a plain ISO date ("2026-03-01") as midnight UTC of that day."""
    if isinstance(value, str) and len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return value
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return value


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _no_bool(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be an integer AS number, not a boolean")
    if isinstance(value, str) and value.upper().startswith("AS") and value[2:].isdigit():
        return int(value[2:])
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_text)]
ShortText = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_text)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
IPPrefix = Annotated[str, Field(max_length=64), AfterValidator(canonical_prefix)]
Domain = Annotated[str, Field(max_length=253), AfterValidator(canonical_domain)]
ASN = Annotated[StrictInt, BeforeValidator(_no_bool), Field(ge=1, le=4294967295)]
Timestamp = Annotated[datetime | None, BeforeValidator(_date_is_midnight), AfterValidator(_utc)]


def _unique(values: list) -> list:  # type: ignore[type-arg]
    return list(dict.fromkeys(values))


class Constituency(Schema):
    """Whom a partner can warn and help: network ranges, AS numbers, domains, sectors."""

    ip_prefixes: Annotated[list[IPPrefix], Field(max_length=100_000), AfterValidator(_unique)] = []
    asns: Annotated[list[ASN], Field(max_length=10_000), AfterValidator(_unique)] = []
    domains: Annotated[list[Domain], Field(max_length=100_000), AfterValidator(_unique)] = []
    sectors: Annotated[list[Sector], AfterValidator(_unique)] = []


class Contact(Schema):
    name: Name
    email: EmailStr = Field(max_length=320)
    role: ShortText | None = None
    pgp_key: Annotated[str, Field(max_length=100_000)] | None = None


class PartnerCreate(Schema):
    uuid: UUID | None = None
    name: Name
    type: PartnerType
    tier: Tier
    region: Region
    legal_status: LegalStatus = LegalStatus.NONE
    sectors: Annotated[list[Sector], AfterValidator(_unique)] = []
    functions: Annotated[list[NetworkFunction], AfterValidator(_unique)] = []
    tlp_accepted_at: Timestamp = None
    constituency: Constituency = Constituency()
    contacts: Annotated[list[Contact], Field(max_length=100)] = []


class PartnerUpdate(Schema):
    """Only the fields given change; ``status`` has its own route, ``uuid`` never changes."""

    name: Name | None = None
    type: PartnerType | None = None
    tier: Tier | None = None
    region: Region | None = None
    legal_status: LegalStatus | None = None
    sectors: Annotated[list[Sector], AfterValidator(_unique)] | None = None
    functions: Annotated[list[NetworkFunction], AfterValidator(_unique)] | None = None
    tlp_accepted_at: Timestamp = None
    constituency: Constituency | None = None
    contacts: Annotated[list[Contact], Field(max_length=100)] | None = None


class StatusChange(Schema):
    status: PartnerStatus
    reason: Reason | None = None


class PartnerRead(Schema):
    model_config = ConfigDict(extra="ignore")

    uuid: str
    name: str
    type: PartnerType
    tier: Tier
    region: Region
    legal_status: LegalStatus
    sectors: list[Sector]
    functions: list[NetworkFunction]
    tlp_accepted_at: datetime | None
    constituency: Constituency
    contacts: list[Contact]
    status: PartnerStatus
    status_reason: str | None
    hub_organisation: bool
    created_at: datetime
    updated_at: datetime


class PartnerChangeRead(Schema):
    changed_at: datetime
    actor: str
    action: str
    changes: dict[str, dict[str, object]]


class KeyCreate(Schema):
    role: Role
    expires_at: Timestamp = None
    comment: Annotated[str, Field(max_length=200)] | None = None


class KeyRead(Schema):
    uuid: str
    role: Role
    partner_uuid: str
    key_hint: str = Field(description="last four characters of the key")
    comment: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class KeyIssued(KeyRead):
    key: str = Field(description="the key itself; shown this once and never again")


class OrganisationSummary(Schema):
    uuid: str
    name: str
    type: PartnerType
    tier: Tier
    status: PartnerStatus
    tlp_accepted: bool
    hub_organisation: bool


class Me(Schema):
    role: Role
    key: KeyRead
    organisation: OrganisationSummary
