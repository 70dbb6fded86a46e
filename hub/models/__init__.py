"""Every ORM model, imported here so Alembic and ``alembic check`` see the whole schema."""

from hub.models.audit import AuditEntry
from hub.models.base import Base
from hub.models.key import ApiKey
from hub.models.partner import (
    ConstituencyEntry,
    Partner,
    PartnerChange,
    PartnerContact,
    PartnerFunction,
    PartnerSector,
)

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "ConstituencyEntry",
    "Partner",
    "PartnerChange",
    "PartnerContact",
    "PartnerFunction",
    "PartnerSector",
]
