"""Drafts: what a submitted event will write if it turns out to be new, made before the
unit of work begins.

On SQLite a unit that writes holds the database's only write lock from its first statement
to its commit, and every other request that writes (an audited read appends to the audit
log) waits for it. Building a new event's version — labels, canonical form, hash, snapshot,
and one row per element — is CPU work that needs nothing from the database but the
submitter's identity, so the REST submission does it first (``draft_new_events``); inside
the unit, ``hub.intel.service`` checks that the event is still new (and the submitter's
identity unchanged) and only sends the rows (``write_new``). Anything else — an edit of a
stored event, a uuid held in quarantine, another Orgc — is decided and built in the unit
as before: the draft is then ignored, never trusted.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.db import bulk_insert_values, insert_json_rows
from hub.errors import InvalidField
from hub.intel import moments
from hub.intel.merge import Changes
from hub.intel.rows import (
    attribute_rows,
    count_elements,
    event_values,
    int_or_zero,
    labels_json,
    number_reports,
    object_row,
    rank_of,
    uuid_clash_named,
)
from hub.intel.sightings import take_sightings
from hub.intel.snapshots import gc_paused
from hub.models import Attribute, Event, EventObject, Partner
from hub.models.base import utcnow

# Above this many elements an event is built in its unit as before: a draft holds a second
# copy of every row in memory (goal I3), and such events come from bulk loads, not requests.
MAX_DRAFT_ELEMENTS = 50_000


@dataclass(slots=True)
class NewRows:
    """The rows of a new event's first version, but for the ids the database gives: the
    event row's values (without source and ``changed_at``), and its objects and attributes
    as value tuples in the order of ``*_names`` (without ``event_id``), or for SQLite as
    one JSON array each (``json_rows``: written in one statement, made here)."""

    values: dict[str, Any]
    reports: list[dict[str, Any]]
    object_names: tuple[str, ...]
    objects: list[tuple[Any, ...]] | bytes  # bytes: for SQLite, as ``json_rows``
    attribute_names: tuple[str, ...]
    attributes: list[tuple[Any, ...]] | bytes
    for_sqlite: bool


@dataclass(slots=True)
class NewVersion:
    """A submitted event's first version, as the unit of work will write it if the event is
    still new and ``orgc`` is what the unit gives it."""

    orgc: dict[str, Any]
    merged: dict[str, Any]
    labels: tlp.EventLabels
    changes: Changes
    digest: str
    snapshot: bytes
    publications: str
    rows: NewRows | None  # None: the labels have problems (quarantine, decided in the unit)


@dataclass(slots=True)
class Draft:
    """What an event's ingest can do before its unit: its sightings taken out (or why they
    cannot be), and its first version when it is new."""

    sightings: list[dict[str, Any]]
    error: InvalidField | None = None
    new: NewVersion | None = None


def digest_and_snapshot(merged: dict[str, Any], labels: tlp.EventLabels) -> tuple[str, bytes]:
    """The content hash and the compressed version snapshot of an event state: one canonical
    serialisation serves both (a 10^5-attribute event is ~25 MB of JSON: not twice)."""
    canonical = orjson.dumps(merged, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(canonical).hexdigest()
    packer = zlib.compressobj(1)
    snapshot = b"".join(
        (
            packer.compress(b'{"event":'),
            packer.compress(canonical),
            packer.compress(b',"labels":'),
            packer.compress(orjson.dumps(labels_json(labels))),
            packer.compress(b"}"),
            packer.flush(),
        )
    )
    return digest, snapshot


def draft_event(
    event: dict[str, Any], *, orgc: dict[str, Any], policy: tlp.Policy, now: int, sqlite: bool
) -> Draft:
    """The draft of one normalised event (its sightings are taken out of it, as ingest
    does first): ``orgc`` is the creator the unit will give it (the submitter)."""
    try:
        draft = Draft(take_sightings(event))
    except InvalidField as err:
        return Draft([], error=err)
    if count_elements(event) > MAX_DRAFT_ELEMENTS:
        return draft
    merged = {**event, "Orgc": orgc}  # the unit gives the event its creator the same way
    publish_now(merged, event, was_published=False, now=now)
    labels = tlp.label_misp_event(merged, policy=policy, source_org_uuid=orgc["uuid"])
    stamp = int(merged["timestamp"])
    publications = orjson.dumps(
        [[stamp, int_or_zero(merged.get("publish_timestamp"))]] if merged.get("published") else []
    ).decode()
    digest, snapshot = digest_and_snapshot(merged, labels) if not labels.problems else ("", b"")
    draft.new = NewVersion(
        orgc=orgc,
        merged=merged,
        labels=labels,
        changes=Changes(new=count_elements(merged)),
        digest=digest,
        snapshot=snapshot,
        publications=publications,
        rows=None if labels.problems else _new_rows(merged, labels, digest, publications, sqlite),
    )
    return draft


def _new_rows(
    event: dict[str, Any], labels: tlp.EventLabels, digest: str, publications: str, sqlite: bool
) -> NewRows:
    stamp = int(event["timestamp"])

    def constant(_uuid: str) -> int:
        return stamp

    with gc_paused():
        values = event_values(
            event,
            labels,
            constant,
            digest=digest,
            meta_timestamp=stamp,
            publications=publications,
            withdrawn_ts=0,
        )
        objects = [
            object_row(o, rank_of(labels.objects[o["uuid"]]), 0, stamp) for o in event["Object"]
        ]
        attributes = list(attribute_rows(event, labels, 0, constant))
    return NewRows(
        values=values,
        reports=event.get("EventReport") or [],
        object_names=tuple(objects[0]) if objects else (),
        objects=_values(objects, sqlite),
        attribute_names=tuple(attributes[0]) if attributes else (),
        attributes=_values(attributes, sqlite),
        for_sqlite=sqlite,
    )


def _values(rows: list[dict[str, Any]], sqlite: bool) -> list[tuple[Any, ...]] | bytes:
    """Rows (``event_id`` first) as value tuples without it, or for SQLite as JSON."""
    values = [tuple(r.values())[1:] for r in rows]
    return json_rows(values) if sqlite and values else values


def write_new(session: Session, *, uuid: str, rows: NewRows, source: Partner) -> Event:
    """Write a new event's drafted rows: the event row (its id from the database), its
    report numbers, then its objects and attributes in one bulk statement each."""
    row = Event(
        uuid=uuid,
        version=1,
        **rows.values,
        source_partner_id=source.id,
        changed_at=utcnow(),
    )
    session.add(row)
    session.flush()
    moments.changed(session, row)
    number_reports(session, row.id, rows.reports)
    connection = session.connection()
    for table, names, values in (
        (EventObject.__table__, rows.object_names, rows.objects),
        (Attribute.__table__, rows.attribute_names, rows.attributes),
    ):
        if not values:
            continue
        with uuid_clash_named(table):  # type: ignore[arg-type]
            if connection.dialect.name == "sqlite":
                insert_json_rows(
                    connection,
                    table,  # type: ignore[arg-type]
                    lead=("event_id", row.id),
                    names=names[1:],
                    rows_json=values if isinstance(values, bytes) else json_rows(values),
                    blobs=("doc",),
                )
            else:
                bulk_insert_values(
                    connection,
                    table,  # type: ignore[arg-type]
                    names,
                    ((row.id, *value) for value in values),
                )
    return row


def json_rows(values: list[tuple[Any, ...]]) -> bytes:
    """Value tuples as one JSON array, for SQLite (``hub.db.insert_json_rows``): the stored
    documents (bytes) as their text, JSON made by ``orjson``, hence UTF-8."""
    return orjson.dumps(
        [[v.decode() if isinstance(v, bytes) else v for v in value] for value in values]
    )


def publish_now(
    merged: dict[str, Any], incoming: dict[str, Any], *, was_published: bool, now: int
) -> None:
    """Publishing stamps ``publish_timestamp`` (MISP's publish does), so searches by
    ``publish_timestamp`` or ``last`` find what was published through the hub: an event that
    becomes published without an explicit publish time of its own gets now."""
    if not merged.get("published"):
        return
    if int_or_zero(incoming.get("publish_timestamp")):
        return  # the sender's own (a MISP pushing what it published)
    if not was_published or not int_or_zero(merged.get("publish_timestamp")):
        merged["publish_timestamp"] = str(now)
