"""The lineage graph (reference §3.5): immutable artifacts (PROV entities), activities with
agent and plan (PROV activities), and derivation edges traversed with recursive CTEs.

Nothing here is updated in place: a new item version is a new artifact with a
``revision_of`` edge; a correction of a notification is a new version of its artifact.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, utcnow


class LineageActivity(Base):
    """ingest | convert | match | decide | render | deliver | send | feedback | retract."""

    __tablename__ = "lineage_activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    agent: Mapped[str] = mapped_column(String(255))  # who or what did it (key, job)
    on_behalf_of: Mapped[str | None] = mapped_column(String(36))  # organisation uuid
    plan: Mapped[str] = mapped_column(String(128))  # rule, template or policy version
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)


class LineageArtifact(Base):
    """One version of one thing: an event version, a notification render, a feedback message."""

    __tablename__ = "lineage_artifacts"
    __table_args__ = (UniqueConstraint("kind", "external_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # event | notification | feedback | release (one delivery of an event version, recorded
    # when a retraction corrects it) | submission (bytes a source sent, named by their SHA-256)
    kind: Mapped[str] = mapped_column(String(24))
    external_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    source_uuid: Mapped[str | None] = mapped_column(String(36))  # wasAttributedTo
    tlp: Mapped[str | None] = mapped_column(String(16))
    generated_by: Mapped[int | None] = mapped_column(ForeignKey("lineage_activities.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LineageUse(Base):
    """PROV ``used``: an activity read an artifact (a delivery used a notification)."""

    __tablename__ = "lineage_uses"

    activity_id: Mapped[int] = mapped_column(ForeignKey("lineage_activities.id"), primary_key=True)
    artifact_id: Mapped[int] = mapped_column(
        ForeignKey("lineage_artifacts.id"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(24))


class LineageDerivation(Base):
    """``derived`` came from ``source`` through ``activity``: derived_from | revision_of |
    invalidated_by."""

    __tablename__ = "lineage_derivations"
    __table_args__ = (Index("ix_lineage_derivations_source", "source_id", "derived_id"),)

    derived_id: Mapped[int] = mapped_column(ForeignKey("lineage_artifacts.id"), primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("lineage_artifacts.id"), primary_key=True)
    rel: Mapped[str] = mapped_column(String(16), primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("lineage_activities.id"))
