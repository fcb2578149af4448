"""Monthly contributions (iuran): how much, for which program, and who pays it.

Every figure lives in `rates.toml` beside this module, each with its effective date and regulation; this
module holds only the arithmetic. Amounts are computed with `Decimal` and each line (one program, one payer)
is rounded to whole Rupiah, half up, so that `by_program`, `by_payer` and `total` add up exactly.

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

import itertools
import tomllib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.events import (
    Contributions,
    Employer,
    EmployerSize,
    FundingSource,
    Payer,
    Program,
    RiskLevel,
    Segment,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

RATES_FILE = "rates.toml"
_HUNDRED = Decimal(100)
_ONE = Decimal(1)


class RateNotInForceError(LookupError):
    """No version of a rate was in force on the date asked for."""


class IncompleteTermsError(ValueError):
    """The terms lack a figure the contribution is computed from (the rules would have rejected them)."""


# --- The rate file -----------------------------------------------------------------------------------------

Percent = Annotated[Decimal, Field(ge=0, le=100)]
Amount = Annotated[Decimal, Field(ge=0)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RateVersion(_Model):
    effective_from: date
    regulation: str = Field(min_length=1)
    unverified: tuple[str, ...] = ()
    note: str | None = None


class JkkRates(RateVersion):
    """JKK for PU, percent of the wage by the workplace's risk level."""

    very_low: Percent
    low: Percent
    medium: Percent
    high: Percent
    very_high: Percent

    def percent(self, risk: RiskLevel) -> Decimal:
        rates: dict[RiskLevel, Decimal] = {
            RiskLevel.VERY_LOW: self.very_low,
            RiskLevel.LOW: self.low,
            RiskLevel.MEDIUM: self.medium,
            RiskLevel.HIGH: self.high,
            RiskLevel.VERY_HIGH: self.very_high,
        }
        return rates[risk]


class SharedRate(RateVersion):
    """A PU rate split between employer and worker, percent of the wage."""

    employer: Percent
    worker: Percent


class WageCeiling(RateVersion):
    amount: Amount


class JkpRates(RateVersion):
    central_government: Percent
    from_jkk: Percent
    from_jkm: Percent
    wage_cap: Amount


class BpuRates(RateVersion):
    minimum_declared_income: Amount
    jkk: Percent
    jkm_amount: Amount
    jht: Percent


class Tier(_Model):
    over: Amount
    percent: Percent


