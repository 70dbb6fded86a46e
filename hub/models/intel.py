"""Shared information: MISP events with their objects, attributes and sightings, every version,
and what is held in quarantine.

Elements are stored as their MISP JSON (``doc``, orjson bytes) plus the columns queries need;
the effective TLP rank (0 CLEAR … 4 RED) is a column so release filtering happens in SQL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.models.base import Base, JSONType, utcnow


class Event(Base):
    """The current state of one MISP event (identity: ``uuid``)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_changed", "changed_at", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    info: Mapped[str] = mapped_column(Text)
    date: Mapped[str | None] = mapped_column(String(10))
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    publish_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    distribution: Mapped[int] = mapped_column(Integer)
    # JSON list of the organisation uuids the event's sharing group names (distribution 4).
    sg_members: Mapped[str | None] = mapped_column(Text)
    orgc_uuid: Mapped[str] = mapped_column(String(36), index=True)
    orgc_name: Mapped[str] = mapped_column(String(255))
    source_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), index=True)
    tlp_rank: Mapped[int] = mapped_column(Integer, index=True)
    # Lowest effective rank among the event's live attributes, objects and reports: an event
    # whose every element is above a recipient's limit is not listed for it (not even its title).
    min_rank: Mapped[int | None] = mapped_column(Integer)
    # What a recipient may receive of an event whose live elements all go where the event
    # goes (``narrowed`` false) depends on their labels alone: ``profile`` counts them by the
    # label they go out with (JSON {"n": live attributes, "e": live elements, "t": their
    # latest timestamp}, each a list by rank 0-4), so a listing needs no element rows.
    # Null, or narrowed: decided from the element rows (``hub.sharing.view``).
    narrowed: Mapped[bool] = mapped_column(Boolean, default=True)
    profile: Mapped[str | None] = mapped_column(Text)
    # The event timestamp of the last version that changed the event's own fields (title,
    # tags, dates, addressing; not its publication): with the elements a recipient
    # receives, what moves the timestamp it sees.
    meta_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    # The event timestamp of the last version that withdrew an element: what the creator
    # sees move (any other recipient sees only the withdrawals of what it had received).
    withdrawn_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    # The publications a recipient's copy may still be: JSON [[event timestamp of a version
    # stored published, its publish_timestamp], ...] since the last change to the event's
    # own fields or explicit unpublish, oldest first (at most PUBLICATIONS_KEPT). A change to
    # elements unpublishes the event for its creator, but a recipient that sees nothing of
    # it still holds the copy published then (``hub.sharing.view.publication``).
    publications: Mapped[str] = mapped_column(Text, default="[]")
    chr: Mapped[bool] = mapped_column(Boolean, default=False)
    # The exercise whose item this is (None: real traffic): it goes only to that exercise's
    # keys (``tlp.in_scope``), in every pre-filter and every decision.
    exercise_id: Mapped[str | None] = mapped_column(
        ForeignKey("exercises.uuid", ondelete="RESTRICT"), index=True
    )
    tags: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of tag names (search)
    attribute_count: Mapped[int] = mapped_column(Integer, default=0)
    doc: Mapped[bytes] = mapped_column(LargeBinary)  # the Event without Attribute/Object lists
    version: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventObject(Base):
    """A MISP object; its object references travel inside ``doc``."""

    __tablename__ = "event_objects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    distribution: Mapped[int] = mapped_column(Integer)
    sg_members: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    # The event's timestamp in the version that last added or replaced it: what moves the
    # event's timestamp for a recipient that receives it (``hub.sharing.view``).
    changed_ts: Mapped[int] = mapped_column(BigInteger, default=0)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    tlp_rank: Mapped[int] = mapped_column(Integer)
    doc: Mapped[bytes] = mapped_column(LargeBinary)  # the Object without its Attribute list


