"""Budgets: where each APBD/APBDes allocation stands, how fast it is being reserved, and what full coverage of
the region's vulnerable workers would cost.

Registration publishes a budget's position after every change (`BudgetPosition`, latest `sequence` wins).
Reporting keeps the latest position of every budget and a short history of its `reserved` total (samples),
from which the figures below are computed at one instant. Pure: no I/O, no clock (instants are parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from services.reporting.domain.counters import WIB, business_date
from shared.events.aggregates import BudgetFigures, FullCoverage

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from services.reporting.domain.coverage import CoveragePolicy
    from shared.events import BudgetPosition

MONTHS_PER_YEAR = 12
RATE_WINDOW = timedelta(days=30)
AVERAGE_MONTH = timedelta(days=365.25 / 12)  # 30.44 days: "per month" whatever the calendar month
# A sample is kept at most this often (the latest position always replaces the newest sample within it), so a
# busy budget keeps about 720 samples over the window, not one per enrollment.
SAMPLE_SPACING = timedelta(hours=1)


@dataclass(frozen=True)
class Sample:
    """The budget's `reserved` total as of a position's time."""

    at: datetime
    reserved: int


@dataclass(frozen=True)
class BudgetRecord:
    """The latest position of one budget and the samples of its reservation (oldest first)."""

    position: BudgetPosition
    samples: tuple[Sample, ...] = ()

    @property
    def key(self) -> str:
        return self.position.key


def accept(current: BudgetRecord | None, position: BudgetPosition) -> BudgetRecord | None:
    """The record after a position, or None when the position is not newer than what is kept (a redelivery,
    or an older position arriving late): the highest sequence wins whatever the order of arrival."""
    if current is None:
        return BudgetRecord(position, (Sample(position.as_of, position.reserved),))
    if position.sequence <= current.position.sequence:
        return None
    return BudgetRecord(position, _sampled(current.samples, Sample(position.as_of, position.reserved)))


def _sampled(samples: tuple[Sample, ...], new: Sample) -> tuple[Sample, ...]:
    kept = list(samples)
    if len(kept) >= 2 and new.at - kept[-2].at < SAMPLE_SPACING:
        kept[-1] = new
    else:
        kept.append(new)
    # Older than the window and not needed as the window's starting value: dropped.
    start = new.at - RATE_WINDOW
    while len(kept) >= 2 and kept[1].at <= start:
        kept.pop(0)
    return tuple(sorted(kept, key=lambda s: s.at))


def rate_anchor(record: BudgetRecord, now: datetime) -> datetime:
    """Where the trailing window ends: the latest position's time, or the start of today (WIB) when the budget
    has not moved today. The rate then changes only with a new position or a new day, so snapshots are not
    republished every second, and a budget that stops moving decays to "no growth" after 30 days."""
    start_of_day = datetime.combine(business_date(now), time(0), WIB)
    return max(record.position.as_of, start_of_day)


def monthly_rate(samples: tuple[Sample, ...], anchor: datetime) -> int | None:
    """Rupiah per month by which `reserved` grew over the 30 days before `anchor` (None without growth).

    `reserved` is a step function of time: its value at the window's start is the latest sample at or before
    it. A budget younger than the window is measured from its first sample. Net growth: releases count.
    """
    if not samples:
        return None
    start = anchor - RATE_WINDOW
    before = [s for s in samples if s.at <= start]
    if before:
        baseline = before[-1].reserved
    else:
        start, baseline = samples[0].at, samples[0].reserved
    latest = max((s for s in samples if s.at <= anchor), key=lambda s: s.at, default=samples[-1])
    elapsed, growth = anchor - start, latest.reserved - baseline
    if elapsed <= timedelta(0) or growth <= 0:
        return None
    return round(growth * (AVERAGE_MONTH / elapsed))


def runway(remaining: int | None, rate: int | None) -> float | None:
    """Months until the allocation is fully reserved at `rate`; 0 when nothing remains; None without growth."""
    if remaining is None or rate is None:
        return None
    return 0.0 if remaining <= 0 else round(remaining / rate, 1)


def spent_to_date(by_month: Mapping[str, int], today: date) -> int:
    """The reservation of every month up to and including the current one (months are `YYYY-MM`)."""
    current = f"{today.year:04d}-{today.month:02d}"
    return sum(amount for month, amount in by_month.items() if month <= current)


def months_remaining(fiscal_year: int, today: date) -> int:
    """Months of the fiscal year from the current month on (all 12 for a future year, none for a past one)."""
    if fiscal_year < today.year:
        return 0
    if fiscal_year > today.year:
        return MONTHS_PER_YEAR
    return MONTHS_PER_YEAR - today.month + 1


@dataclass(frozen=True)
class CoverageCost:
    """The assumptions behind the cost of full coverage (settings.py, docs/reporting.md)."""

    vulnerable_share: float
    package_monthly: int

    def full_coverage(
        self, policy: CoveragePolicy, region_code: str, fiscal_year: int, workers: int, today: date
    ) -> FullCoverage | None:
        denominator = policy.denominator(region_code)
        if denominator is None:
            return None
        workforce, source = denominator
        estimated = round(workforce * self.vulnerable_share)
        uncovered = max(0, estimated - workers)
        months = months_remaining(fiscal_year, today)
        package = self.package_monthly
        return FullCoverage(
            estimated_workers=estimated,
            workforce=workforce,
            workforce_source=source,
            vulnerable_share=self.vulnerable_share,
            package_monthly=package,
            months_remaining=months,
            cost_remaining_months=estimated * package * months,
            cost_next_fiscal_year=estimated * package * MONTHS_PER_YEAR,
            uncovered_workers=uncovered,
            gap_remaining_months=uncovered * package * months,
            gap_next_fiscal_year=uncovered * package * MONTHS_PER_YEAR,
        )


def budget_figures(record: BudgetRecord, policy: CoveragePolicy, cost: CoverageCost, now: datetime) -> BudgetFigures:
    """One budget's figures at `now`: allocation, reserved, spent to date, remaining, runway, full coverage."""
    p = record.position
    today = business_date(now)
    remaining = None if p.allocation is None else p.allocation - p.reserved
    rate = monthly_rate(record.samples, rate_anchor(record, now))
    return BudgetFigures(
        region_code=p.region_code,
        fiscal_year=p.fiscal_year,
        funding_source=p.funding_source,
        sequence=p.sequence,
        position_as_of=p.as_of,
        allocation=p.allocation,
        allocation_version=p.allocation_version,
        worker_cap=p.worker_cap,
        dprd_decision=p.dprd_decision,
        reserved=p.reserved,
        workers=p.workers,
        spent_to_date=spent_to_date(p.by_month, today),
        remaining=remaining,
        reserved_ratio=round(p.reserved / p.allocation, 6) if p.allocation else None,
        monthly_reservation_rate=rate,
        runway_months=runway(remaining, rate),
        holds_waiting=p.holds_waiting,
        holds_waiting_amount=p.holds_waiting_amount,
        full_coverage=cost.full_coverage(policy, p.region_code, p.fiscal_year, p.workers, today),
    )