def _tiers(tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
    if not tiers or tiers[0].over != 0:
        raise ValueError("the first tier must start at 0")
    if any(a.over >= b.over for a, b in itertools.pairwise(tiers)):
        raise ValueError("tiers must be listed by ascending `over`")
    return tiers


Tiers = Annotated[tuple[Tier, ...], AfterValidator(_tiers)]


class JakonRates(RateVersion):
    jkk_tiers: Tiers
    jkm_tiers: Tiers


class Package(_Model):
    months: int = Field(ge=1)
    amount: Amount


def _packages(packages: tuple[Package, ...]) -> tuple[Package, ...]:
    if not packages:
        raise ValueError("at least one placement package is needed")
    return tuple(sorted(packages, key=lambda p: p.months))


class PmiRates(RateVersion):
    pre_departure: Amount
    placement: Annotated[tuple[Package, ...], AfterValidator(_packages)]
    extension_per_month: Amount
    jkk_share: Percent
    jht_amount: Amount


V = TypeVar("V", bound=RateVersion)


def _chronological(versions: tuple[V, ...]) -> tuple[V, ...]:
    if not versions:
        raise ValueError("at least one version is needed")
    ordered = tuple(sorted(versions, key=lambda v: v.effective_from))
    dates = [v.effective_from for v in ordered]
    if len(set(dates)) != len(dates):
        raise ValueError("two versions share an effective_from date")
    return ordered


def _in_force(versions: Sequence[V], on: date, what: str) -> V:
    for version in reversed(versions):  # a handful of versions: a scan beats a bisect in clarity
        if version.effective_from <= on:
            return version
    raise RateNotInForceError(f"no {what} rate in force on {on.isoformat()}")


class PuRates(_Model):
    jkk: Annotated[tuple[JkkRates, ...], AfterValidator(_chronological)]
    jkm: Annotated[tuple[SharedRate, ...], AfterValidator(_chronological)]
    jht: Annotated[tuple[SharedRate, ...], AfterValidator(_chronological)]
    jp: Annotated[tuple[SharedRate, ...], AfterValidator(_chronological)]
    jp_wage_ceiling: Annotated[tuple[WageCeiling, ...], AfterValidator(_chronological)]
    jkp: Annotated[tuple[JkpRates, ...], AfterValidator(_chronological)]


class ProgramRule(_Model):
    """Which programs a segment (and, for PU, an employer size) must join and may join; the rest it cannot."""

    mandatory: frozenset[Program]
    optional: frozenset[Program] = frozenset()

    @property
    def offered(self) -> frozenset[Program]:
        return self.mandatory | self.optional


class PuProgramRules(_Model):
    micro: ProgramRule
    small: ProgramRule
    medium: ProgramRule
    large: ProgramRule

    def for_size(self, size: EmployerSize) -> ProgramRule:
        rules: dict[EmployerSize, ProgramRule] = {
            EmployerSize.MICRO: self.micro,
            EmployerSize.SMALL: self.small,
            EmployerSize.MEDIUM: self.medium,
            EmployerSize.LARGE: self.large,
        }
        return rules[size]


class ProgramTable(_Model):
    """Perpres 109/2013 art. 6: mandatory, optional and (by omission) not offered programs."""

    regulation: str
    unverified: tuple[str, ...] = ()
    pu: PuProgramRules
    bpu: ProgramRule
    jakon: ProgramRule
    pmi: ProgramRule

    def rule(self, segment: Segment, employer_size: EmployerSize | None = None) -> ProgramRule:
        """The rule for a segment. For PU without a known employer size, only what holds for every size:
        the programs mandatory for all sizes, and everything offered to any size."""
        if segment == Segment.PU:
            if employer_size is not None:
                return self.pu.for_size(employer_size)
            sizes = [self.pu.for_size(size) for size in EmployerSize]
            mandatory = frozenset.intersection(*(r.mandatory for r in sizes))
            offered = frozenset.union(*(r.offered for r in sizes))
            return ProgramRule(mandatory=mandatory, optional=offered - mandatory)
        return {Segment.BPU: self.bpu, Segment.JAKON: self.jakon, Segment.PMI: self.pmi}[segment]


class Policy(_Model):
    apbd_pays_worker_share: bool = False


class RateTable(_Model):
    """The whole rate file, validated: a typo in a key or a negative rate fails at load, not at month end."""

    version: str = Field(min_length=1)
    pu: PuRates
    bpu: Annotated[tuple[BpuRates, ...], AfterValidator(_chronological)]
    jakon: Annotated[tuple[JakonRates, ...], AfterValidator(_chronological)]
    pmi: Annotated[tuple[PmiRates, ...], AfterValidator(_chronological)]
    programs: ProgramTable
    policy: Policy = Policy()

    @classmethod
    def from_toml(cls, text: str) -> RateTable:
        """Parse a rate file; numbers become exact decimals (0.24 stays 0.24, not 0.2399...)."""
        return cls.model_validate(tomllib.loads(text, parse_float=Decimal))

    def bpu_in_force(self, on: date) -> BpuRates:
        return _in_force(self.bpu, on, "BPU")

    def in_force_for(self, segment: Segment, programs: Sequence[Program], on: date) -> bool:
        """Whether every rate these terms need has a version in force on `on`."""
        try:
            if segment == Segment.PU:
                _in_force(self.pu.jkk, on, "JKK")
                _in_force(self.pu.jkm, on, "JKM")
                if Program.JHT in programs:
                    _in_force(self.pu.jht, on, "JHT")
                if Program.JP in programs:
                    _in_force(self.pu.jp, on, "JP")
                    _in_force(self.pu.jp_wage_ceiling, on, "JP wage ceiling")
                if Program.JKP in programs:
                    _in_force(self.pu.jkp, on, "JKP")
            elif segment == Segment.BPU:
                _in_force(self.bpu, on, "BPU")
            elif segment == Segment.JAKON:
                _in_force(self.jakon, on, "JAKON")
            else:
                _in_force(self.pmi, on, "PMI")
        except RateNotInForceError:
            return False
        return True


@cache
def load_rate_table() -> RateTable:
    """The packaged rate file, read once per process."""
    text = resources.files("services.registration.domain").joinpath(RATES_FILE).read_text(encoding="utf-8")
    return RateTable.from_toml(text)


# --- The calculation ---------------------------------------------------------------------------------------


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

    jkk = _rupiah(_percent_of(wage, _in_force(pu.jkk, on, "JKK").percent(terms.employer.jkk_risk)))
    jkm = _rupiah(_percent_of(wage, _in_force(pu.jkm, on, "JKM").employer))
    if Program.JKP in programs:
        jkp = _in_force(pu.jkp, on, "JKP")
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
        jht = _in_force(pu.jht, on, "JHT")
        ledger.add(Program.JHT, employer, _rupiah(_percent_of(wage, jht.employer)))
        ledger.add(Program.JHT, worker, _rupiah(_percent_of(wage, jht.worker)))
    if Program.JP in programs:
        jp = _in_force(pu.jp, on, "JP")
        base = min(wage, _in_force(pu.jp_wage_ceiling, on, "JP wage ceiling").amount)
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
    rates = _in_force(table.jakon, on, "JAKON")
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
    rates = _in_force(table.pmi, on, "PMI")
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
