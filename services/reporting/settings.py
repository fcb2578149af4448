"""Reporting settings: `REPORTING_` first, then the project-wide `LINDUNGI_` prefix.

Only what differs from `ServiceSettings`: reporting's own defaults (larger batches, folded in memory) and its
settings for the fold, the writes, the snapshots and coverage.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared import topics
from shared.settings import ServiceSettings


class ReportingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTING_", extra="ignore", frozen=True)

    mongodb_database: str = "lindungi_reporting"
    http_port: int = 8002
    group_id: str = "lindungi-reporting"
    outcomes_topic: str = topics.ENROLLMENT_OUTCOMES.name
    region_aggregates_topic: str = topics.REGION_AGGREGATES.name
    budget_topic: str = topics.BUDGET_POSITIONS.name

    batch_max_records: int = Field(default=2000, ge=1, le=50_000, description="records per consumed batch")
    batch_timeout_ms: int = Field(default=200, ge=1, description="how long a batch waits to fill")
    dedupe_window: int = Field(
        default=10_000,
        ge=1,
        le=200_000,
        description="event ids remembered per outcome partition; a duplicate further behind is counted twice",
    )
    commit_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="batches are folded in memory and written together this often (figures lag by up to this)",
    )
    compaction_seconds: float = Field(
        default=0.25,
        ge=0,
        description="time each write may spend rewriting chunk documents behind the cursors (domain/partitions.py)",
    )
    overlay_limit: int = Field(
        default=500,
        ge=0,
        description="leaves a cursor may carry; past it, every chunk of that partition is rewritten at the next write",
    )
    publish_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        description="coalescing: each changed region is published at most once per interval",
    )
    rerank_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="a regency/city whose rank alone moved is republished at most this often (changed figures "
        "go out every publish interval, with the rank of the moment)",
    )
    catch_up_kecamatan_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="while catching up on a backlog (batches come full), kecamatan snapshots go out at most "
        "this often; the nation, provinces and regencies/cities still every publish interval",
    )
    targets_refresh_seconds: float = Field(
        default=30.0, gt=0, description="how often official figures loaded by an operator are picked up"
    )

    # Coverage denominator: population x working-age share x labour-force participation (docs/reporting.md).
    working_age_share: float = Field(default=0.69, gt=0, le=1, description="share of population aged 15-64")
    labour_force_participation: float = Field(default=0.68, gt=0, le=1)
    default_target_ratio: float | None = Field(
        default=None, gt=0, le=1, description="coverage target for regions without an official one"
    )
    targets_file: Path | None = Field(
        default=None, description="CSV of official workforce figures and targets, loaded at start-up"
    )

    # The cost of full coverage (docs/reporting.md, "Budgets"): the coverage denominator x this share, times the
    # standard package. 0.5917: BPS, Keadaan Ketenagakerjaan Indonesia Februari 2024 (Sakernas): 84.13 million
    # of the employed, 59.17%, work in informal activities; informal workers are the vulnerable workers a region
    # enrolls as BPU. A region that counts its vulnerable workers itself sets its own share or loads a workforce.
    vulnerable_share: float = Field(
        default=0.5917, gt=0, le=1, description="share of the workforce taken as vulnerable (informal) workers"
    )
    # BPU on the minimum declared income of Rp1,000,000: JKK 1% = Rp10,000 + JKM Rp6,800 (shared DOMAIN.md).
    vulnerable_package_monthly: int = Field(
        default=16_800, ge=0, description="Rupiah per vulnerable worker per month (JKK + JKM)"
    )

    suppress_below: int = Field(
        default=0,
        ge=0,
        description="k: show counts 1..k-1 as `<k` in published figures; 0 = off (internal use)",
    )
