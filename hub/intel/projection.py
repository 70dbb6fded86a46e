"""Every stored event version, rendered to STIX 2.1 once: one row per object, labelled per element.

misp-stix costs about 1 ms per attribute (reference: tlp-stix-taxii §4.5), far too slow to run
per request, so ingest calls ``render_event_version`` and TAXII serves the stored bytes.

This module decides when an event is rendered (at ingest, in the background, not at all) and
records how it went (``stix_renderings``). What each object is labelled and addressed to:
``hub.intel.stix_labels``; how the rows follow each new version (``date_added``, one current
version per object, revocations): ``hub.intel.stix_store``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

import tlp
from connectors.misp import has_content
from hub.intel import snapshots as intel
from hub.intel import stix_convert as intel_stix
from hub.intel.stix_labels import label_objects, own_uuids, shareable
from hub.intel.stix_store import reconcile
from hub.jobs import claiming
from hub.models import Event, Partner, StixObject, StixRendering
from hub.models.base import utcnow

log = logging.getLogger("hub.intel.projection")

# misp-stix takes about 1 ms per attribute: ingest renders small events itself and leaves
# larger ones to ``render_pending`` (a job); the largest are not rendered at all.
MAX_RENDER_AT_INGEST = 500
MAX_RENDER_ATTRIBUTES = 20_000


def render_event_version(
    session: Session,
    *,
    event: Event,
    state: dict[str, Any],
    labels: tlp.EventLabels,
    defer_above: int | None = MAX_RENDER_AT_INGEST,
    now: datetime | None = None,
) -> None:
    """Render the event's current version (``state``) and reconcile its ``stix_objects`` rows.

    Called by ingest for every stored version. An event with more than ``defer_above``
    attributes is only marked pending (its older rendering stops being served at once) and
    left to ``render_pending``, so that ingest keeps its speed (DESIGN.md §5, I1). A
    conversion failure never breaks ingest: it is logged, the event's objects are withdrawn
    and the reason is recorded in ``stix_renderings``. ``now`` dates what changes (ingest
    gives the batch's stamp and dates its objects again after its audit entries).
    """
    own = own_uuids(state)
    if not has_content(state):  # everything withdrawn: nothing to convert, all is revoked
        _rendered(session, event, reconcile(session, event, [], own=own, now=now))
        return
    live = intel.live_state(state)
    count = len(live["Attribute"]) + sum(len(o["Attribute"]) for o in live["Object"])
    if defer_above is not None and count > defer_above:
        reason = f"{count} attributes: rendered in the background, not at ingest"
        _record(session, event, status="pending", reason=reason, count=0)
        return
    if count > MAX_RENDER_ATTRIBUTES:
        _withdraw(
            session,
            event,
            f"{count} attributes: too large to render (limit {MAX_RENDER_ATTRIBUTES}); "
            "not served over TAXII",
            status="skipped",
        )
        return
    rendered = shareable(live, chr=event.chr)
    # misp-stix makes a published event's container a report (``published``: its publish
    # time), else a grouping. The rendering is every recipient's: an event unpublished by
    # changes to its elements stays a report while recipients may still hold a published
    # copy (``Event.publications``), published at the first of them, so neither its type
    # nor its time tells anybody of changes or publications it cannot see.
    publications = orjson.loads(event.publications or "[]")
    rendered["published"] = bool(event.published) or bool(publications)
    if publications:
        rendered["publish_timestamp"] = str(publications[0][1])
    try:
        bundle = intel_stix.event_to_bundle({"Event": rendered})
    except Exception as err:  # misp-stix failing must not break ingest
        log.warning("STIX rendering of event %s failed: %r", event.uuid, err)
        _withdraw(session, event, f"misp-stix failed: {type(err).__name__}: {err}"[:2000])
        return
    objects = label_objects(
        live, labels, bundle["objects"], chr=event.chr, meta=event.meta_timestamp or None
    )
    _rendered(session, event, reconcile(session, event, objects, own=own, now=now))


def render_pending(session: Session, *, policy: tlp.Policy, limit: int = 10) -> int:
    """Render up to ``limit`` events marked pending at ingest (for a worker job; each call
    is one unit of work). Returns how many were rendered (or recorded as failed)."""
    pending = session.scalars(
        claiming(
            select(StixRendering)
            .where(StixRendering.status == "pending")
            .order_by(StixRendering.rendered_at)
            .limit(limit)
        )
    ).all()
    for rendering in pending:
        event = session.get(Event, rendering.event_id)
        assert event is not None
        source = session.get(Partner, event.source_partner_id)
        assert source is not None
        state = intel.current_state(session, event)
        labels = tlp.label_misp_event(state, policy=policy, source_org_uuid=source.uuid)
        render_event_version(session, event=event, state=state, labels=labels, defer_above=None)
    return len(pending)


def _withdraw(session: Session, event: Event, reason: str, *, status: str = "failed") -> None:
    session.execute(delete(StixObject).where(StixObject.event_id == event.id))
    _record(session, event, status=status, reason=reason, count=0)


def _rendered(session: Session, event: Event, count: int) -> None:
    _record(session, event, status="rendered", reason=None, count=count)


def _record(session: Session, event: Event, *, status: str, reason: str | None, count: int) -> None:
    row = session.get(StixRendering, event.id)
    if row is None:
        row = StixRendering(event_id=event.id)
        session.add(row)
    row.event_version = event.version
    row.status = status
    row.reason = reason
    row.object_count = count
    row.rendered_at = utcnow()
    session.flush()
