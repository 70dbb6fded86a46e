"""Registered coverage, counted from the partner history rather than the current registry.

A partner covers (function F, sector S, region R) when it was active at the moment counted,
F is among its functions, S among its sectors or its constituency's sectors, and R its region
(DESIGN §2). "The moment counted" for ``as_of`` = D is the end of day D in UTC: every change
recorded before D + 1 day 00:00 UTC is replayed, in the order it was made, from the partner's
creation on. Replaying the history (rather than reading today's rows) is what makes the
figures for a past date the same whenever they are asked for, with no snapshot job to miss.

Gaps are derived from the cells: (F, S) is a gap when no cell (F, S, any region) exists, and
(F, R) when no cell (F, any sector, R) exists, so a partner without a sector fills no gap.
"""

from __future__ import annotations

import copy
import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from hub.coverage import repository
from hub.coverage.schemas import (
    Cell,
    CellPartners,
    CountedPartner,
    Counting,
    CoverageReport,
    RegionGap,
    SectorGap,
)
from hub.errors import InvalidField
from hub.models.base import utcnow
from hub.vocabulary import NetworkFunction, PartnerStatus, PartnerType, Region, Sector, Tier

FUNCTIONS = list(NetworkFunction)
# The enumeration's own order: NIS2 annex I (high criticality), annex II, then non-vital.
SECTORS = list(Sector)
REGIONS = list(Region)
NIS2_ANNEX_I = frozenset(SECTORS[: SECTORS.index(Sector.SPACE) + 1])
NIS2_ANNEX_II = frozenset(SECTORS[SECTORS.index(Sector.POSTAL_COURIER) : -1])
NIS2 = NIS2_ANNEX_I | NIS2_ANNEX_II

RULE = (
    "A partner covers (function, sector, region) when it was {status} at the end of as_of "
    "(UTC){tier}, the function is among its functions, the sector among its sectors or its "
    "constituency's sectors, and the region is its region. A cell counts those partners; "
    "a gap is a function and sector, or a function and region, that no cell covers."
)
SOURCE = (
    "the partner history: every recorded change before `until`, replayed in the order it "
    "was made from each partner's creation; not the current registry"
)
GAP_ORDER = (
    "function × sector gaps first, NIS2 annex I sectors, then annex II, then non-vital, each "
    "sector's functions in the enumeration's order; then function × region gaps, by region"
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(slots=True)
class PartnerState:
    """A partner as its history says it was at one moment (only what coverage needs)."""

    uuid: str
    is_hub_org: bool
    name: str = ""
    type: str = PartnerType.OTHER.value
    tier: str = Tier.CONNECTION.value
    region: str | None = None
    status: str = PartnerStatus.PROSPECT.value
    functions: list[str] = field(default_factory=list)
    sectors: list[str] = field(default_factory=list)
    constituency_sectors: list[str] = field(default_factory=list)
    ip_prefixes: list[str] = field(default_factory=list)
    asns: list[int] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)

    def apply(self, changes: dict[str, Any]) -> None:
        """One history entry: each field it names takes its ``new`` value."""
        for key, change in changes.items():
            new = change.get("new") if isinstance(change, dict) else None
            if key in ("name", "type", "tier", "region", "status") and isinstance(new, str):
                setattr(self, key, new)
            elif key in ("functions", "sectors") and isinstance(new, list):
                setattr(self, key, [str(v) for v in new])
            elif key == "constituency" and isinstance(new, dict):
                self.constituency_sectors = [str(v) for v in new.get("sectors") or []]
                self.ip_prefixes = [str(v) for v in new.get("ip_prefixes") or []]
                self.asns = [v for v in new.get("asns") or [] if isinstance(v, int)]
                self.domains = [str(v) for v in new.get("domains") or []]

    def triples(self) -> set[tuple[NetworkFunction, Sector, Region]]:
        """The cells this partner counts in (whatever its status)."""
        if self.region not in _REGION_VALUES:
            return set()
        region = Region(self.region)
        functions = [NetworkFunction(f) for f in self.functions if f in _FUNCTION_VALUES]
        sectors = {
            Sector(s) for s in (*self.sectors, *self.constituency_sectors) if s in _SECTOR_VALUES
        }
        return {(f, s, region) for f in functions for s in sectors}

    @property
    def active(self) -> bool:
        return self.status == PartnerStatus.ACTIVE.value

    def all_sectors(self) -> set[Sector]:
        return {
            Sector(s) for s in (*self.sectors, *self.constituency_sectors) if s in _SECTOR_VALUES
        }

    def counted(self) -> CountedPartner:
        return CountedPartner(
            uuid=self.uuid,
            name=self.name,
            type=PartnerType(self.type) if self.type in _TYPE_VALUES else PartnerType.OTHER,
            tier=Tier(self.tier) if self.tier in _TIER_VALUES else Tier.CONNECTION,
            region=Region(self.region) if self.region in _REGION_VALUES else Region.NL,
            functions=[NetworkFunction(f) for f in self.functions if f in _FUNCTION_VALUES],
            sectors=[Sector(s) for s in self.sectors if s in _SECTOR_VALUES],
            constituency_sectors=[
                Sector(s) for s in self.constituency_sectors if s in _SECTOR_VALUES
            ],
            cells=len(self.triples()),
        )


