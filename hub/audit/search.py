"""The auditor's view of the audit log: search with keyset paging, a streamed export with the
checkpoint it is consistent with, and summaries of deliveries and refusals.

"Who got what, when, why": entries filtered by time, action, actor, recipient, item,
channel and decision; the item filter finds an event's own entries (ingest, withdrawal …)
and every delivery or refusal that listed it (the ``releases`` index). Each search, export
and summary is itself recorded in the log (``audit.search`` …), with its filters.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from hub.audit import releases, tree
from hub.audit import service as audit
from hub.context import current_request_id
from hub.errors import InvalidField
from hub.models import AuditEntry, Release

# object_ref kinds an item uuid (or ticket) can be named under
_KINDS = ("event", "bundle", "partner", "key", "notification", "quarantine", "connection")
EXPORT_CHUNK = 1000
CSV_COLUMNS = (
    "seq",
    "recorded_at",
    "action",
    "actor",
    "object_ref",
    "recipient_uuid",
    "channel",
    "decision",
    "request_id",
    "details",
)


@dataclass(frozen=True, slots=True)
class Filters:
    since: datetime | None = None
    until: datetime | None = None
    action: str | None = None
    actor: str | None = None
    recipient: str | None = None
    item: str | None = None
    channel: str | None = None
    decision: str | None = None

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        e = AuditEntry
        if self.since is not None:
            stmt = stmt.where(e.recorded_at >= self.since)
        if self.until is not None:
            stmt = stmt.where(e.recorded_at < self.until)
        for column, value in (
            (e.action, self.action),
            (e.recipient_uuid, self.recipient),
            (e.channel, self.channel),
            (e.decision, self.decision),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if self.actor is not None:  # "key:<uuid>" finds the key's entries whatever its label
            stmt = stmt.where(or_(e.actor == self.actor, e.actor.startswith(self.actor + " ")))
        if self.item is not None:
            listed = select(Release.audit_seq).where(Release.event_uuid == self.item.lower())
            named = [f"{kind}:{self.item}" for kind in _KINDS]
            stmt = stmt.where(or_(e.object_ref.in_(named), e.seq.in_(listed)))
        return stmt

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in asdict(self).items()
            if v is not None
        }


_TEXT_LIMITS = {
    "action": 255,
    "actor": 255,
    "recipient": 36,
    "item": 64,
    "channel": 255,
    "decision": 5,
}


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filters of a query string (the console's; the REST API's come through FastAPI's
    own parameters): the same names and limits, a bad value refused naming its field."""
    given = {name: params.get(name) or None for name in (*_TEXT_LIMITS, "since", "until")}
    for name, limit in _TEXT_LIMITS.items():
        if given[name] is not None and len(given[name]) > limit:
            raise InvalidField(f"{name}: at most {limit} characters", field=name)
    if given["decision"] not in (None, "allow", "deny"):
        raise InvalidField("decision: allow or deny", field="decision")
    times: dict[str, datetime | None] = {}
    for name in ("since", "until"):
        text = given.pop(name)
        try:
            times[name] = datetime.fromisoformat(text) if text else None
        except ValueError:
            raise InvalidField(f"{name}: not an ISO 8601 date and time", field=name) from None
    return Filters(**times, **given)


def _row(entry: Any) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "recorded_at": entry.recorded_at.isoformat(),
        "action": entry.action,
        "actor": entry.actor,
        "object_ref": entry.object_ref,
        "recipient_uuid": entry.recipient_uuid,
        "channel": entry.channel,
        "decision": entry.decision,
        "request_id": entry.request_id,
        "details": entry.body.get("details"),
        # What the entry's recipient does not read (internal version numbers), salted; the
        # entry's ``details.sealed`` is its SHA-256 (``hub.audit.service``).
        "internal": entry.internal,
    }


def _record(session: Session, action: str, actor: str, details: dict[str, Any]) -> int:
    return audit.append(
        session,
        [
            audit.Record(
                action=action,
                actor=actor,
                request_id=current_request_id(),
                details=details,
            )
        ],
    )[0]


