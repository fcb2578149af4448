"""Reporting: per-region aggregates (compacted topic, one record per region)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from shared.events.envelope import CloudEvent, Frozen


class Coverage(Frozen):
    denominator: int = Field(ge=0, description="workforce estimate or the official figure loaded by an operator")
    denominator_source: Literal["estimate", "official"]
    ratio: float = Field(ge=0, description="active participants / denominator, rounded to 6 decimals")
    target_ratio: float | None = None
    distance_to_target: int | None = Field(default=None, description="participants still needed to reach the target")


Figure = int | str  # a count, or `<k` when small-cell suppression hides a count below k


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


class RegionAggregateUpdated(CloudEvent[RegionAggregate]):
    type: Literal["id.lindungi.region.aggregate.updated"] = "id.lindungi.region.aggregate.updated"
