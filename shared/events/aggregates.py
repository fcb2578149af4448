"""Reporting: per-region aggregates (compacted topic, one record per region)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from shared.events.budget import BudgetKey
from shared.events.envelope import CloudEvent, Frozen


class Coverage(Frozen):
    denominator: int = Field(ge=0, description="workforce estimate or the official figure loaded by an operator")
    denominator_source: Literal["estimate", "official"]
    ratio: float = Field(ge=0, description="active participants / denominator, rounded to 6 decimals")
    target_ratio: float | None = None
    distance_to_target: int | None = Field(default=None, description="participants still needed to reach the target")


Figure = int | str  # a count, or `<k` when small-cell suppression hides a count below k


class FullCoverage(Frozen):
    """What covering every vulnerable worker of the budget's region would cost, with the standard BPU package."""

    estimated_workers: int = Field(ge=0, description="the region's workforce x the vulnerable (informal) share")
    workforce: int = Field(ge=0, description="the coverage denominator the estimate starts from")
    workforce_source: Literal["estimate", "official"]
    vulnerable_share: float = Field(gt=0, le=1, description="share of the workforce taken as vulnerable workers")
    package_monthly: int = Field(ge=0, description="Rupiah per worker per month (BPU: JKK Rp10,000 + JKM Rp6,800)")
    months_remaining: int = Field(ge=0, le=12, description="months of the fiscal year from the current WIB month")
    cost_remaining_months: int = Field(ge=0, description="every estimated worker for the remaining months")
    cost_next_fiscal_year: int = Field(ge=0, description="every estimated worker for the 12 months of the next year")
    uncovered_workers: int = Field(ge=0, description="estimated workers less the workers already reserved")
    gap_remaining_months: int = Field(ge=0, description="the uncovered workers for the remaining months")
    gap_next_fiscal_year: int = Field(ge=0, description="the uncovered workers for the next fiscal year")


class BudgetFigures(BudgetKey):
    """One budget of the region (an APBD or APBDes allocation for one fiscal year) as reporting sees it."""

    sequence: int = Field(ge=1, description="the budget position reflected (registration's sequence)")
    position_as_of: datetime
    allocation: int | None = Field(description="Rupiah the DPRD approved (latest version); None before any")
    allocation_version: int = Field(ge=0)
    worker_cap: int | None = None
    dprd_decision: str | None = None
    reserved: int = Field(description="Rupiah reserved to the end of the fiscal year")
    workers: int = Field(description="workers whose contributions are reserved")
    spent_to_date: int = Field(description="the reservation of the months up to and including the current WIB month")
    remaining: int | None = Field(description="allocation - reserved: negative after a downward revision")
    reserved_ratio: float | None = Field(default=None, description="reserved / allocation, 6 decimals")
    monthly_reservation_rate: int | None = Field(
        default=None, description="Rupiah per month by which `reserved` grew over the trailing 30 days"
    )
    runway_months: float | None = Field(
        default=None, description="remaining / monthly_reservation_rate, 1 decimal; None without growth"
    )
    holds_waiting: int = Field(ge=0)
    holds_waiting_amount: int = Field(ge=0)
    full_coverage: FullCoverage | None = Field(
        default=None, description="none where the region has no workforce figure (a kecamatan without one)"
    )


class RegionAggregate(Frozen):
    """Aggregates only: counts may be suppressed to strings like `<5` when small-cell suppression is on.

    A region's figures are the sum of its children's plus what is counted at its own level only (participants
    without a known kecamatan, rejections without a region): see docs/reporting.md.
    """

    region_code: str = Field(description="`ID` for the nation, else a Kemendagri code")
    region_name: str
    level: Literal["national", "province", "regency/city", "kecamatan"]
    parent_code: str | None = Field(default=None, description="`ID` for a province, none for the nation")
    as_of: datetime = Field(description="when the figures were computed")
    business_date: date | None = Field(
        default=None, description="the WIB (Asia/Jakarta) date that `today` and `this_month` refer to"
    )
    source_offsets: dict[str, int] = Field(description="`topic:partition` -> next offset reflected")
    suppressed_below: int | None = Field(default=None, description="k when counts 1..k-1 are shown as `<k`")
    active: Figure
    enrollments: dict[str, Figure] = Field(description="today, this_month, total")
    terminations: dict[str, Figure]
    reactivations: dict[str, Figure]
    holds: dict[str, Figure] = Field(
        default_factory=dict,
        description="enrollments held because the budget was exhausted (not enrollments): today, this_month, total",
    )
    migrations: dict[str, Figure] = Field(
        default_factory=dict,
        description="existing participations moved from another system (not new enrollments): today, this_month, total",
    )
    by_segment: dict[str, Figure] = Field(description="active participants")
    by_category: dict[str, Figure]
    by_program: dict[str, Figure] = Field(description="active participants enrolled in each program")
    by_funding_source: dict[str, Figure]
    by_sex: dict[str, Figure]
    by_age_band: dict[str, Figure]
    monthly_contributions_by_payer: dict[str, Figure] = Field(description="Rupiah per month, active participants")
    monthly_contributions_by_funding_source: dict[str, Figure]
    monthly_contributions_by_funding_source_and_payer: dict[str, dict[str, Figure]] = Field(
        default_factory=dict,
        description="funding source -> payer -> Rupiah per month (what an APBD itself pays)",
    )
    annual_contributions_by_funding_source: dict[str, Figure] = Field(
        default_factory=dict, description="12 x the monthly figure: the yearly budget at today's enrollment"
    )
    rejections: Figure = 0
    rejections_by_reason: dict[str, Figure] = Field(description="a rejection counts once under each of its codes")
    rejections_by_partner: dict[str, Figure]
    coverage: Coverage | None = None
    rank_in_province: int | None = Field(default=None, description="regencies/cities only: 1 = highest coverage")
    rank_national: int | None = None
    budgets: list[BudgetFigures] = Field(
        default_factory=list, description="the region's own APBD/APBDes budgets, by fiscal year and source"
    )


class RegionAggregateUpdated(CloudEvent[RegionAggregate]):
    type: Literal["id.lindungi.region.aggregate.updated"] = "id.lindungi.region.aggregate.updated"
