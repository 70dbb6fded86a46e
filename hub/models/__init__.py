"""Every ORM model, imported here so Alembic and ``alembic check`` see the whole schema."""

from hub.models.audit import (
    AuditCheckpoint,
    AuditEntry,
    AuditHead,
    AuditTreeNode,
    ReleaseIndexState,
)
from hub.models.base import Base
from hub.models.connection import Connection, ConnectionJob, PushOutboxItem
from hub.models.exercise import Exercise, ExerciseInject, ExerciseParticipant, ExerciseTarget
from hub.models.incident import (
    IncidentCase,
    IncidentCaseItem,
    IncidentReferral,
    IncidentSupport,
    ReportingObligation,
)
from hub.models.intel import (
    Attribute,
    ElementWithdrawal,
    Event,
    EventObject,
    EventReport,
    EventVersion,
    QuarantineItem,
    QuarantineUuid,
    Release,
    Sighting,
)
from hub.models.key import ApiKey, AuthThrottle
from hub.models.knowledge import KnowledgeProduct, KnowledgeSource, KnowledgeVersion
from hub.models.lineage import LineageActivity, LineageArtifact, LineageDerivation, LineageUse
from hub.models.notification import (
    Directive,
    Notification,
    NotificationCorrection,
    NotificationFeedback,
    NotificationItem,
    NotificationMail,
    NotifyMark,
    Observation,
    TargetEntry,
)
from hub.models.partner import (
    ConstituencyEntry,
    Partner,
    PartnerChange,
    PartnerContact,
    PartnerFunction,
    PartnerSector,
)
from hub.models.taxii import StixObject, StixRendering, TaxiiStatus

__all__ = [
    "IncidentCase",
    "IncidentCaseItem",
    "IncidentReferral",
    "IncidentSupport",
    "ReportingObligation",
    "AuditCheckpoint",
    "AuditTreeNode",
    "Directive",
    "LineageActivity",
    "LineageArtifact",
    "LineageDerivation",
    "LineageUse",
    "Notification",
    "NotificationCorrection",
    "NotificationFeedback",
    "NotificationItem",
    "NotifyMark",
    "Observation",
    "TargetEntry",
    "NotificationMail",
    "Attribute",
    "Exercise",
    "ExerciseInject",
    "ExerciseParticipant",
    "ExerciseTarget",
    "ElementWithdrawal",
    "Event",
    "EventObject",
    "EventReport",
    "EventVersion",
    "QuarantineItem",
    "QuarantineUuid",
    "Release",
    "Sighting",
    "ApiKey",
    "KnowledgeProduct",
    "KnowledgeSource",
    "KnowledgeVersion",
    "AuthThrottle",
    "AuditEntry",
    "AuditHead",
    "ReleaseIndexState",
    "Base",
    "Connection",
    "ConnectionJob",
    "PushOutboxItem",
    "ConstituencyEntry",
    "Partner",
    "PartnerChange",
    "PartnerContact",
    "PartnerFunction",
    "PartnerSector",
    "StixObject",
    "StixRendering",
    "TaxiiStatus",
]
