"""Pulling from a TAXII 2.1 collection: a page of objects after the cursor, grouped by report or
grouping, each group stored as one event with the cursor that follows it."""

from __future__ import annotations

import uuid as uuid_mod
from typing import Any

import orjson
from sqlalchemy.orm import Session, sessionmaker

import connectors
import tlp
from connectors.taxii.convert import SHARED_TYPES, split_by_container
from hub.connections.leases import Lease, Unit, actor_of, tally, unit_of_work
from hub.errors import HubError
from hub.intel.stix import ingest_bundle
from hub.models import Partner

TAXII_PAGE = 500


def step_taxii_pull(
    maker: sessionmaker[Session],
    lease: Lease,
    connector: connectors.ObjectPuller,
    policy: tlp.Policy,
) -> bool:
    """One page per call (``next`` while the server offers it, else ``added_after``),
    stored in one transaction with the cursor that follows it."""
    cursor = dict(lease.connection.cursor or {})
    page = _fetch_page(connector, cursor, lease.connection.filters or {})
    with unit_of_work(maker, lease) as unit:
        for group in split_by_container(page.objects):
            _store_group(unit, lease, group, policy)
        tally(unit.job, "objects", len(page.objects))
        if page.more and page.next:
            cursor["next"] = page.next
        else:
            cursor.pop("next", None)
            if page.date_added_last:
                cursor["added_after"] = page.date_added_last
        unit.connection.cursor = cursor
    return not page.more


def _fetch_page(
    connector: connectors.ObjectPuller, cursor: dict[str, Any], filters: dict[str, Any]
) -> connectors.ObjectPage:
    """The next page; an expired paging token (a 4xx on ``next``) starts again from the date."""
    types = list(filters.get("types") or [])
    limit = int(filters.get("page_size") or TAXII_PAGE)
    try:
        return connector.page(
            added_after=cursor.get("added_after"), next=cursor.get("next"), types=types, limit=limit
        )
    except connectors.PermanentError:
        if not cursor.get("next"):
            raise
        cursor.pop("next")
    return connector.page(
        added_after=cursor.get("added_after"), next=None, types=types, limit=limit
    )


def _store_group(unit: Unit, lease: Lease, group: list[dict[str, Any]], policy: tlp.Policy) -> None:
    """One report or grouping (or the rest of the page) as one bundle, ingested."""
    first = next(o["id"] for o in group if o.get("type") not in SHARED_TYPES)
    seed = unit.connection.uuid + first
    bundle_id = f"bundle--{uuid_mod.uuid5(uuid_mod.NAMESPACE_URL, seed)}"
    body = orjson.dumps({"type": "bundle", "id": bundle_id, "objects": group})
    session = unit.session
    try:
        with session.begin_nested():
            outcomes = ingest_bundle(
                session,
                body=body,
                source=session.get(Partner, lease.partner.id),
                actor=actor_of(unit.connection),
                channel=unit.connection.kind,
                policy=policy,
            )
        for outcome in outcomes:
            tally(unit.job, outcome.status)
    except HubError as err:
        tally(unit.job, "refused", error=f"{first}: {err.detail}")
