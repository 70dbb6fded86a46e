"""Coverage answers (DESIGN §2): cells and gaps exactly as the contract names them, and beside
them how every figure was counted (which partners, which moment, which rule)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel

from hub.vocabulary import NetworkFunction, PartnerStatus, PartnerType, Region, Sector, Tier


class Cell(BaseModel):
    """Active partners covering one function in one sector in one region."""

    function: NetworkFunction
    sector: Sector
    region: Region
    partners: int


class SectorGap(BaseModel):
    function: NetworkFunction
    sector: Sector


class RegionGap(BaseModel):
    function: NetworkFunction
    region: Region


class CountedPartner(BaseModel):
    """A partner active at the moment counted, as the history says it was then."""

    uuid: str
    name: str
    type: PartnerType
    tier: Tier
    region: Region
    functions: list[NetworkFunction]
    sectors: list[Sector]
    constituency_sectors: list[Sector]
    cells: int  # how many (function, sector, region) cells it counts in; 0 without sector


class Counting(BaseModel):
    """How the figures were counted."""

    rule: str
    status: PartnerStatus  # the partners counted: active (coverage) unless asked otherwise
    tier: Tier | None  # every tier unless asked for one
    until: datetime  # changes recorded before this moment (exclusive) are counted
    source: str
    gap_order: str
    statuses: dict[PartnerStatus, int]  # every partner known at that moment, by status
    partners: list[CountedPartner]  # the ones counted, each in `cells` cells


class CoverageReport(BaseModel):
    as_of: date
    cells: list[Cell]
    gaps: list[SectorGap | RegionGap]
    counted: Counting


class CellPartners(BaseModel):
    """The drill-down of one cell (or a row or column of cells): who covers it."""

    as_of: date
    function: NetworkFunction | None
    sector: Sector | None
    region: Region | None
    partners: list[CountedPartner]


class ActualCell(BaseModel):
    """A registered cell and how many of its partners did something in each period."""

    function: NetworkFunction
    sector: Sector
    region: Region
    registered: int
    # "30" / "90" → {"received", "shared", "acknowledged", "synced", "any"} partner counts
    active: dict[str, dict[str, int]]


class Reach(BaseModel):
    key: str  # the sector or region
    notifications: int
    delivered: int
    acknowledged: int
    median_seconds_to_acknowledge: float | None


class ConstituencyReach(BaseModel):
    sector: Sector
    partners: int
    ipv4_addresses: int
    ipv6_48_blocks: int
    asns: int
    domains: int


class Period(BaseModel):
    start: datetime
    end: datetime  # exclusive


class ActualCounting(BaseModel):
    rule: str
    sources: dict[str, str]
    periods: dict[str, Period]
    notification_period_days: int
    notification_rule: str
    constituency_rule: str


class ActualCoverage(BaseModel):
    as_of: date
    cells: list[ActualCell]
    notification_reach_by_sector: list[Reach]
    notification_reach_by_region: list[Reach]
    constituency_reach: list[ConstituencyReach]
    counted: ActualCounting


class TrendPoint(BaseModel):
    as_of: date
    active_partners: int
    cells: int
    function_sectors_covered: int
    function_regions_covered: int
    gaps: int
    partners_acting_30_days: int


class Trend(BaseModel):
    months: int
    points: list[TrendPoint]
    rule: str
