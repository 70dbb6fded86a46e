"""Actual coverage: what the hub did, not what partners declared.

For the end of ``as_of`` (UTC) and each period (the last 30 and 90 days), per cell of the
registered coverage: how many of the partners counted in it received something, shared
something, answered a notification, or had a connection finish a run. Beside it, the reach of
notifications per sector and region, and the reach of the active partners' constituencies per
sector. The partner fields (sectors, region, constituency) are those the history says held at
``as_of``; the acts are read from the release index of the audit log, the event versions, the
notification feedback and the connection runs, each by its own timestamp.

The monthly trend replays the history once and counts the same figures at each month's end.
"""

from __future__ import annotations

import ipaddress
import statistics
from collections import Counter
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from hub.coverage import repository
from hub.coverage.schemas import (
    ActualCell,
    ActualCounting,
    ActualCoverage,
    ConstituencyReach,
    Period,
    Reach,
    Trend,
    TrendPoint,
)
from hub.coverage.service import (
    FUNCTIONS,
    REGIONS,
    SECTORS,
    PartnerState,
    replay,
    states_at,
    until,
)
from hub.vocabulary import NetworkFunction, Region, Sector

PERIODS = (30, 90)
ACTS = ("received", "shared", "acknowledged", "synced")
SOURCES = {
    "received": "releases allowed to the partner (the audit log's release index), any channel",
    "shared": "event versions stored with the partner as source (any channel)",
    "acknowledged": "feedback from the partner on a notification, other than a bare comment",
    "synced": "runs of the partner's connections (MISP pull or push, TAXII pull) that finished",
}
RULE = (
    "A cell's `registered` partners are those counted in registered coverage at the end of "
    "as_of; `active[N]` counts those of them with at least one act of each kind in the N "
    "days before that moment (`any`: at least one act of any kind)."
)
REACH_RULE = (
    "Notifications made in the period, attributed to the partner that receives them (direct) "
    "or passes them on (via), and through it to that partner's sectors (its own and its "
    "constituency's) and region as at as_of. Delivered: sent before the end of as_of. "
    "Acknowledged: answered (any feedback but a comment) before then; the time to "
    "acknowledgement runs from the notification's making to its first answer."
)
CONSTITUENCY_RULE = (
    "Per sector, the union of the constituencies of the active partners in that sector (their "
    "own sectors or their constituency's): IPv4 addresses, IPv6 /48 blocks (a longer prefix "
    "counts as one), AS numbers and domains, overlaps counted once."
)


def _acts(session: Session, *, start: datetime, end: datetime) -> dict[str, set[str]]:
    return {
        "received": repository.received(session, start=start, end=end),
        "shared": repository.shared(session, start=start, end=end),
        "acknowledged": repository.acknowledged(session, start=start, end=end),
        "synced": repository.synced(session, start=start, end=end),
    }


def _cells(
    states: dict[int, PartnerState], acts: dict[int, dict[str, set[str]]]
) -> list[ActualCell]:
    members: dict[tuple[NetworkFunction, Sector, Region], list[str]] = {}
    for state in states.values():
        if state.active:
            for triple in state.triples():
                members.setdefault(triple, []).append(state.uuid)
    f_index = {f: i for i, f in enumerate(FUNCTIONS)}
    s_index = {s: i for i, s in enumerate(SECTORS)}
    r_index = {r: i for i, r in enumerate(REGIONS)}
    out = []
    for (f, s, r), uuids in sorted(
        members.items(), key=lambda kv: (f_index[kv[0][0]], s_index[kv[0][1]], r_index[kv[0][2]])
    ):
        active = {}
        for days, by_act in acts.items():
            counts = {act: sum(u in by_act[act] for u in uuids) for act in ACTS}
            counts["any"] = sum(any(u in by_act[act] for act in ACTS) for u in uuids)
            active[str(days)] = counts
        out.append(ActualCell(function=f, sector=s, region=r, registered=len(uuids), active=active))
    return out


