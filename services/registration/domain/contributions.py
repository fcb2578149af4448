"""Monthly contributions (iuran): how much, for which program, and who pays it.

Every figure lives in `rates.toml` beside this module (read and validated by `rates`), each with its
effective date and regulation; this module holds only the arithmetic. Amounts are computed with `Decimal`
and each line (one program, one payer) is rounded to whole Rupiah, half up, so that `by_program`, `by_payer`
and `total` add up exactly.

Who pays what (`shared.events.Payer`):
- PU (Penerima Upah): the employer's share goes to the EMPLOYER, or to the FUNDER when the funding source is a
  public budget (APBD for non-ASN staff: the region is the employer and pays from its budget). The worker's
  share (JHT 2 %, JP 1 %) is paid by the WORKER, deducted from the wage; with
  `policy.apbd_pays_worker_share` the FUNDER pays it too.
- JKP (Jaminan Kehilangan Pekerjaan) costs employer and worker nothing extra: the CENTRAL_GOVERNMENT pays its
  share (0.22 %), and the rest is moved out of the JKK (and until February 2025 the JKM) contribution the
  employer already pays. So `by_program[JKK]` is the JKK contribution minus the part moved to JKP, while
  `by_payer[EMPLOYER]` is the same with or without JKP.
- BPU (Bukan Penerima Upah): the WORKER pays when the funding source is SELF, otherwise the FUNDER (APBD,
  APBN, APBDes, CSR, zakat) pays everything.
- JAKON (Jasa Konstruksi): the contractor (EMPLOYER) pays the project's contribution on the contract value.
  That contribution is due once for the whole project; as `Contributions` is monthly it is spread evenly
  over `contract_months` when the request gives the project's length, and shown whole otherwise.
- PMI (Pekerja Migran Indonesia): the worker (SELF) or the placement agency (EMPLOYER) pays a pre-departure
  amount and a package for the placement contract; the monthly figure is both together spread evenly over
  the contract months.

The calculator trusts its input: run the rules first. Terms it cannot compute at all raise
`IncompleteTermsError`; a date before the first version of a needed rate raises `RateNotInForceError`.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Protocol

from services.registration.domain.rates import (
    PmiRates,
    RateNotInForceError,
    RateTable,
    Tier,
    in_force,
    load_rate_table,
)
from shared.events import ContributionPeriod, Contributions, Employer, FundingSource, Payer, Program, Segment

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

# The rate file's loader and errors are part of what a caller of the calculator needs.
__all__ = [
    "ContributionTerms",
    "IncompleteTermsError",
    "RateNotInForceError",
    "RateTable",
    "calculate",
    "funding_payer",
    "load_rate_table",
    "past_contributions",
    "placement_amount",
    "tiered",
]

_HUNDRED = Decimal(100)
_ONE = Decimal(1)


class IncompleteTermsError(ValueError):
    """The terms lack a figure the contribution is computed from (the rules would have rejected them)."""


class ContributionTerms(Protocol):
    """What a contribution depends on; an `EnrollmentRequest` has all of it."""

    @property
    def segment(self) -> Segment: ...
    @property
    def programs(self) -> Sequence[Program]: ...
    @property
    def employer(self) -> Employer | None: ...
    @property
    def monthly_wage(self) -> int | None: ...
    @property
    def declared_income(self) -> int | None: ...
    @property
    def contract_value(self) -> int | None: ...
    @property
    def contract_months(self) -> int | None: ...
    @property
    def funding_source(self) -> FundingSource: ...


def _rupiah(amount: Decimal) -> int:
    return int(amount.quantize(_ONE, rounding=ROUND_HALF_UP))


def _percent_of(base: Decimal, percent: Decimal) -> Decimal:
    return base * percent / _HUNDRED


def funding_payer(funding: FundingSource) -> Payer:
    """Who transfers the money a funding source stands for."""
    if funding == FundingSource.SELF:
        return Payer.WORKER
    if funding == FundingSource.EMPLOYER:
        return Payer.EMPLOYER
    return Payer.FUNDER


class _Ledger:
    """Lines of (program, payer, whole Rupiah); both splits are sums of the same lines, so they agree."""

    def __init__(self) -> None:
        self.by_program: dict[Program, int] = {}
        self.by_payer: dict[Payer, int] = {}

    def add(self, program: Program, payer: Payer, amount: int) -> None:
        self.by_program[program] = self.by_program.get(program, 0) + amount
        self.by_payer[payer] = self.by_payer.get(payer, 0) + amount

    def contributions(self, on: date) -> Contributions:
        # In the enums' order, so that the same contribution always serializes the same way.
        return Contributions(
            as_of=on,
            by_program={p: self.by_program[p] for p in Program if p in self.by_program},
            by_payer={p: self.by_payer[p] for p in Payer if p in self.by_payer},
            total=sum(self.by_program.values()),
        )


def calculate(terms: ContributionTerms, on: date, rates: RateTable | None = None) -> Contributions:
    """The monthly contribution on `on` under the rates in force that day (see the module docstring)."""
    table = rates if rates is not None else load_rate_table()
    ledger = _Ledger()
    programs = frozenset(terms.programs)
    if terms.segment == Segment.PU:
        _pu(terms, programs, on, table, ledger)
    elif terms.segment == Segment.BPU:
        _bpu(terms, programs, on, table, ledger)
    elif terms.segment == Segment.JAKON:
        _jakon(terms, programs, on, table, ledger)
    else:
        _pmi(terms, programs, on, table, ledger)
    return ledger.contributions(on)


def _first_of_month(day: date) -> date:
    return day.replace(day=1)


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def rate_changes(table: RateTable) -> tuple[date, ...]:
    """Every date on which some rate, ceiling or package changes: between two of them a contribution is fixed."""
    pu = table.pu
    versions = (*pu.jkk, *pu.jkm, *pu.jht, *pu.jp, *pu.jp_wage_ceiling, *pu.jkp, *table.bpu, *table.jakon, *table.pmi)
    return tuple(sorted({v.effective_from for v in versions}))


def priced(terms: ContributionTerms, days: Iterable[date], rates: RateTable | None = None) -> Iterator[Contributions]:
    """The monthly contribution on each of `days` (in order), priced again only where some rate changed since
    the day before: between two changes a contribution is fixed, so ten years of months cost a dozen
    calculations, not 120."""
    table = rates if rates is not None else load_rate_table()
    changes = rate_changes(table)
    priced_with, monthly = -1, None  # how many rate changes were in force when `monthly` was priced
    for on in days:
        in_force = bisect_right(changes, on)
        if monthly is None or in_force != priced_with:
            monthly, priced_with = calculate(terms, on, table), in_force
        yield monthly


def past_contributions(
    terms: ContributionTerms, coverage_start: date, today: date, rates: RateTable | None = None
) -> list[ContributionPeriod]:
    """The contribution of every month from the coverage start's month to the month before `today`'s.

    A month is priced on its first day (on the coverage start in the first month) with the rates in force
    then, so a JP wage ceiling raised on 1 March applies from March. Months with equal contributions are one
    period. Only months in which some rate changed are priced again: a migration reaching back ten years costs
    a dozen calculations, not 120.
    """
    months: list[date] = []
    month, current = _first_of_month(coverage_start), _first_of_month(today)
    while month < current:
        months.append(month)
        month = _next_month(month)
    periods: list[ContributionPeriod] = []
    for month, monthly in zip(months, priced(terms, [max(m, coverage_start) for m in months], rates), strict=True):
        label = f"{month.year:04d}-{month.month:02d}"
        last = periods[-1] if periods else None
        if last is not None and (last.monthly.by_program, last.monthly.by_payer) == (
            monthly.by_program,
            monthly.by_payer,
        ):
            periods[-1] = last.model_copy(update={"last_month": label, "months": last.months + 1})
        else:
            periods.append(ContributionPeriod(first_month=label, last_month=label, months=1, monthly=monthly))
    return periods


def _pu(terms: ContributionTerms, programs: frozenset[Program], on: date, table: RateTable, ledger: _Ledger) -> None:
    if not terms.monthly_wage:
        raise IncompleteTermsError("PU needs a monthly wage")
    if terms.employer is None:
        raise IncompleteTermsError("PU needs an employer (for the JKK risk level)")
    wage = Decimal(terms.monthly_wage)
    pu = table.pu
    employer = funding_payer(terms.funding_source)
    public_funder = employer is Payer.FUNDER
    worker = Payer.FUNDER if public_funder and table.policy.apbd_pays_worker_share else Payer.WORKER

    jkk = _rupiah(_percent_of(wage, in_force(pu.jkk, on, "JKK").percent(terms.employer.jkk_risk)))
    jkm = _rupiah(_percent_of(wage, in_force(pu.jkm, on, "JKM").employer))
    if Program.JKP in programs:
        jkp = in_force(pu.jkp, on, "JKP")
        base = min(wage, jkp.wage_cap)
        moved_from_jkk = _rupiah(_percent_of(base, jkp.from_jkk))
        moved_from_jkm = _rupiah(_percent_of(base, jkp.from_jkm))
        jkk -= moved_from_jkk
        jkm -= moved_from_jkm
        ledger.add(Program.JKP, employer, moved_from_jkk + moved_from_jkm)
        ledger.add(Program.JKP, Payer.CENTRAL_GOVERNMENT, _rupiah(_percent_of(base, jkp.central_government)))
    if Program.JKK in programs:
        ledger.add(Program.JKK, employer, jkk)
    if Program.JKM in programs:
        ledger.add(Program.JKM, employer, jkm)
    if Program.JHT in programs:
        jht = in_force(pu.jht, on, "JHT")
        ledger.add(Program.JHT, employer, _rupiah(_percent_of(wage, jht.employer)))
        ledger.add(Program.JHT, worker, _rupiah(_percent_of(wage, jht.worker)))
    if Program.JP in programs:
        jp = in_force(pu.jp, on, "JP")
        base = min(wage, in_force(pu.jp_wage_ceiling, on, "JP wage ceiling").amount)
        ledger.add(Program.JP, employer, _rupiah(_percent_of(base, jp.employer)))
        ledger.add(Program.JP, worker, _rupiah(_percent_of(base, jp.worker)))


def _bpu(terms: ContributionTerms, programs: frozenset[Program], on: date, table: RateTable, ledger: _Ledger) -> None:
    if terms.declared_income is None:
        raise IncompleteTermsError("BPU needs a declared income")
    income = Decimal(terms.declared_income)
    rates = table.bpu_in_force(on)
    payer = funding_payer(terms.funding_source)
    if Program.JKK in programs:
        ledger.add(Program.JKK, payer, _rupiah(_percent_of(income, rates.jkk)))
    if Program.JKM in programs:
        ledger.add(Program.JKM, payer, _rupiah(rates.jkm_amount))
    if Program.JHT in programs:
        ledger.add(Program.JHT, payer, _rupiah(_percent_of(income, rates.jht)))


def tiered(value: Decimal, tiers: Sequence[Tier]) -> Decimal:
    """Marginal tiers: each tier's percent applies to the part of `value` between its `over` and the next."""
    total = Decimal(0)
    uppers = [t.over for t in tiers[1:]]
    for tier, upper in zip(tiers, [*uppers, None], strict=True):
        top = value if upper is None else min(value, upper)
        if top > tier.over:
            total += _percent_of(top - tier.over, tier.percent)
    return total


