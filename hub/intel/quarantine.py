"""Quarantine: a submission whose markings cannot be read is held here, not stored, until an
operator relabels (and so releases) it or rejects it."""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.orm import Session

import tlp
from hub.audit import service as audit
from hub.context import current_request_id
from hub.intel.outcomes import Outcome
from hub.intel.snapshots import (
    pack,
)
from hub.models import (
    Partner,
    QuarantineItem,
    QuarantineUuid,
)


def quarantine(
    session: Session,
    *,
    event: dict[str, Any],
    problems: Sequence[tlp.Problem],
    source: Partner,
    actor: str,
    channel: str,
    kind: str = "misp",
    records: list[audit.Record] | None = None,
    converted: dict[str, Any] | None = None,
) -> Outcome:
    """Hold ``event`` (or a STIX bundle) for an operator. Its audit entry goes to ``records``
    when given (a batch appends them at its end, ``hub.intel.service``), else is appended
    now. The uuid stays reserved for ``source`` (``hub.intel.service.ingest_events``), and so
    do the uuids of the event and its elements (``converted``: the MISP event a STIX bundle
    converts to, when it could be converted)."""
    item = QuarantineItem(
        uuid=str(uuid_mod.uuid4()),
        item_uuid=str(event.get("uuid") or event.get("id")),
        kind=kind,
        source_partner_id=source.id,
        actor=actor,
        channel=channel,
        problems=[
            {
                "element": p.element,
                "kind": p.kind,
                "field": p.field,
                "value": str(p.value)[:500],
                "reason": p.reason,
            }
            for p in problems
        ],
        payload=pack(event),
    )
    session.add(item)
    session.flush()
    held = converted if kind != "misp" else event
    reserved = {u: k for k, u in element_uuids(held or {})}
    if reserved:
        session.execute(
            insert(QuarantineUuid),
            [
                {"item_id": item.id, "uuid": u, "kind": k, "source_partner_id": source.id}
                for u, k in reserved.items()
            ],
        )
    record = audit.Record(
        action="quarantine",
        actor=actor,
        object_ref=f"{'event' if kind == 'misp' else 'bundle'}:{item.item_uuid}",
        request_id=current_request_id(),
        channel=channel,
        details={
            "quarantine": item.uuid,
            "source": source.uuid,
            "problems": item.problems[:50],
        },
    )
    if records is None:
        audit.append(session, [record])
    else:
        records.append(record)
    reasons = "; ".join(f"{p.kind} {p.element}: {p.reason}" for p in problems[:3])
    return Outcome(item.item_uuid, "quarantined", None, reasons, item.uuid)


def element_uuids(event: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, uuid) of a MISP event and of its attributes, objects and reports; uuids that
    are not uuids are left out (they cannot clash with a stored one)."""
    yield from _valid("event", [event])
    yield from _valid("attribute", _list(event, "Attribute"))
    for obj in _list(event, "Object"):
        yield from _valid("object", [obj])
        yield from _valid("attribute", _list(obj, "Attribute"))
    yield from _valid("report", _list(event, "EventReport"))


def _list(parent: Any, key: str) -> list[Any]:
    found = parent.get(key) if isinstance(parent, dict) else None
    return found if isinstance(found, list) else []


def _valid(kind: str, elements: Iterable[Any]) -> Iterator[tuple[str, str]]:
    for element in elements:
        raw = element.get("uuid") if isinstance(element, dict) else None
        try:
            yield kind, str(uuid_mod.UUID(str(raw)))
        except ValueError:
            continue


def relabel_misp(
    event: dict[str, Any], problems: Sequence[dict[str, Any]], label: str
) -> dict[str, Any]:
    """The held event with each unreadable tag replaced by the operator's ``tlp:<label>``."""
    tag = tlp.parse_label(label).tag
    bad: dict[str, set[str]] = {}
    for p in problems:
        bad.setdefault(str(p["element"]), set()).add(str(p["value"]))
    event = orjson.loads(orjson.dumps(event))

    def fix(element: dict[str, Any]) -> None:
        values = bad.get(str(element.get("uuid")))
        if values is None:
            return
        kept = [
            t
            for t in element.get("Tag") or []
            if (t.get("name") if isinstance(t, dict) else t) not in values
        ]
        element["Tag"] = [*kept, {"name": tag, "local": False}]

    fix(event)
    for attr in event.get("Attribute") or []:
        fix(attr)
    for obj in event.get("Object") or []:
        fix(obj)
        for attr in obj.get("Attribute") or []:
            fix(attr)
    for report in event.get("EventReport") or []:
        fix(report)
    return event


def relabel_stix(
    bundle: dict[str, Any], problems: Sequence[dict[str, Any]], label: str
) -> dict[str, Any]:
    """The held bundle with each unreadable marking ref replaced by the TLP 2.0 ``label`` id."""
    marking = tlp.parse_label(label).stix_id
    bad: dict[str, set[str]] = {}
    for p in problems:
        bad.setdefault(str(p["element"]), set()).add(str(p["value"]))
    bundle = orjson.loads(orjson.dumps(bundle))
    for obj in bundle.get("objects", []):
        values = bad.get(str(obj.get("id")))
        if values is None:
            continue
        refs = [r for r in obj.get("object_marking_refs") or [] if r not in values]
        obj["object_marking_refs"] = [*refs, marking]
        grans = [
            g for g in obj.get("granular_markings") or [] if g.get("marking_ref") not in values
        ]
        if grans:
            obj["granular_markings"] = grans
        else:
            obj.pop("granular_markings", None)
    return bundle
