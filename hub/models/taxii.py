"""TAXII 2.1: STIX objects rendered once per event version, and the status of each Add Objects.

misp-stix is far too slow to run per request (reference: tlp-stix-taxii §4.5), so every event
version is rendered to STIX when it is stored, one row per object, with the columns the release
path filters on (effective TLP rank and addressing, copied from the MISP element the object came
from) and ``date_added``: when the object became visible as it is now, which ``added_after``
compares against.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, utcnow


class StixObject(Base):
    """One version of one STIX object of one event, as the hub serves it (marked, bytes)."""

    __tablename__ = "stix_objects"
    __table_args__ = (
        Index("ix_stix_objects_added", "date_added", "id"),
        Index("ix_stix_objects_event_object", "event_id", "stix_id", "version", unique=True),
        Index("ix_stix_objects_stix_id", "stix_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    event_uuid: Mapped[str] = mapped_column(String(36))
    event_version: Mapped[int] = mapped_column(Integer)  # the version it was rendered from
    source_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    orgc_uuid: Mapped[str] = mapped_column(String(36))
    stix_id: Mapped[str] = mapped_column(String(255))
    # The MISP element (attribute, object, report) the object is named after, if any: a
    # revocation goes only to the recipients that received that element.
    element_uuid: Mapped[str | None] = mapped_column(String(36), index=True)
    type: Mapped[str] = mapped_column(String(64))
    # `modified` (or `created`); objects with neither keep the time they were first rendered.
    version: Mapped[str] = mapped_column(String(40))
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    # A withdrawn object: served once more as a ``"revoked": true`` version to the callers
    # who could see it (same label and addressing), then kept so late pollers learn it too.
    revoked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    tlp_rank: Mapped[int] = mapped_column(Integer)
    distribution: Mapped[int] = mapped_column(Integer)
    sg_members: Mapped[str | None] = mapped_column(Text)
    # The object's references grouped by the label and addressing of their targets, so that
    # references to what a recipient may not see are pruned without another query:
    # orjson [[tlp_rank, distribution, sg_members, [stix ids]], ...]
    refs: Mapped[bytes | None] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    date_added: Mapped[datetime] = mapped_column(default=utcnow)
    doc: Mapped[bytes] = mapped_column(LargeBinary)  # the STIX object, orjson


class StixRendering(Base):
    """Whether an event's current version is rendered to STIX, and why not when it is not.

    Only the objects of events whose rendering is ``rendered`` are served: an event waiting
    for its new version to be rendered shows nothing rather than what it was.
    """

    __tablename__ = "stix_renderings"

    event_id: Mapped[int] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    event_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # rendered | pending | failed | skipped
    reason: Mapped[str | None] = mapped_column(Text)
    object_count: Mapped[int] = mapped_column(Integer, default=0)
    rendered_at: Mapped[datetime] = mapped_column(default=utcnow)


class TaxiiStatus(Base):
    """The status resource of one Add Objects request (TAXII 2.1 §4.3.1), for its submitter."""

    __tablename__ = "taxii_statuses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    partner_uuid: Mapped[str] = mapped_column(String(36), index=True)
    request_timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16))  # complete | pending
    total_count: Mapped[int] = mapped_column(Integer)
    success_count: Mapped[int] = mapped_column(Integer)
    failure_count: Mapped[int] = mapped_column(Integer)
    pending_count: Mapped[int] = mapped_column(Integer)
    # {"successes": [...], "failures": [...], "pendings": [...]} of {id, version, message}
    details: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The exercise of the key that submitted (None: a real key's): read only in that scope,
    # as what it names (the submitted objects) is (``tlp.in_scope``).
    exercise_id: Mapped[str | None] = mapped_column(String(36))