def search(
    session: Session, filters: Filters, *, actor: str, limit: int, before: int | None
) -> dict[str, Any]:
    """A page of matching entries, newest first; ``before``: the keyset (a sequence number)."""
    releases.catch_up(session)  # the item filter reads the index; bring it up to date first
    stmt = filters.apply(select(AuditEntry))
    if before is not None:
        stmt = stmt.where(AuditEntry.seq < before)
    rows = list(session.scalars(stmt.order_by(AuditEntry.seq.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    _record(session, "audit.search", actor, {"filters": filters.as_dict(), "found": len(rows)})
    return {"items": [_row(r) for r in rows], "next_before": rows[-1].seq if more else None}


@dataclass(frozen=True, slots=True)
class Export:
    """What an export covers: entries 1..``tree_size``, all under ``checkpoint``."""

    tree_size: int
    checkpoint: str | None


def start_export(session: Session, filters: Filters, *, actor: str, fmt: str) -> Export:
    """Record the export and pin it to the latest checkpoint: only entries that checkpoint
    covers are exported, so each one can be proven against it."""
    releases.catch_up(session)
    latest = tree.latest_checkpoint(session)
    export = Export(latest.tree_size, latest.note) if latest else Export(0, None)
    _record(
        session,
        "audit.export",
        actor,
        {"filters": filters.as_dict(), "format": fmt, "checkpoint_size": export.tree_size},
    )
    return export


def export_headers(export: Export, fmt: str) -> dict[str, str]:
    """The export's size header, and for CSV (which has no first line for it) the
    checkpoint itself, base64."""
    headers = {"X-Hub-Audit-Checkpoint-Size": str(export.tree_size)}
    if fmt == "csv" and export.checkpoint:
        headers["X-Hub-Audit-Checkpoint"] = base64.b64encode(export.checkpoint.encode()).decode()
    return headers


def export_rows(
    maker: sessionmaker[Session], filters: Filters, export: Export
) -> Iterator[dict[str, Any]]:
    """Matching entries 1..tree_size in order, each with its exact leaf bytes; a short read
    per chunk, so no connection is held while the client reads."""
    after = 0
    while after < export.tree_size:
        with maker() as session:
            stmt = filters.apply(
                select(AuditEntry, tree.BODY_TEXT).where(
                    and_(AuditEntry.seq > after, AuditEntry.seq <= export.tree_size)
                )
            )
            rows = session.execute(stmt.order_by(AuditEntry.seq).limit(EXPORT_CHUNK)).all()
            session.expunge_all()
        if not rows:
            return
        for entry, body_text in rows:
            out = _row(entry)
            out["leaf"] = base64.b64encode(tree.entry_bytes(body_text)).decode()
            yield out
        after = rows[-1][0].seq


def as_json_lines(export: Export, rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    yield orjson.dumps({"checkpoint": export.checkpoint, "tree_size": export.tree_size}) + b"\n"
    for row in rows:
        yield orjson.dumps(row) + b"\n"


def as_csv(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = (*CSV_COLUMNS, "leaf", "internal")
    writer.writerow(columns)
    for row in rows:
        internal = orjson.dumps(row["internal"]).decode() if row["internal"] is not None else None
        row = {**row, "details": orjson.dumps(row["details"]).decode(), "internal": internal}
        writer.writerow([row[c] if row[c] is not None else "" for c in columns])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def summary(
    session: Session, *, since: datetime | None, until: datetime | None, actor: str
) -> dict[str, Any]:
    """Deliveries and refusals of items per partner, channel, label and day; refusals by
    reason (from the ``releases`` index: one row per item delivered or refused)."""
    releases.catch_up(session)
    r = Release
    scope = []
    if since is not None:
        scope.append(r.released_at >= since)
    if until is not None:
        scope.append(r.released_at < until)
    day = func.date(r.released_at)
    allowed = func.sum(case((r.allowed, 1), else_=0))
    refused = func.sum(case((r.allowed, 0), else_=1))
    per = session.execute(
        select(r.recipient_uuid, r.channel, r.tlp, day, allowed, refused)
        .where(*scope)
        .group_by(r.recipient_uuid, r.channel, r.tlp, day)
        .order_by(day, r.recipient_uuid, r.channel, r.tlp)
    ).all()
    reasons = session.execute(
        select(r.reason, func.count())
        .where(*scope, r.allowed.is_(False))
        .group_by(r.reason)
        .order_by(func.count().desc(), r.reason)
    ).all()
    period = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
    }
    _record(session, "audit.summary", actor, {"filters": {k: v for k, v in period.items() if v}})
    return {
        **period,
        "deliveries": [
            {
                "partner": partner,
                "channel": channel,
                "label": label,
                "day": str(on),
                "delivered": int(ok or 0),
                "refused": int(no or 0),
            }
            for partner, channel, label, on, ok, no in per
        ],
        "refusals": [{"reason": reason, "count": count} for reason, count in reasons],
    }
