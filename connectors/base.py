"""What a connector can do, one ``Protocol`` per capability, and the plain data it returns.

A connector object is built for one configured connection (``connectors.registry.build``)
with its HTTP session passed in; it does I/O only and keeps no state between calls, so the
caller (the hub's job runner) owns cursors, retries and transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class RemoteInfo:
    """What the remote says about itself and about our key, for ``connection test``."""

    system: str  # "MISP 2.5.1", "TAXII 2.1"
    version: str
    user: str | None = None
    organisation: str | None = None
    permissions: dict[str, bool] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def sentence(self) -> str:
        """The report in plain words."""
        parts = [f"{self.system} {self.version}".strip()]
        if self.user or self.organisation:
            parts.append(
                "signed in as " + " of ".join(p for p in (self.user, self.organisation) if p)
            )
        granted = [k for k, v in self.permissions.items() if v]
        refused = [k for k, v in self.permissions.items() if not v]
        if granted:
            parts.append("may " + ", ".join(granted))
        if refused:
            parts.append("may not " + ", ".join(refused))
        parts.extend(self.notes)
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One row of a MISP event index: enough to decide whether to download the event."""

    uuid: str
    timestamp: int
    published: bool
    orgc_uuid: str | None = None


@dataclass(frozen=True, slots=True)
class PushResult:
    """How a push ended: ``added``, ``edited`` or ``not-newer`` (the remote had it already)."""

    uuid: str
    outcome: str
    remote_id: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectPage:
    """One page of STIX objects from a TAXII collection, and where the next page starts."""

    objects: list[dict[str, Any]]
    more: bool
    next: str | None
    date_added_last: str | None


@runtime_checkable
class Checker(Protocol):
    def check(self) -> RemoteInfo:
        """Ask the remote who we are and what we may do; raises ConnectorError."""
        ...


@runtime_checkable
class EventPuller(Checker, Protocol):
    """Pull MISP events, as a MISP server pulls from another (misp-sync §2.2)."""

    def index(self, *, rules: dict[str, Any], since: int | None) -> list[IndexEntry]:
        """The remote's event index under ``rules``, oldest first."""
        ...

    def fetch(self, uuid: str) -> dict[str, Any]:
        """One whole event (the inner ``Event`` object), soft-deleted elements included."""
        ...


@runtime_checkable
class EventPusher(Checker, Protocol):
    """Push MISP events, as a MISP server pushes to another (misp-sync §2.3)."""

    def push(self, event: dict[str, Any]) -> PushResult:
        """HEAD, then add or edit; a "not newer" refusal is a success (``not-newer``)."""
        ...


@runtime_checkable
class ObjectPuller(Checker, Protocol):
    """Pull STIX 2.1 objects from a TAXII 2.1 collection."""

    def page(
        self, *, added_after: str | None, next: str | None, types: list[str], limit: int
    ) -> ObjectPage:
        """One page of objects added after ``added_after`` (or continuing at ``next``)."""
        ...