@dataclass
class BudgetBook:
    """The latest record of every budget, by key and by region, and which regions' budgets changed since last
    asked. Indexed by region: the publisher asks for every region's budgets at each WIB midnight."""

    records: dict[str, BudgetRecord] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)  # region codes
    _by_region: dict[str, dict[str, BudgetRecord]] = field(default_factory=dict)

    def apply(self, position: BudgetPosition, after: BudgetRecord | None = None) -> BudgetRecord | None:
        """The new record when the position is newer than the one kept, or than `after` (a newer record not
        kept yet: not yet stored, the caller stores it and then `keep`s it); else None."""
        return accept(after or self.records.get(position.key), position)

    def keep(self, record: BudgetRecord) -> bool:
        """Take a stored record unless a newer one is kept already (another instance's, read back)."""
        current = self.records.get(record.key)
        if current is not None and current.position.sequence >= record.position.sequence:
            return False
        region = record.position.region_code
        self.records[record.key] = record
        self._by_region.setdefault(region, {})[record.key] = record
        self.dirty.add(region)
        return True

    def of_region(self, code: str) -> list[BudgetRecord]:
        """The region's own budgets, by fiscal year then source."""
        mine = self._by_region.get(code, {}).values()
        return sorted(mine, key=lambda r: (r.position.fiscal_year, r.position.funding_source.value))

    def regions(self) -> set[str]:
        return set(self._by_region)

    def sequences(self) -> dict[str, int]:
        return {key: r.position.sequence for key, r in self.records.items()}

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def matching(self, region: str | None, fiscal_year: int | None) -> Iterable[BudgetRecord]:
        """Budgets of one region (or all) and one fiscal year (or all), by region, year and source."""
        rows = [
            r
            for r in self.records.values()
            if (region is None or r.position.region_code == region)
            and (fiscal_year is None or r.position.fiscal_year == fiscal_year)
        ]
        return sorted(rows, key=lambda r: (r.position.region_code, r.position.fiscal_year, r.position.funding_source))
