"""What an audit entry addressed to a recipient may say.

A partner reads the entries about its own organisation (DESIGN.md §2, audit proofs: the
exact leaf bytes), so such an entry is a channel like any other (§3, "What leaves the hub"):
it may speak only of what went to that recipient. A decision that withheld something is
therefore recorded as two entries, appended one after the other:

- the **delivery**, readable by the recipient: what it received, nothing of what it did not
  (no withheld or removed elements, no count of them, no refused item);
- the **refusal**, readable by operators and auditors only: the same recipient, decision
  ``deny``, the withheld and removed elements with their reasons, the refused items, and
  the delivery's sequence number.

A decision that delivered nothing (a refusal, a search whose only matches were withheld) is
the refusal alone. The partner's check is by content, not by a flag, so entries written
before this rule that say more than a delivery are not readable by their recipient either.

Nor does an entry its recipient reads carry an event's internal version number, which also
counts changes the recipient could not see (versions 1 and 3 received tell it that a version 2
existed): ``versions_apart`` takes the versions out of it (its rows name none) into the
entry's **internal** part, a column beside the entry that only operators, auditors and the
hub's own readers (the ``releases`` index, so retraction reach and lineage) read. The entry
commits to that part by a salted hash (``details.sealed``, ``hub.audit.service``), so the
internal part is as tamper-evident as the entry and tells its recipient nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The decisions of the release path: entries that record one are split.
DECISIONS = ("allow", "deny")
# Details that speak of what did not go to the recipient.
WITHHELD = ("removed", "removed_count", "withheld", "withheld_count")
# Details that name an internal version of an event (the operators': ``versions_apart``).
INTERNAL = ("event_version",)


def delivered(decision: str | None, details: Mapping[str, Any]) -> bool:
    """The decision delivered something: ``allow`` and, when it lists items, one allowed."""
    if decision != "allow":
        return False
    rows = details.get("releases")
    return rows is None or any(_allowed(row) for row in rows)


def split(
    decision: str | None, details: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(the delivery's details, the refusal's details): either may be None. An entry that
    records no release decision (a partner's own feedback, a case it viewed) is kept whole."""
    if decision not in DECISIONS:
        return dict(details), None
    if not delivered(decision, details):
        return None, dict(details)
    # The keys stay, empty (the same in every delivery, so they tell nothing): readers of the
    # delivery know its shape, and take the lists from its refusal (``refusal_of``).
    public = {k: (_empty(v) if k in WITHHELD else v) for k, v in details.items()}
    hidden = {k: details[k] for k in WITHHELD if details.get(k)}
    rows = details.get("releases")
    if rows is not None:
        public["releases"] = [_as_sent(row) for row in rows if _allowed(row)]
        refused = [row for row in rows if not _allowed(row)]
        counts = [[row[0], row[5]] for row in rows if _allowed(row) and _removed(row)]
        if refused:
            hidden["releases"] = refused
        if counts:
            hidden["removed_from"] = counts
    if not hidden:
        return public, None
    return public, {"policy_version": details.get("policy_version"), **hidden}


def readable_by_recipient(decision: str | None, details: Mapping[str, Any]) -> bool:
    """The entry speaks only of what went to its recipient (so the recipient may read it)."""
    if decision in DECISIONS and not delivered(decision, details):
        return False
    if any(details.get(k) for k in WITHHELD):
        return False
    if any(details.get(k) is not None for k in INTERNAL):
        return False
    rows = details.get("releases") or []
    return all(_allowed(row) and not _removed(row) and row[1] is None for row in rows)


def versions_apart(details: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(an entry's details without internal version numbers, the internal part that keeps
    them, or None): each ``releases`` row names no version (``internal["versions"]`` keeps
    them, one per row, in order); ``event_version`` moves there whole."""
    public = dict(details)
    internal: dict[str, Any] = {k: public.pop(k) for k in INTERNAL if k in public}
    rows = public.get("releases")
    if isinstance(rows, list) and rows:
        internal["versions"] = [_version(row) for row in rows]
        public["releases"] = [_unversioned(row) for row in rows]
    return public, (internal or None)


def merged(delivery: Mapping[str, Any], refusal: Mapping[str, Any] | None) -> dict[str, Any]:
    """A delivery's details with what its refusal says was withheld from it: the whole
    decision, as operators and the hub's own jobs (retraction reach) read it."""
    out = dict(delivery)
    if refusal is not None:
        out.update({k: refusal[k] for k in WITHHELD if k in refusal})
    return out


def _empty(value: Any) -> Any:
    if isinstance(value, list | dict):
        return type(value)()
    return 0 if isinstance(value, int) else None


def _allowed(row: Any) -> bool:
    return isinstance(row, list | tuple) and len(row) > 2 and bool(row[2])


def _removed(row: Any) -> int:
    return int(row[5] or 0) if len(row) > 5 else 0


def _version(row: Any) -> Any:
    return row[1] if isinstance(row, list | tuple) and len(row) > 1 else None


def _unversioned(row: Any) -> Any:
    if not isinstance(row, list | tuple) or len(row) < 2:
        return row
    return [row[0], None, *row[2:]]


def _as_sent(row: Any) -> list[Any]:
    out = list(row)
    if len(out) > 5:
        out[5] = 0
    return out
