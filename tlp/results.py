"""Result records shared by the MISP and STIX filters."""

from __future__ import annotations

from typing import NamedTuple

from tlp.decide import Reason


class Problem(NamedTuple):
    """One reason an element is quarantined.

    Attributes:
        element: uuid (MISP) or id (STIX) of the element; `#<kind>-<n>` when it has none.
        kind: `event`, `object`, `attribute`, `report`, or the STIX type.
        field: where the marking was (`Tag`, `distribution`, `object_marking_refs` …).
        value: the offending value.
        reason: what was wrong.
    """

    element: str
    kind: str
    field: str
    value: object
    reason: str


class Removed(NamedTuple):
    """An element a filter removed, and why (a named tuple: filters make many of them)."""

    kind: str
    uuid: str
    reason: Reason
    sentence: str
