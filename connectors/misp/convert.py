"""Pure transformations of MISP events on their way in and out (no I/O).

They mirror what a MISP server does on sync (misp-sync.md §4.2), so a pulled or pushed event
looks on arrival as it would between two MISP instances.
"""

from __future__ import annotations

import copy
from typing import Any

_PULL_DOWNGRADE = {"1": "0", "2": "1"}


def _strip_local_tags(element: dict[str, Any]) -> None:
    tags = element.get("Tag")
    if isinstance(tags, list):
        element["Tag"] = [t for t in tags if not (isinstance(t, dict) and t.get("local"))]


def _downgrade(element: dict[str, Any]) -> None:
    raw = element.get("distribution")
    if raw is not None and str(raw) in _PULL_DOWNGRADE:
        element["distribution"] = _PULL_DOWNGRADE[str(raw)]


def downgrade_for_pull(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a pulling MISP stores it (Server.php:304-436): distribution 1→0 and 2→1
    on the event, its attributes, objects and reports, and local tags removed.

    "This community only" therefore stops at the puller. Returns a new dict.
    """
    out = copy.deepcopy(event)
    _downgrade(out)
    _strip_local_tags(out)
    for attr in out.get("Attribute") or []:
        _downgrade(attr)
        _strip_local_tags(attr)
    for obj in out.get("Object") or []:
        _downgrade(obj)
        for attr in obj.get("Attribute") or []:
            _downgrade(attr)
            _strip_local_tags(attr)
    for report in out.get("EventReport") or []:
        _downgrade(report)
    return out


def has_content(event: dict[str, Any]) -> bool:
    """Whether anything is left that is not deleted (MISP drops "Empty event detected")."""
    if any(not a.get("deleted") for a in event.get("Attribute") or []):
        return True
    for obj in event.get("Object") or []:
        if not obj.get("deleted") and any(not a.get("deleted") for a in obj.get("Attribute") or []):
            return True
    return any(not r.get("deleted") for r in event.get("EventReport") or [])


def prepare_for_push(event: dict[str, Any]) -> dict[str, Any]:
    """The body a MISP server pushes (Event.php:963-1238): ``locked``, no local owner fields,
    no local tags, no numeric ids on attributes, no proposals; sightings travel on their own
    (sighting sync), not inside the event. Distribution and TLP were decided before."""
    out = copy.deepcopy(event)
    for key in ("Org", "org_id", "orgc_id", "org", "orgc", "proposal_email_lock", "id"):
        out.pop(key, None)
    out["locked"] = True
    for key in ("ShadowAttribute", "Sighting"):  # proposals never; sightings sync apart
        out.pop(key, None)
    _strip_local_tags(out)
    for attr in out.get("Attribute") or []:
        _for_push(attr)
    for obj in out.get("Object") or []:
        obj.pop("id", None)
        for attr in obj.get("Attribute") or []:
            _for_push(attr)
    return out


def _for_push(attr: dict[str, Any]) -> None:
    for key in ("id", "ShadowAttribute", "Sighting", "RelatedAttribute"):
        attr.pop(key, None)
    _strip_local_tags(attr)
