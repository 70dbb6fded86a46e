"""STIX 2.1 bundles into the store: each labelled from the raw bundle, converted with misp-stix
(``hub.intel.stix_convert``), then ingested as a MISP event with its conversion in the lineage;
a bundle whose markings cannot be read is held in quarantine."""

from __future__ import annotations

import hashlib
import uuid as uuid_mod
from dataclasses import dataclass
from typing import Any

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
    "prepare_bundle",
    "looks_like_stix",
    "parse_bundle",
]


@dataclass(frozen=True, slots=True)
class PreparedBundle:
    """A STIX bundle read, labelled and converted with no database work
    (``prepare_bundle``): the event to ingest, or the problems that hold it in quarantine."""

    body: bytes
    bundle: dict[str, Any]
    problems: tuple[tlp.Problem, ...]
    event: Any
    converted: dict[str, Any] | None = None  # held: the event it would convert to, if any


def prepare_bundle(body: bytes, *, source_uuid: str, policy: tlp.Policy) -> PreparedBundle:
    """Parse, label and convert a bundle (misp-stix: ~1 ms per object) before the unit of
    work touches the database, so that this CPU work holds no lock or transaction."""
    bundle = parse_bundle(body)
    try:
        labels = tlp.label_stix_bundle(bundle, policy=policy, source_org_uuid=source_uuid)
    except tlp.MalformedInput as err:
        raise InvalidField(f"the bundle cannot be read: {err}", field="objects") from None
    if labels.problems:
        held = _converted(bundle, labels)
        return PreparedBundle(body, bundle, tuple(labels.problems), None, held)
    event = service.prepare_events([bundle_to_event(bundle, labels)])
    return PreparedBundle(body, bundle, (), event)


def _converted(bundle: dict[str, Any], labels: tlp.BundleLabels) -> dict[str, Any] | None:
    """The MISP event a held bundle converts to, whose uuids its quarantine reserves for its
    source. A bundle that cannot be converted now cannot be released as an event either."""
    try:
        event = bundle_to_event(bundle, labels)
    except Exception:  # any failure: nothing to reserve beyond the bundle
        return None
    inner = event.get("Event") if isinstance(event, dict) else None
    return inner if isinstance(inner, dict) else event


def ingest_bundle(
    session: Session,
    *,
    body: bytes | PreparedBundle,
    source: Partner,
    actor: str,
    channel: str,
    policy: tlp.Policy,
    exercise: str | None = None,
) -> list[service.Outcome]:
    """Store a bundle (raw, or ``prepare_bundle``'s result for ``source``) as a MISP event,
    or hold it in quarantine."""
    prepared = (
        body
        if isinstance(body, PreparedBundle)
        else prepare_bundle(body, source_uuid=source.uuid, policy=policy)
    )
    bundle = prepared.bundle
    if prepared.problems and exercise is not None:
        raise InvalidField(
            "an exercise submission must carry readable TLP markings (it cannot be held "
            "in quarantine)",
            field="objects",
        )
    if prepared.problems:
        return [
            quarantine(
                session,
                event={
                    "uuid": uuid_of(bundle.get("id", "bundle--" + str(uuid_mod.uuid4()))),
                    "bundle": bundle,
                },
                problems=prepared.problems,
                source=source,
                actor=actor,
                channel=channel,
                kind="stix",
                converted=prepared.converted,
            )
        ]
    return service.ingest_events(
        session,
        payloads=prepared.event,
        source=source,
        actor=actor,
        channel=channel,
        policy=policy,
        original=prepared.body,
        conversion=lineage.Conversion(CONVERTER, hashlib.sha256(prepared.body).hexdigest()),
        exercise=exercise,
    )
