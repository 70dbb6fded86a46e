"""Bulk import of partners from CSV or JSON: validate every row, then write all or nothing.

Idempotent: a row is matched to an existing partner by uuid, else by name; only the
fields the row gives are compared, and only real changes are written (and kept in the
history with action ``import``). Empty CSV cells mean "not given", never "clear".
"""

from __future__ import annotations

import csv
import io
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.orm import Session

from hub.errors import Conflict, HubError, field_path
from hub.partners import repository, service
from hub.partners.schemas import PartnerCreate, PartnerUpdate
from hub.vocabulary import PartnerStatus

LIST_SEPARATOR = ";"
CSV_COLUMNS = {
    "uuid": "uuid",
    "name": "name",
    "type": "type",
    "tier": "tier",
    "region": "region",
    "legal_status": "legal_status",
    "sectors": "sectors",
    "functions": "functions",
    "tlp_accepted_at": "tlp_accepted_at",
    "ip_prefixes": "constituency.ip_prefixes",
    "asns": "constituency.asns",
    "domains": "constituency.domains",
    "constituency_sectors": "constituency.sectors",
    "contact_name": "contacts.0.name",
    "contact_email": "contacts.0.email",
    "contact_role": "contacts.0.role",
    "status": "status",
    "status_reason": "status_reason",
}
_LIST_COLUMNS = {"sectors", "functions", "ip_prefixes", "asns", "domains", "constituency_sectors"}
_STATUS_KEYS = ("status", "status_reason")


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", field {self.field}" if self.field else "")
        return f"{where}: {self.message}"


@dataclass(slots=True)
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    written: bool = False


class ImportFileError(HubError):
    status_code = 422
    code = "invalid_import_file"


