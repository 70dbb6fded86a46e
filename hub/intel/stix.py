"""STIX 2.1 bundles into the store: each labelled from the raw bundle, converted with misp-stix
(``hub.intel.stix_convert``), then ingested as a MISP event with its conversion in the lineage;
a bundle whose markings cannot be read is held in quarantine."""

from __future__ import annotations

import hashlib
import uuid as uuid_mod

from sqlalchemy.orm import Session

import tlp
from hub.errors import InvalidField
from hub.intel import service
from hub.intel.quarantine import quarantine
from hub.intel.stix_convert import (
    CONVERTER,
    bundle_to_event,
    event_to_bundle,
    looks_like_stix,
    parse_bundle,
    uuid_of,
)
from hub.lineage import service as lineage
from hub.models import Partner

__all__ = [
    "CONVERTER",
    "bundle_to_event",
    "event_to_bundle",
    "ingest_bundle",
    "looks_like_stix",
    "parse_bundle",
]


def ingest_bundle(
    session: Session,
    *,
    body: bytes,
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
) -> list[service.Outcome]:
    bundle = parse_bundle(body)
    try:
        labels = tlp.label_stix_bundle(bundle, policy=policy, source_org_uuid=source.uuid)
    except tlp.MalformedInput as err:
        raise InvalidField(f"the bundle cannot be read: {err}", field="objects") from None
    if labels.problems:
        return [
            quarantine(
                session,
                event={
                    "uuid": uuid_of(bundle.get("id", "bundle--" + str(uuid_mod.uuid4()))),
                    "bundle": bundle,
                },
                problems=labels.problems,
                source=source,
                actor=actor,
                channel=channel,
                kind="stix",
            )
        ]
    event = bundle_to_event(bundle, labels)
    return service.ingest_events(
        session,
        payloads=[event],
        source=source,
        actor=actor,
        channel=channel,
        policy=policy,
        original=body,
        conversion=lineage.Conversion(CONVERTER, hashlib.sha256(body).hexdigest()),
    )
