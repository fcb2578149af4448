"""The public budget behind an enrollment: what a decision reserves on it and what a termination releases.

A region pays the contributions of the workers it funds (APBD, APBDes) from a yearly allocation its DPRD
approved. For every enrollment so funded, registration reserves the FUNDER's share of each month's
contribution from the coverage start to the end of the fiscal year (1 January to 31 December, WIB), each month
priced with the rates in force on its first day (the coverage start in the first month), like a migration's
past months. A month is due whole: a coverage that starts or ends mid-month costs the whole month, so a
termination releases the months after the one it takes effect in. A participation remembers what is reserved
for it (`ParticipantRecord.reserved`); after the year turns, an active one is carried into the new year's
budget for all twelve months (`reserved_now`). The ledger that adds all of this up is `domain.ledger`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

from services.registration.domain.contributions import priced
from shared.events import BudgetCharge, BudgetKey, BudgetSource, FundingSource, ParticipantStatus, Payer
from shared.regions import NATIONAL_CODE

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    from services.registration.domain.contributions import ContributionTerms
    from services.registration.domain.participation import Context, ParticipantRecord
    from shared.events import EnrollmentRequest
    from shared.regions import Regions

#: The funding sources a region's budget pays, and the budget each draws on.
BUDGET_OF: dict[FundingSource, BudgetSource] = {
    FundingSource.APBD: BudgetSource.APBD,
    FundingSource.APBDES: BudgetSource.APBDES,
}


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _first_months(start: date, year: int) -> list[date]:
    first = max(start, date(year, 1, 1))
    return [first] + [date(year, m, 1) for m in range(first.month + 1, 13)] if first.year == year else []


def commitment(terms: ContributionTerms, start: date, year: int) -> dict[str, int]:
    """The funder's share of each month from `start` (or 1 January) to December of `year`, whole Rupiah."""
    days = _first_months(start, year)
    shares = zip(days, priced(terms, days), strict=True)
    return {month_of(on): amount for on, monthly in shares if (amount := monthly.by_payer.get(Payer.FUNDER, 0))}


def budget_for(basis: EnrollmentRequest, year: int, declared: Collection[str], regions: Regions) -> BudgetKey | None:
    """The budget an enrollment draws on, if a public budget funds it: the most local one declared (kecamatan,
    then regency/city, then province), else its regency/city's, where the reservations are kept until the
    region declares one."""
    source = BUDGET_OF.get(basis.funding_source)
    if source is None:
        return None
    kecamatan = basis.worker.domicile_kecamatan
    local = [kecamatan] if kecamatan else []
    for code in [*local, *(r.code for r in regions.ancestors(basis.region_code) if r.code != NATIONAL_CODE)]:
        if f"{code}|{year}|{source.value}" in declared:
            return BudgetKey(region_code=code, fiscal_year=year, funding_source=source)
    return BudgetKey(region_code=basis.region_code, fiscal_year=year, funding_source=source)


@dataclass(frozen=True)
class Charge:
    """What one decision reserves (+) or releases (-) on one budget, and the hold it opens or closes.

    `holds` maps a held request (its `token`) to what it would reserve: positive opens that hold, negative
    closes it. Opening and closing are set operations, so doing either twice changes nothing.
    """

    budget: BudgetKey
    amount: int = 0
    workers: int = 0
    by_month: Mapping[str, int] = field(default_factory=dict)
    holds: Mapping[str, int] = field(default_factory=dict)

    def event(self) -> BudgetCharge | None:
        """The charge as an outcome carries it; a hold's bookkeeping alone is not a charge."""
        if not (self.amount or self.workers or self.by_month):
            return None
        return BudgetCharge(
            **self.budget.model_dump(), amount=self.amount, workers=self.workers, by_month=dict(self.by_month)
        )

    def inverse(self) -> Charge:
        return Charge(
            self.budget,
            -self.amount,
            -self.workers,
            {m: -v for m, v in self.by_month.items()},
            {h: -v for h, v in self.holds.items()},
        )

    def minus(self, other: Charge) -> Charge:
        """The reservation difference (holds are not compared: see `Ledger.enter`)."""
        months = {m: self.by_month.get(m, 0) - other.by_month.get(m, 0) for m in {*self.by_month, *other.by_month}}
        return Charge(
            self.budget,
            self.amount - other.amount,
            self.workers - other.workers,
            {m: v for m, v in sorted(months.items()) if v},
        )

    def with_hold(self, request_key: str, required: int, *, opens: bool) -> Charge:
        return replace(self, holds={**self.holds, token(request_key): required if opens else -required})