class Attribute(Base):
    """A MISP attribute, standalone (``object_uuid`` null) or inside an object."""

    __tablename__ = "attributes"
    __table_args__ = (
        Index("ix_attributes_value_key", "value_key", "type"),
        Index("ix_attributes_event_object", "event_id", "object_uuid"),
        Index("ix_attributes_changed", "timestamp", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    object_uuid: Mapped[str | None] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    # The first 200 characters of the value, indexed: values may be far longer than a
    # PostgreSQL btree entry allows; searches match the key and then the whole value.
    value_key: Mapped[str] = mapped_column(String(200))
    to_ids: Mapped[bool] = mapped_column(Boolean, default=False)
    distribution: Mapped[int] = mapped_column(Integer)
    sg_members: Mapped[str | None] = mapped_column(Text)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    changed_ts: Mapped[int] = mapped_column(BigInteger, default=0)  # as EventObject's
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    tlp_rank: Mapped[int] = mapped_column(Integer)
    doc: Mapped[bytes] = mapped_column(LargeBinary)


class EventReport(Base):
    """The row of an event report (MISP's markdown report): reports live in the event's
    document; the row gives each a number, so MISP clients can address it by id
    (``hub.sharing.ids``)."""

    __tablename__ = "event_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)


class Sighting(Base):
    __tablename__ = "sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    attribute_uuid: Mapped[str] = mapped_column(String(36), index=True)
    org_uuid: Mapped[str | None] = mapped_column(String(36))
    type: Mapped[int] = mapped_column(Integer, default=0)
    date_sighting: Mapped[int] = mapped_column(BigInteger)
    doc: Mapped[bytes] = mapped_column(LargeBinary)


class EventVersion(Base):
    """An accepted change: immutable; ``snapshot`` is the whole event after it (zlib JSON)."""

    __tablename__ = "event_versions"
    __table_args__ = (Index("ix_event_versions_event_version", "event_id", "version", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    arrived_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    actor: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(32))
    event_timestamp: Mapped[int] = mapped_column(BigInteger)
    tlp_rank: Mapped[int] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType)  # counts: new/updated/unchanged
    snapshot: Mapped[bytes] = mapped_column(LargeBinary)  # {"event": …, "labels": …}
    original: Mapped[bytes | None] = mapped_column(LargeBinary)  # the STIX bundle, if any


class QuarantineItem(Base):
    """Input whose markings could not be read: held until an operator releases or rejects it."""

    __tablename__ = "quarantine_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    item_uuid: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # misp | stix
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))
    actor: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(32))
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    payload: Mapped[bytes] = mapped_column(LargeBinary)  # zlib JSON of the item as received
    status: Mapped[str] = mapped_column(String(16), default="held", index=True)
    decided_by: Mapped[str | None] = mapped_column(String(255))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    decision_label: Mapped[str | None] = mapped_column(String(16))


class QuarantineUuid(Base):
    """A uuid of held input, reserved for its source whatever the operator decides (as if the
    input were stored): the event a STIX bundle converts to and every element of a held event
    (``hub.intel.service.ingest_events`` refuses them to anyone else)."""

    __tablename__ = "quarantine_uuids"

    item_id: Mapped[int] = mapped_column(ForeignKey("quarantine_items.id"), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # event | attribute | object | report
    source_partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"))


class Release(Base):
    """One item in one delivery (or one refusal) to one recipient; points at its audit entry."""

    __tablename__ = "releases"
    __table_args__ = (
        Index("ix_releases_event", "event_uuid", "id"),
        Index("ix_releases_recipient", "recipient_uuid", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    audit_seq: Mapped[int] = mapped_column(BigInteger)
    released_at: Mapped[datetime] = mapped_column(default=utcnow)
    recipient_uuid: Mapped[str] = mapped_column(String(36))
    channel: Mapped[str] = mapped_column(String(32))
    event_uuid: Mapped[str] = mapped_column(String(36))
    event_version: Mapped[int | None] = mapped_column(Integer)
    allowed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(48))
    tlp: Mapped[str | None] = mapped_column(String(16))
    removed: Mapped[int] = mapped_column(Integer, default=0)  # elements withheld from it


class ElementWithdrawal(Base):
    """A withdrawn element (deleted, marked false positive) that one recipient had received:
    only such recipients are sent its deletion or revocation; nobody else learns it existed
    (DESIGN.md §3). Written by the retraction of releases (``hub.lineage.retraction``)."""

    __tablename__ = "element_withdrawals"
    __table_args__ = (
        Index(
            "ix_element_withdrawals_event_recipient",
            "event_id",
            "recipient_uuid",
            "element_uuid",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    element_uuid: Mapped[str] = mapped_column(String(36), index=True)
    recipient_uuid: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)  # the event version that withdrew it
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