_FUNCTION_VALUES = frozenset(f.value for f in NetworkFunction)
_SECTOR_VALUES = frozenset(s.value for s in Sector)
_REGION_VALUES = frozenset(r.value for r in Region)
_TYPE_VALUES = frozenset(t.value for t in PartnerType)
_TIER_VALUES = frozenset(t.value for t in Tier)


# --- the moment counted ----------------------------------------------------------------


def today() -> date:
    return utcnow().date()


def parse_as_of(text: str | None) -> date:
    """``YYYY-MM-DD`` (default: today, UTC); a malformed or far-future date is a 422 on
    ``as_of``. Tomorrow is allowed: it is already today east of UTC."""
    if text is None or text == "":
        return today()
    if not _DATE.fullmatch(text):
        raise InvalidField(f"as_of: {text[:40]!r} is not a date as YYYY-MM-DD", field="as_of")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise InvalidField(f"as_of: {text!r} is not a calendar date", field="as_of") from None
    if value > today() + timedelta(days=1):
        raise InvalidField(
            f"as_of: {text} lies in the future; coverage is counted from what happened",
            field="as_of",
        )
    return value


def until(as_of: date) -> datetime:
    """The end of ``as_of`` in UTC (exclusive): the first moment of the next day."""
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=UTC)


# --- replaying the history ---------------------------------------------------------------


def replay(rows: Iterable[Any], moments: list[datetime]) -> Iterator[dict[int, PartnerState]]:
    """For each moment (ascending), every partner as it was just before it. ``rows`` are
    history entries in the order they were made (``repository.history_before``)."""
    states: dict[int, PartnerState] = {}
    pending = iter(moments)
    moment = next(pending, None)
    for partner_id, uuid, is_hub_org, changed_at, changes in rows:
        while moment is not None and changed_at >= moment:
            yield copy.deepcopy(states)
            moment = next(pending, None)
        if moment is None:
            return
        state = states.get(partner_id)
        if state is None:
            state = states[partner_id] = PartnerState(uuid=uuid, is_hub_org=is_hub_org)
        state.apply(changes or {})
    while moment is not None:
        yield copy.deepcopy(states)
        moment = next(pending, None)


def states_at(session: Session, *, as_of: date) -> dict[int, PartnerState]:
    moment = until(as_of)
    rows = repository.history_before(session, before=moment)
    return next(replay(rows, [moment]))


# --- registered coverage ------------------------------------------------------------------


def selected(
    states: dict[int, PartnerState], *, status: PartnerStatus, tier: Tier | None
) -> list[PartnerState]:
    """The partners counted: those with ``status`` (coverage: active) and, if given, ``tier``."""
    return [
        s
        for s in states.values()
        if s.status == status.value and (tier is None or s.tier == tier.value)
    ]


def rule(status: PartnerStatus, tier: Tier | None) -> str:
    return RULE.format(status=status.value, tier=f" in the {tier.value} tier" if tier else "")