def read_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) pairs from a CSV file or a JSON list (or ``{"partners": [...]}``)."""
    data = path.read_bytes()
    if path.suffix.lower() == ".json" or data.lstrip()[:1] in (b"[", b"{"):
        return _json_rows(data)
    return _csv_rows(data.decode("utf-8-sig"))


def _json_rows(data: bytes) -> list[tuple[int, dict[str, Any]]]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise ImportFileError(f"the file is not valid JSON: {err}") from None
    if isinstance(doc, dict) and isinstance(doc.get("partners"), list):
        doc = doc["partners"]
    if not isinstance(doc, list):
        raise ImportFileError('a JSON import is a list of partners or {"partners": [...]}')
    # JSON records are numbered from 1, like CSV data lines after the header.
    return [(n, rec) for n, rec in enumerate(doc, start=1)]


def _csv_rows(text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text))
    unknown = [c for c in reader.fieldnames or [] if c not in CSV_COLUMNS]
    if unknown:
        raise ImportFileError(
            f"unknown column(s): {', '.join(unknown)}; known: {', '.join(CSV_COLUMNS)}"
        )
    if "name" not in (reader.fieldnames or []):
        raise ImportFileError("the CSV file needs at least a 'name' column")
    rows = []
    for row in reader:
        if None in row:
            raise ImportFileError(f"line {reader.line_num}: more cells than columns")
        rows.append((reader.line_num, _csv_record(row)))
    return rows


def _csv_record(row: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    constituency: dict[str, Any] = {}
    contact: dict[str, Any] = {}
    for column, raw in row.items():
        value = (raw or "").strip()
        if not value:
            continue
        parsed: Any = value
        if column in _LIST_COLUMNS:
            parsed = [v.strip() for v in value.split(LIST_SEPARATOR) if v.strip()]
            if column == "asns":
                parsed = [int(v) if v.isdigit() else v for v in parsed]
        target = CSV_COLUMNS[column]
        if target.startswith("constituency."):
            constituency[target.split(".", 1)[1]] = parsed
        elif target.startswith("contacts.0."):
            contact[target.rsplit(".", 1)[1]] = parsed
        else:
            record[column] = parsed
    if constituency:
        record["constituency"] = constituency
    if contact:
        record["contacts"] = [contact]
    return record


def _error_for(line: int, err: ValidationError, *, csv_names: bool) -> RowError:
    first = err.errors()[0]
    path = field_path(tuple(first.get("loc", ())))
    if csv_names and path:
        for column, target in CSV_COLUMNS.items():
            if path == target or path.startswith(target + "."):
                path = column
                break
    message = "unknown field" if first.get("type") == "extra_forbidden" else first["msg"]
    return RowError(line, path, message)


def _status_path(current: PartnerStatus, target: PartnerStatus) -> list[PartnerStatus]:
    """Shortest legal walk along the lifecycle, or [] when there is none."""
    queue: deque[list[PartnerStatus]] = deque([[current]])
    seen = {current}
    while queue:
        walk = queue.popleft()
        if walk[-1] is target:
            return walk[1:]
        for nxt in service.TRANSITIONS[walk[-1]]:
            if nxt not in seen:
                seen.add(nxt)
                queue.append([*walk, nxt])
    return []


def import_partners(
    session: Session,
    *,
    rows: list[tuple[int, dict[str, Any]]],
    actor: str,
    skip_invalid: bool = False,
    csv_names: bool = False,
) -> ImportReport:
    """Validate every row first; write nothing when one is bad, unless ``skip_invalid``."""
    report = ImportReport()
    valid: list[tuple[int, PartnerCreate, PartnerStatus | None, str | None]] = []
    seen_names: dict[str, int] = {}
    for line, record in rows:
        if not isinstance(record, dict):
            report.errors.append(RowError(line, None, "a partner record must be an object"))
            continue
        body = {k: v for k, v in record.items() if k not in _STATUS_KEYS}
        try:
            data = PartnerCreate.model_validate(body)
            status = PartnerStatus(record["status"]) if "status" in record else None
            reason = record.get("status_reason")
            if reason is not None and (not isinstance(reason, str) or len(reason) > 2000):
                report.errors.append(
                    RowError(line, "status_reason", "must be text of at most 2000 characters")
                )
                continue
        except ValidationError as err:
            report.errors.append(_error_for(line, err, csv_names=csv_names))
            continue
        except ValueError:
            report.errors.append(RowError(line, "status", f"unknown status {record['status']!r}"))
            continue
        key = data.name.casefold()
        if key in seen_names:
            report.errors.append(
                RowError(line, "name", f"same name as line {seen_names[key]} in this file")
            )
            continue
        seen_names[key] = line
        valid.append((line, data, status, reason))
    if report.errors and not skip_invalid:
        return report
    for line, data, status, reason in valid:
        try:
            with session.begin_nested():
                outcome = _apply_row(
                    session,
                    data=data,
                    status=status,
                    reason=reason,
                    actor=actor,
                    fields=set(data.model_fields_set),
                )
        except HubError as err:
            report.errors.append(RowError(line, err.field, err.detail))
            continue
        getattr(report, outcome[0]).append(outcome[1])
    if report.errors and not skip_invalid:
        return report
    report.written = True
    return report


def _apply_row(
    session: Session,
    *,
    data: PartnerCreate,
    status: PartnerStatus | None,
    reason: str | None,
    actor: str,
    fields: set[str],
) -> tuple[str, str]:
    existing = None
    if data.uuid is not None:
        existing = repository.by_uuid(session, str(data.uuid))
    if existing is None:
        existing = repository.by_name(session, data.name)
        if existing is not None and data.uuid is not None and existing.uuid != str(data.uuid):
            raise Conflict(
                f"name {data.name!r} belongs to partner {existing.uuid}, not {data.uuid}",
                field="name",
            )
    if existing is None:
        partner = service.create(session, data=data, actor=actor, action="import")
        outcome = "created"
    else:
        partner = existing
        update = PartnerUpdate.model_validate({k: getattr(data, k) for k in fields if k != "uuid"})
        changed = service.update(
            session, partner=partner, data=update, actor=actor, action="import"
        )
        outcome = "updated" if changed else "unchanged"
    if status is not None and status.value != partner.status:
        walk = _status_path(PartnerStatus(partner.status), status)
        if not walk:
            raise Conflict(
                f"partner is {partner.status}; the lifecycle does not lead to {status.value}",
                field="status",
            )
        for step in walk:
            service.change_status(session, partner=partner, status=step, reason=reason, actor=actor)
        outcome = "updated" if outcome == "unchanged" else outcome
    return outcome, partner.uuid
