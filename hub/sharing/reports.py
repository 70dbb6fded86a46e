"""The event reports of one event that one recipient receives, decided as ``release_rows``
decides them and recorded in one audit entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

import tlp
from hub.auth.principal import Principal
from hub.intel.snapshots import group_id
from hub.sharing.recipients import Recipient, as_recipient
from hub.sharing.records import addressing_of, label_of, obligation, record
from hub.sharing.view import Gate, received_withdrawn, report_addressing


@dataclass(slots=True)
class ReportRelease:
    """The event reports of one event that one recipient receives, and their record."""

    reports: list[dict[str, Any]]
    obligation: tlp.Obligation
    audit_seq: int | None


def release_reports(
    session: Session,
    *,
    to: Recipient | Principal,
    event: Any,
    channel: tlp.Channel | str,
    policy: tlp.Policy,
    include_deleted: bool = False,
    uuids: frozenset[str] | None = None,
    write_answer: bool = False,
) -> ReportRelease:
    """The event's reports (all, or those named by ``uuids``) the recipient may receive:
    decided as ``release_rows`` decides them (the event's label, the report's addressing
    narrowed by the event's), recorded in one audit entry. ``event`` is its row (its
    document holds the reports). ``write_answer``: the answer to a write
    (recorded as such)."""
    recipient = as_recipient(to)
    gate = Gate(recipient, channel, policy, write_answer=write_answer)
    decision = gate.event(event)
    doc = orjson.loads(event.doc)
    candidates = [
        r
        for r in doc.get("EventReport") or []
        if isinstance(r, dict) and (uuids is None or r.get("uuid") in uuids)
    ]
    if not candidates:
        return ReportRelease([], obligation([]), None)
    creator = event.orgc_uuid == gate.org_uuid
    had: set[str] = set()
    if include_deleted and not creator:
        had = received_withdrawn(session, [event.id], gate.org_uuid).get(event.id, set())
    out: list[dict[str, Any]] = []
    withheld: list[tuple[str, str]] = []
    e_addr = addressing_of(event.distribution, event.sg_members)
    for report in candidates:
        uuid = str(report.get("uuid") or "")
        if report.get("deleted") and not (include_deleted and (creator or uuid in had)):
            continue
        if not decision.allowed:
            withheld.append((uuid, decision.reason.value))
            continue
        d = gate.decide(event.tlp_rank, report_addressing(report, e_addr), event.orgc_uuid)
        if not d.allowed:
            withheld.append((uuid, d.reason.value))
            continue
        shaped = dict(report)
        if shaped.pop("purged", False) and creator:
            continue  # deleted hard by its creator: gone for the creator
        group = shaped.pop("SharingGroup", None)
        if str(shaped.get("distribution")) == "4" and isinstance(group, dict):
            shaped["sharing_group_id"] = group_id(group)
        else:
            shaped["sharing_group_id"] = "0"
        out.append(shaped)
    if not out and not withheld:
        return ReportRelease([], obligation([]), None)
    label = label_of(event.tlp_rank)
    seq = record(
        session,
        recipient,
        action="release" if out else "deny",
        channel=gate.channel,
        object_ref=f"event:{event.uuid}",
        decision="allow" if out else "deny",
        details={
            "policy_version": policy.version,
            **({"answer": "write"} if gate.write_answer else {}),
            "reports": [r["uuid"] for r in out],
            "withheld": [list(w) for w in withheld],
            "releases": [
                [event.uuid, event.version, bool(out), "reports", label.value if out else None, 0]
            ],
        },
    )
    return ReportRelease(out, obligation([label] if out else []), seq)
