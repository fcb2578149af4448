"""The rate file (`rates.toml` beside this module): every figure a contribution or a rule needs, validated.

Each rate has versions, each with the date it takes effect and the regulation it comes from; `in_force` picks
the version of a date. The program table (which programs a segment must, may or cannot join) and the policy
switches live in the same file. Nothing here computes a contribution: that is `contributions`.
"""

from __future__ import annotations

import itertools
import tomllib
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shared.events import EmployerSize, Program, RiskLevel, Segment

if TYPE_CHECKING:
    from collections.abc import Sequence

RATES_FILE = "rates.toml"


class RateNotInForceError(LookupError):
    """No version of a rate was in force on the date asked for."""


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


def in_force(versions: Sequence[V], on: date, what: str) -> V:
    """The version of a rate in force on `on` (`what` names the rate in the error)."""
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
        return in_force(self.bpu, on, "BPU")

    def in_force_for(self, segment: Segment, programs: Sequence[Program], on: date) -> bool:
        """Whether every rate these terms need has a version in force on `on`."""
        try:
            if segment == Segment.PU:
                in_force(self.pu.jkk, on, "JKK")
                in_force(self.pu.jkm, on, "JKM")
                if Program.JHT in programs:
                    in_force(self.pu.jht, on, "JHT")
                if Program.JP in programs:
                    in_force(self.pu.jp, on, "JP")
                    in_force(self.pu.jp_wage_ceiling, on, "JP wage ceiling")
                if Program.JKP in programs:
                    in_force(self.pu.jkp, on, "JKP")
            elif segment == Segment.BPU:
                in_force(self.bpu, on, "BPU")
            elif segment == Segment.JAKON:
                in_force(self.jakon, on, "JAKON")
            else:
                in_force(self.pmi, on, "PMI")
        except RateNotInForceError:
            return False
        return True


@cache
def load_rate_table() -> RateTable:
    """The packaged rate file, read once per process."""
    text = resources.files("services.registration.domain").joinpath(RATES_FILE).read_text(encoding="utf-8")
    return RateTable.from_toml(text)
