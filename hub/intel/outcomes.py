"""What a submission comes to: an outcome per item, or a refusal that names nothing of
what the submitter may not know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub.errors import Forbidden, InvalidField


class ForeignEvent(Forbidden):
    """A submission names an event another organisation submitted: only its source may
    change it. The answer names nothing of that event (its owner, version, timestamp), and
    the edge records the attempt (``record_refusal``)."""

    def __init__(self, uuid: str) -> None:
        super().__init__(
            f"event {uuid} cannot be stored for your organisation: that uuid is not yours to use"
        )
        self.uuid = uuid


class UuidClash(InvalidField):
    """An element uuid of the submission is used by another event: refused, naming nothing."""

    def __init__(self, field: str) -> None:
        super().__init__(
            "an element uuid of this event is already in use elsewhere; give it a new uuid",
            field=field,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one submitted item; the answer to a submission lists these."""

    uuid: str
    status: str  # stored | updated | unchanged | quarantined
    version: int | None = None
    detail: str | None = None
    quarantine_uuid: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uuid": self.uuid, "status": self.status}
        if self.version is not None:
            out["version"] = self.version
        if self.detail:
            out["detail"] = self.detail
        if self.quarantine_uuid:
            out["quarantine"] = self.quarantine_uuid
        return out
