"""TAXII 2.1 Add Objects (§5.4) and its status resources (§4.3): a caller's STIX objects
ingested through the store as its own submission, and what became of each of them."""

from __future__ import annotations

import logging
import uuid as uuid_mod
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.errors import BadRequest, Forbidden, HubError, InvalidField, NotFound
from hub.intel import stix as intel_stix
from hub.intel.stix_shape import timestamp
from hub.models import Partner, TaxiiStatus
from hub.partners import repository as partners
from hub.taxii import repository
from hub.taxii.service import Collection, can_write
from hub.vocabulary import PartnerStatus

log = logging.getLogger("hub.taxii")


def _submitter(session: Session, principal: Principal) -> Partner:
    partner = partners.by_uuid(session, principal.partner_uuid)
    assert partner is not None
    if partner.status != PartnerStatus.ACTIVE.value:
        raise Forbidden(f"a {partner.status} partner cannot add objects")
    if partner.tlp_accepted_at is None:
        raise Forbidden(
            "a partner that has not accepted the network's TLP rules cannot add objects"
        )
    return partner


def _detail(obj: Any, index: int, message: str | None = None) -> dict[str, Any]:
    ident = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
    out: dict[str, Any] = {"id": ident or f"objects[{index}]"}
    version = obj.get("modified") or obj.get("created") if isinstance(obj, dict) else None
    if isinstance(version, str):
        out["version"] = version
    if message:
        out["message"] = message
    return out


def add_objects(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    collection: Collection,
    body: bytes,
) -> TaxiiStatus:
    """Ingest an envelope as one STIX bundle through the store's own path (channel ``taxii``):
    labelled from its raw markings, quarantined when they cannot be read. Processing is
    synchronous, so the status is complete when it is returned; objects that are not STIX
    objects fail on their own, the rest succeed or fail together."""
    if not can_write(principal, collection):
        raise Forbidden(f"collection {collection.alias} is not writable for this key")
    source = _submitter(session, principal)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise BadRequest(f"request body is not valid JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise InvalidField("an envelope needs an objects list", field="objects")
    successes: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    valid: list[tuple[int, dict[str, Any]]] = []
    for i, obj in enumerate(doc["objects"]):
        if (
            isinstance(obj, dict)
            and isinstance(obj.get("type"), str)
            and isinstance(obj.get("id"), str)
            and obj["id"].startswith(obj["type"] + "--")
        ):
            valid.append((i, obj))
        else:
            failures.append(_detail(obj, i, "not a STIX object: it needs a type and a matching id"))
    if valid:
        bundle = {
            "type": "bundle",
            "id": f"bundle--{uuid_mod.uuid4()}",
            "objects": [obj for _, obj in valid],
        }
        failed = _ingest(session, principal=principal, policy=policy, source=source, bundle=bundle)
        for i, obj in valid:
            (failures if failed else successes).append(_detail(obj, i, failed))
    status = TaxiiStatus(
        uuid=str(uuid_mod.uuid4()),
        partner_uuid=principal.partner_uuid,
        exercise_id=principal.exercise_id,
        status="complete",
        total_count=len(doc["objects"]),
        success_count=len(successes),
        failure_count=len(failures),
        pending_count=0,
        details={"successes": successes, "failures": failures, "pendings": []},
    )
    session.add(status)
    session.flush()
    return status


def _ingest(
    session: Session,
    *,
    principal: Principal,
    policy: tlp.Policy,
    source: Partner,
    bundle: dict[str, Any],
) -> str | None:
    """None when stored (or unchanged); otherwise why every object of it failed."""
    try:
        with session.begin_nested():
            outcomes = intel_stix.ingest_bundle(
                session,
                body=orjson.dumps(bundle),
                source=source,
                actor=principal.actor,
                channel=tlp.Channel.TAXII.value,
                policy=policy,
                exercise=principal.exercise_id,
            )
    except HubError as err:
        return err.detail
    except Exception as err:  # a bundle misp-stix cannot convert fails, not 500
        log.warning("TAXII Add Objects: conversion failed: %r", err)
        return f"the objects could not be converted: {type(err).__name__}"
    held = [o for o in outcomes if o.status == "quarantined"]
    if held:
        return f"held in quarantine {held[0].quarantine_uuid} for an operator: {held[0].detail}"
    return None


def status_resource(status: TaxiiStatus) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": status.uuid,
        "status": status.status,
        "request_timestamp": timestamp(status.request_timestamp),
        "total_count": status.total_count,
        "success_count": status.success_count,
        "failure_count": status.failure_count,
        "pending_count": status.pending_count,
    }
    for key in ("successes", "failures", "pendings"):
        if status.details.get(key):
            out[key] = status.details[key]
    return out


def get_status(session: Session, *, principal: Principal, status_id: str) -> TaxiiStatus:
    found = repository.status(
        session, status_id.lower(), principal.partner_uuid, principal.exercise_id
    )
    if found is None:
        raise NotFound(f"no status {status_id}")
    return found
