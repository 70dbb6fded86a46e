"""Knowledge products (analyses, trends, best practices, courses of action, sector reports):
the versions of each, their review, and the sources each version derives from.

A product is published as a hub event carrying the version as a MISP event report, so it
leaves the hub only through the release path; these rows keep what the event cannot: the
workflow (who wrote, reviewed and published which version, and when) and the sources with
whether each may be named.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, utcnow


class KnowledgeProduct(Base):
    """One product; ``state`` is that of its current version, or ``needs-review`` when a
    source it was built on was withdrawn after publication."""

    __tablename__ = "knowledge_products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    owner_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    owner_uuid: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)  # the current version
    published_version: Mapped[int | None] = mapped_column(Integer)
    event_uuid: Mapped[str] = mapped_column(String(36), unique=True)  # the event it goes out as
    report_uuid: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class KnowledgeVersion(Base):
    """One version's content and its workflow stamps (never changed once published)."""

    __tablename__ = "knowledge_versions"
    __table_args__ = (UniqueConstraint("product_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_products.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    tlp: Mapped[str] = mapped_column(String(16))
    themes: Mapped[list[Any]] = mapped_column(JSONType)
    author: Mapped[str] = mapped_column(String(255))  # the key that wrote it
    author_org: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reviewed_by: Mapped[str | None] = mapped_column(String(255))
    reviewed_org: Mapped[str | None] = mapped_column(String(36))
    reviewed_at: Mapped[datetime | None] = mapped_column()
    review_note: Mapped[str | None] = mapped_column(Text)
    published_by: Mapped[str | None] = mapped_column(String(255))
    published_at: Mapped[datetime | None] = mapped_column()
    event_version: Mapped[int | None] = mapped_column(Integer)  # the event version it became


class KnowledgeSource(Base):
    """One source of one version: an item in the hub (event or attribute uuid, with its
    event) or an organisation alone; ``named``: it may be credited by name and reference.
    ``credit`` is the line recipients read (anonymous when it may not be named)."""

    __tablename__ = "knowledge_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_versions.id", ondelete="CASCADE"), index=True
    )
    item_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    event_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    org_uuid: Mapped[str] = mapped_column(String(36), index=True)
    named: Mapped[bool] = mapped_column(Boolean)
    credit: Mapped[str] = mapped_column(Text)