def report_from(
    as_of: date,
    states: dict[int, PartnerState],
    *,
    status: PartnerStatus = PartnerStatus.ACTIVE,
    tier: Tier | None = None,
) -> CoverageReport:
    """Cells, gaps and the counting note for partners as they were at the end of ``as_of``
    (the contract's coverage counts active partners of every tier)."""
    active = selected(states, status=status, tier=tier)
    counts: Counter[tuple[NetworkFunction, Sector, Region]] = Counter()
    for state in active:
        counts.update(state.triples())
    f_index = {f: i for i, f in enumerate(FUNCTIONS)}
    s_index = {s: i for i, s in enumerate(SECTORS)}
    r_index = {r: i for i, r in enumerate(REGIONS)}
    cells = [
        Cell(function=f, sector=s, region=r, partners=n)
        for (f, s, r), n in sorted(
            counts.items(), key=lambda kv: (f_index[kv[0][0]], s_index[kv[0][1]], r_index[kv[0][2]])
        )
    ]
    covered_fs = {(f, s) for f, s, _ in counts}
    covered_fr = {(f, r) for f, _, r in counts}
    gaps: list[SectorGap | RegionGap] = [
        SectorGap(function=f, sector=s)
        for s in SECTORS
        for f in FUNCTIONS
        if (f, s) not in covered_fs
    ]
    gaps += [
        RegionGap(function=f, region=r)
        for r in REGIONS
        for f in FUNCTIONS
        if (f, r) not in covered_fr
    ]
    statuses = Counter(s.status for s in states.values())
    return CoverageReport(
        as_of=as_of,
        cells=cells,
        gaps=gaps,
        counted=Counting(
            rule=rule(status, tier),
            status=status,
            tier=tier,
            until=until(as_of),
            source=SOURCE,
            gap_order=GAP_ORDER,
            statuses={st: statuses.get(st.value, 0) for st in PartnerStatus},
            partners=sorted(
                (s.counted() for s in active), key=lambda p: (p.name.casefold(), p.uuid)
            ),
        ),
    )


def registered(
    session: Session,
    *,
    as_of: date,
    status: PartnerStatus = PartnerStatus.ACTIVE,
    tier: Tier | None = None,
) -> CoverageReport:
    """Registered coverage at the end of ``as_of`` (DESIGN §2); ``status`` and ``tier``
    count other partners instead (e.g. the onboarding pipeline, or the core network)."""
    return report_from(as_of, states_at(session, as_of=as_of), status=status, tier=tier)


def cell_partners(
    session: Session,
    *,
    as_of: date,
    function: NetworkFunction | None = None,
    sector: Sector | None = None,
    region: Region | None = None,
    status: PartnerStatus = PartnerStatus.ACTIVE,
    tier: Tier | None = None,
) -> CellPartners:
    """The partners counted in the cells matching the given function, sector and region
    (any that is not given matches every value): the drill-down of a cell or a gap."""
    found = []
    for state in selected(states_at(session, as_of=as_of), status=status, tier=tier):
        if any(
            (function is None or f is function)
            and (sector is None or s is sector)
            and (region is None or r is region)
            for f, s, r in state.triples()
        ):
            found.append(state.counted())
    found.sort(key=lambda p: (p.name.casefold(), p.uuid))
    return CellPartners(
        as_of=as_of, function=function, sector=sector, region=region, partners=found
    )


# --- CSV ------------------------------------------------------------------------------------

CSV_COLUMNS = ("kind", "function", "sector", "region", "partners", "as_of", "partner_uuids")


def to_csv(report: CoverageReport) -> str:
    """The same figures as the JSON: one row per cell (``kind`` = cell) and per gap
    (``kind`` = gap, ``partners`` 0, the other dimension empty). ``partner_uuids`` says
    which partners a cell counts, separated by ``;``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    by_cell: dict[tuple[str, str, str], list[str]] = {}
    for partner in report.counted.partners:
        for f in partner.functions:
            for s in {*partner.sectors, *partner.constituency_sectors}:
                by_cell.setdefault((f.value, s.value, partner.region.value), []).append(
                    partner.uuid
                )
    day = report.as_of.isoformat()
    for cell in report.cells:
        key = (cell.function.value, cell.sector.value, cell.region.value)
        writer.writerow(("cell", *key, cell.partners, day, ";".join(sorted(by_cell.get(key, [])))))
    for gap in report.gaps:
        sector = gap.sector.value if isinstance(gap, SectorGap) else ""
        region = gap.region.value if isinstance(gap, RegionGap) else ""
        writer.writerow(("gap", gap.function.value, sector, region, 0, day, ""))
    return out.getvalue()