def _jakon(terms: ContributionTerms, programs: frozenset[Program], on: date, table: RateTable, ledger: _Ledger) -> None:
    if not terms.contract_value:
        raise IncompleteTermsError("JAKON needs a contract value")
    value = Decimal(terms.contract_value)
    months = Decimal(terms.contract_months or 1)
    rates = in_force(table.jakon, on, "JAKON")
    payer = funding_payer(terms.funding_source)
    if Program.JKK in programs:
        ledger.add(Program.JKK, payer, _rupiah(tiered(value, rates.jkk_tiers) / months))
    if Program.JKM in programs:
        ledger.add(Program.JKM, payer, _rupiah(tiered(value, rates.jkm_tiers) / months))


def placement_amount(months: int, rates: PmiRates) -> Decimal:
    """JKK and JKM for a placement contract of `months`: the longest package the contract covers plus each
    month beyond it; a contract shorter than every package pays the shortest one."""
    covered = [p for p in rates.placement if p.months <= months]
    if not covered:
        return rates.placement[0].amount
    package = covered[-1]
    return package.amount + (months - package.months) * rates.extension_per_month


def _pmi(terms: ContributionTerms, programs: frozenset[Program], on: date, table: RateTable, ledger: _Ledger) -> None:
    if not terms.contract_months:
        raise IncompleteTermsError("PMI needs the placement contract length")
    rates = in_force(table.pmi, on, "PMI")
    payer = funding_payer(terms.funding_source)
    months = terms.contract_months
    monthly = _rupiah((rates.pre_departure + placement_amount(months, rates)) / months)
    jkk = _rupiah(_percent_of(Decimal(monthly), rates.jkk_share))
    if Program.JKK in programs:
        ledger.add(Program.JKK, payer, jkk)
    if Program.JKM in programs:
        ledger.add(Program.JKM, payer, monthly - jkk)
    if Program.JHT in programs:
        ledger.add(Program.JHT, payer, _rupiah(rates.jht_amount))