def _reach(
    states: dict[int, PartnerState], rows: list, end: datetime
) -> tuple[list[Reach], list[Reach]]:
    by_uuid = {s.uuid: s for s in states.values()}
    groups: dict[tuple[str, str], list] = {}
    for row in rows:
        state = by_uuid.get(row.uuid)
        if state is None:
            continue
        for sector in state.all_sectors():
            groups.setdefault(("sector", sector.value), []).append(row)
        if state.region in {r.value for r in REGIONS}:
            groups.setdefault(("region", state.region), []).append(row)

    def figures(kind: str, value: str) -> Reach:
        members = groups.get((kind, value), [])
        waits = [
            (r.answered_at - r.created_at).total_seconds()
            for r in members
            if r.answered_at is not None
        ]
        return Reach(
            key=value,
            notifications=len(members),
            delivered=sum(1 for r in members if r.sent_at is not None and r.sent_at < end),
            acknowledged=len(waits),
            median_seconds_to_acknowledge=statistics.median(waits) if waits else None,
        )

    return (
        [figures("sector", s.value) for s in SECTORS],
        [figures("region", r.value) for r in REGIONS],
    )


def _constituency(states: dict[int, PartnerState]) -> list[ConstituencyReach]:
    out = []
    active = [s for s in states.values() if s.active]
    for sector in SECTORS:
        members = [s for s in active if sector in s.all_sectors()]
        nets = [ipaddress.ip_network(p, strict=False) for m in members for p in m.ip_prefixes]
        v4 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 4))
        v6 = list(ipaddress.collapse_addresses(n for n in nets if n.version == 6))
        out.append(
            ConstituencyReach(
                sector=sector,
                partners=len(members),
                ipv4_addresses=sum(n.num_addresses for n in v4),
                ipv6_48_blocks=sum(2 ** max(0, 48 - n.prefixlen) for n in v6),
                asns=len({a for m in members for a in m.asns}),
                domains=len({d for m in members for d in m.domains}),
            )
        )
    return out


def actual(session: Session, *, as_of: date) -> ActualCoverage:
    end = until(as_of)
    states = states_at(session, as_of=as_of)
    acts = {days: _acts(session, start=end - timedelta(days=days), end=end) for days in PERIODS}
    longest = max(PERIODS)
    rows = repository.notifications(session, start=end - timedelta(days=longest), end=end)
    by_sector, by_region = _reach(states, rows, end)
    return ActualCoverage(
        as_of=as_of,
        cells=_cells(states, acts),
        notification_reach_by_sector=by_sector,
        notification_reach_by_region=by_region,
        constituency_reach=_constituency(states),
        counted=ActualCounting(
            rule=RULE,
            sources=SOURCES,
            periods={str(d): Period(start=end - timedelta(days=d), end=end) for d in PERIODS},
            notification_period_days=longest,
            notification_rule=REACH_RULE,
            constituency_rule=CONSTITUENCY_RULE,
        ),
    )


# --- monthly trend ----------------------------------------------------------------------------


def month_ends(as_of: date, months: int) -> list[date]:
    """The last day of each of the ``months`` months up to ``as_of``'s; ``as_of`` itself
    stands for its own month."""
    out = [as_of]
    first = as_of.replace(day=1)
    for _ in range(months - 1):
        last = first - timedelta(days=1)
        out.append(last)
        first = last.replace(day=1)
    return sorted(out)


def trend(session: Session, *, as_of: date, months: int) -> Trend:
    """Registered and actual figures at each month's end, from one replay of the history."""
    days = month_ends(as_of, months)
    moments = [until(d) for d in days]
    rows = repository.history_before(session, before=moments[-1])
    points = []
    for day, moment, states in zip(days, moments, replay(rows, moments), strict=True):
        active = [s for s in states.values() if s.active]
        cells: Counter[tuple[NetworkFunction, Sector, Region]] = Counter()
        for state in active:
            cells.update(state.triples())
        fs = {(f, s) for f, s, _ in cells}
        fr = {(f, r) for f, _, r in cells}
        acts = _acts(session, start=moment - timedelta(days=30), end=moment)
        acting = set().union(*acts.values())
        points.append(
            TrendPoint(
                as_of=day,
                active_partners=len(active),
                cells=len(cells),
                function_sectors_covered=len(fs),
                function_regions_covered=len(fr),
                gaps=len(FUNCTIONS) * (len(SECTORS) + len(REGIONS)) - len(fs) - len(fr),
                partners_acting_30_days=sum(1 for s in active if s.uuid in acting),
            )
        )
    return Trend(
        months=months,
        points=points,
        rule=(
            "Each point is registered coverage at the end of that day (UTC), replayed from the "
            "partner history, and the active partners with any act (received, shared, "
            "acknowledged, synced) in the 30 days before it; a month is represented by its "
            "last day, the current month by as_of."
        ),
    )