def reserve_from(budget: BudgetKey, months: Mapping[str, int], reserved: Mapping[str, int]) -> Charge:
    """A worker's new reservation: the months not reserved for it already (a reactivation in the month its
    termination took effect does not pay that month twice)."""
    added = {m: v for m, v in months.items() if m not in reserved}
    return Charge(budget, sum(added.values()), 1, added)


def release_after(budget: BudgetKey, reserved: Mapping[str, int], effective: date) -> Charge:
    """What a termination releases: every reserved month after the one it takes effect in."""
    cut = month_of(effective)
    released = {m: -v for m, v in reserved.items() if m > cut}
    return Charge(budget, sum(released.values()), -1, released)


def token(request_key: str) -> str:
    """A request key as a ledger field name: fixed length, no dots or dollars whatever the partner's id."""
    return hashlib.sha256(request_key.encode()).hexdigest()[:32]


# --- what a decision does to the budget of one participation ---------------------------------------------------


@dataclass(frozen=True)
class Reservation:
    """What a participation's budget holds for it in one fiscal year."""

    budget: BudgetKey
    by_month: Mapping[str, int]

    def recorded(self) -> BudgetCharge:
        return BudgetCharge(
            **self.budget.model_dump(), amount=sum(self.by_month.values()), workers=1, by_month=dict(self.by_month)
        )


def reserved_now(record: ParticipantRecord | None, year: int) -> Reservation | None:
    """What is reserved for a participation in `year`: as recorded in that year, or, for one active when the
    year turned, the whole year carried over from the year before."""
    if record is None or record.reserved is None:
        return None
    held = record.reserved
    budget = BudgetKey(region_code=held.region_code, fiscal_year=year, funding_source=held.funding_source)
    if held.fiscal_year == year:
        return Reservation(budget, held.by_month)
    if held.fiscal_year < year and record.status == ParticipantStatus.ACTIVE:
        return Reservation(budget, commitment(record.basis, date(year, 1, 1), year))
    return None


def _year_held(current: ParticipantRecord, ctx: Context) -> int:
    """The fiscal year a participation's reservation is in now: this year's, or next year's for a coverage
    that starts then (a termination or update of it must release or re-price that year's months)."""
    held = current.reserved
    return max(ctx.today.year, held.fiscal_year) if held is not None else ctx.today.year


def starting(
    terms: EnrollmentRequest, start: date, current: ParticipantRecord | None, ctx: Context
) -> tuple[Charge, Reservation] | None:
    """An enrollment or a reactivation from `start`: the months it adds, and the reservation after it."""
    year = max(ctx.today.year, start.year)
    budget = budget_for(terms, year, ctx.budgets, ctx.regions)
    if budget is None:
        return None
    before = reserved_now(current, year)
    reserved = before.by_month if before is not None and before.budget == budget else {}
    months = commitment(terms, start, year)
    added = {m: v for m, v in months.items() if m not in reserved}
    charge = Charge(budget, sum(added.values()), 1, added)
    return charge, Reservation(budget, dict(sorted({**reserved, **added}.items())))


def ending(current: ParticipantRecord, effective: date, ctx: Context) -> tuple[Charge, Reservation] | None:
    """A termination: every reserved month after the one it takes effect in is released."""
    before = reserved_now(current, _year_held(current, ctx))
    if before is None:
        return None
    cut = month_of(effective)
    released = {m: -v for m, v in before.by_month.items() if m > cut}
    kept = {m: v for m, v in before.by_month.items() if m <= cut}
    return Charge(before.budget, sum(released.values()), -1, released), Reservation(before.budget, kept)


def changing(
    current: ParticipantRecord, terms: EnrollmentRequest, effective: date, ctx: Context
) -> tuple[Charge, Reservation] | None:
    """An update: the months from the one it takes effect in are priced again on the new terms."""
    before = reserved_now(current, _year_held(current, ctx))
    if before is None:
        return None
    cut = month_of(effective)
    head = {m: v for m, v in before.by_month.items() if m < cut}
    tail = commitment(terms, max(effective, date(before.budget.fiscal_year, 1, 1)), before.budget.fiscal_year)
    after = {**head, **tail}
    diff = {m: after.get(m, 0) - before.by_month.get(m, 0) for m in {*after, *before.by_month}}
    charge = Charge(
        before.budget,
        sum(after.values()) - sum(before.by_month.values()),
        0,
        {m: v for m, v in sorted(diff.items()) if v},
    )
    return charge, Reservation(before.budget, dict(sorted(after.items())))
