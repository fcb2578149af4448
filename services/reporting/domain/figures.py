"""Figures: a region's aggregate as published and served, the barometer's ranks, small-cell suppression.

Built from the read model and the coverage policy at one instant. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from services.reporting.domain.budgets import budget_figures
from services.reporting.domain.counters import (
    ACTIVE,
    AGE,
    CATEGORY,
    FLOWS,
    FUNDING,
    PROGRAM,
    REJECTION_PARTNER,
    REJECTION_REASON,
    REJECTIONS,
    SEGMENT,
    SEX,
    Counters,
    business_date,
    contribution_key,
    day_period,
    flow_key,
    level_of,
    month_period,
    parent_of,
)
from shared.events import (
    AgeBand,
    Category,
    Coverage,
    Figure,
    FundingSource,
    Payer,
    Program,
    RegionAggregate,
    Segment,
    Sex,
)
from shared.events.aggregates import BudgetFigures
from shared.regions import NATIONAL_CODE, Level

if TYPE_CHECKING:
    from datetime import datetime

    from services.reporting.domain.budgets import BudgetBook, CoverageCost
    from services.reporting.domain.coverage import CoveragePolicy
    from services.reporting.domain.read_model import ReadModel

MONTHS_PER_YEAR = 12

# The counter keys every aggregate reads, spelled once: building them per region (an f-string and an enum
# `.value`, itself a property, per key) was half of `_aggregate`, which reporting runs for every region it
# publishes, hundreds a second.
_BREAKDOWNS: dict[str, tuple[tuple[str, str], ...]] = {
    prefix: tuple((v.value, f"{prefix}/{v.value}") for v in values)
    for prefix, values in (
        (SEGMENT, Segment),
        (CATEGORY, Category),
        (PROGRAM, Program),
        (FUNDING, FundingSource),
        (SEX, Sex),
        (AGE, AgeBand),
    )
}
_PAYERS: tuple[str, ...] = tuple(p.value for p in Payer)
# Per funding source: its value, its active count's key, and per payer (value, amount key, contributors key).
_CONTRIBUTIONS: tuple[tuple[str, str, tuple[tuple[str, str, str], ...]], ...] = tuple(
    (
        source.value,
        f"{FUNDING}/{source.value}",
        tuple(
            (payer.value, contribution_key(source, payer), contribution_key(source, payer, contributors=True))
            for payer in Payer
        ),
    )
    for source in FundingSource
)


class Fingerprint(NamedTuple):
    """A region's rank, and everything else its figures depend on (`Figures.fingerprint`)."""

    rank: tuple[int, int] | None
    figures: tuple[Any, ...]


# --- Rankings (the barometer) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """A region in the barometer: ordered by coverage ratio, then active participants, then code; regions
    without participants last. Regencies/cities by default; provinces are ranked only on request (a
    province has no rank within a province, and its kind is neither kota nor kabupaten)."""

    region_code: str
    region_name: str
    province_code: str
    kota: bool
    active: int
    coverage: Coverage
    rank_national: int
    rank_in_province: int  # a province is ranked among provinces only: its rank_national
    level: Level = "regency/city"


def _by_coverage(model: ReadModel, policy: CoveragePolicy, level: Level) -> list[tuple[str, int, Coverage]]:
    """Every region of a level with a denominator, with or without participants, in barometer order.

    `active == 0` leads the key although a zero count already has the lowest ratio: it states the rule (no
    data last) instead of leaving it to a property of the rounding."""
    codes = {r.code for r in policy.regions.at_level(level)}
    codes |= {c for c in model.codes() if level_of(c) == level}
    rows: list[tuple[str, int, Coverage]] = []
    for code in codes:
        active = model.counters(code).get(ACTIVE, 0)
        coverage = policy.coverage(code, active)
        if coverage is not None:
            rows.append((code, active, coverage))
    rows.sort(key=lambda row: (row[1] == 0, -row[2].ratio, -row[1], row[0]))
    return rows


def rank_provinces(model: ReadModel, policy: CoveragePolicy) -> list[Ranked]:
    """The provinces in barometer order (not part of the published snapshots: only the API asks for it)."""
    ranked = []
    for position, (code, active, coverage) in enumerate(_by_coverage(model, policy, "province"), start=1):
        region = policy.regions.get(code)
        ranked.append(
            Ranked(
                region_code=code,
                region_name=region.name if region else code,
                province_code=code,
                kota=False,
                active=active,
                coverage=coverage,
                rank_national=position,
                rank_in_province=position,
                level="province",
            )
        )
    return ranked


def rank_regencies(model: ReadModel, policy: CoveragePolicy) -> dict[str, Ranked]:
    """Every regency/city with a denominator, with or without participants (those rank last)."""
    rows = _by_coverage(model, policy, "regency/city")
    in_province: dict[str, int] = {}
    ranked: dict[str, Ranked] = {}
    for position, (code, active, coverage) in enumerate(rows, start=1):
        province = code[:2]
        in_province[province] = in_province.get(province, 0) + 1
        region = policy.regions.get(code)
        ranked[code] = Ranked(
            region_code=code,
            region_name=region.name if region else code,
            province_code=province,
            kota=int(code[3:5]) >= 71,  # Kemendagri: regency/city digits 71-99 are kota
            active=active,
            coverage=coverage,
            rank_national=position,
            rank_in_province=in_province[province],
        )
    return ranked


# --- Snapshots ----------------------------------------------------------------------------------------------


def suppress(value: int, below: int) -> Figure:
    """Small-cell suppression: a count 1..k-1 is shown as `<k`; zero is shown (it reveals no one)."""
    return f"<{below}" if 0 < value < below else value


@dataclass(frozen=True)
class Budgets:
    """The budgets' latest positions and the assumptions behind the cost of full coverage."""

    book: BudgetBook
    cost: CoverageCost


@dataclass(frozen=True)
class Figures:
    """The read model at one instant, as downstream consumers see it (topic and HTTP API alike)."""

    model: ReadModel
    policy: CoveragePolicy
    as_of: datetime
    suppress_below: int = 0
    budgets: Budgets | None = None
    ranks: dict[str, Ranked] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranks", rank_regencies(self.model, self.policy))

    def region(self, code: str) -> RegionAggregate:
        counters, coverage, rank = self._inputs(code)
        return self._aggregate(code, counters, coverage, rank, self.budgets_of(code))

    def budgets_of(self, code: str) -> list[BudgetFigures]:
        """The region's own budgets (a budget is shown at its region only, never summed into a parent's)."""
        if self.budgets is None:
            return []
        book, cost = self.budgets.book, self.budgets.cost
        return [budget_figures(r, self.policy, cost, self.as_of) for r in book.of_region(code)]

    def budget_list(self, region: str | None = None, fiscal_year: int | None = None) -> list[BudgetFigures]:
        """Every budget, or one region's, or one fiscal year's, by region, year and source."""
        if self.budgets is None:
            return []
        book, cost = self.budgets.book, self.budgets.cost
        return [budget_figures(r, self.policy, cost, self.as_of) for r in book.matching(region, fiscal_year)]

    def with_budgets(self) -> set[str]:
        return self.budgets.book.regions() if self.budgets is not None else set()

    def fingerprint(self, code: str) -> Fingerprint:
        """What a region's published figures depend on besides `as_of` and the offsets: equal fingerprints
        mean equal figures, so an unchanged region is recognised without building its aggregate."""
        counters, coverage, rank = self._inputs(code)
        return Fingerprint(
            (rank.rank_in_province, rank.rank_national) if rank else None,
            (
                business_date(self.as_of),
                coverage,
                tuple(sorted(counters.items())),
                # A budget's figures change with its position (sequence) and the WIB date (above) only.
                tuple((r.key, r.position.sequence) for r in self.budgets.book.of_region(code)) if self.budgets else (),
            ),
        )

    def reranked(self, previous: RegionAggregate) -> RegionAggregate:
        """A region's aggregate when only its rank moved since `previous` (equal `Fingerprint.figures`): the
        same figures, this instant's ranks and offsets. One regency's coverage moving re-ranks every regency
        between its old and new place, so most regencies a round publishes changed their rank only."""
        rank = self.ranks.get(previous.region_code)
        return previous.model_copy(
            update={
                "as_of": self.as_of,
                "source_offsets": dict(self.model.offsets),
                "rank_in_province": rank.rank_in_province if rank else None,
                "rank_national": rank.rank_national if rank else None,
            }
        )

    def _inputs(self, code: str) -> tuple[Counters, Coverage | None, Ranked | None]:
        counters = self.model.counters(code)
        rank = self.ranks.get(code)
        coverage = rank.coverage if rank else self.policy.coverage(code, counters.get(ACTIVE, 0))
        return counters, coverage, rank

    def unassigned(self, code: str) -> RegionAggregate:
        """The part of a region's figures counted at its own level (children + this = the region)."""
        return self._aggregate(code, self.model.own_level(code), None, None)

    def children(self, code: str) -> list[RegionAggregate]:
        """Children from the reference data (with or without data) and any child code seen in data."""
        known = {r.code for r in self.policy.regions.children(code)}
        return [self.region(child) for child in sorted(known | self.model.children_with_data(code))]

    def ranking(self, scope: str, kind: Literal["kota", "kabupaten"] | None = None) -> list[Ranked]:
        """`national` or a province code; optionally only kota (cities) or only kabupaten."""
        rows = [
            r
            for r in self.ranks.values()
            if scope in {"national", r.province_code} and (kind is None or r.kota == (kind == "kota"))
        ]
        order = "rank_national" if scope == "national" else "rank_in_province"
        return sorted(rows, key=lambda r: getattr(r, order))

    def _aggregate(
        self,
        code: str,
        counters: Counters,
        coverage: Coverage | None,
        rank: Ranked | None,
        budgets: list[BudgetFigures] | None = None,
    ) -> RegionAggregate:
        k = self.suppress_below

        def count(key: str) -> Figure:
            return suppress(counters.get(key, 0), k)

        def breakdown(prefix: str) -> dict[str, Figure]:
            return {value: suppress(counters.get(key, 0), k) for value, key in _BREAKDOWNS[prefix]}

        def prefixed(prefix: str) -> dict[str, Figure]:
            start = prefix + "/"
            return {key[len(start) :]: suppress(n, k) for key, n in sorted(_starting(counters, start))}

        day = business_date(self.as_of)
        flows = {
            flow: {
                "today": count(flow_key(flow, day_period(day))),
                "this_month": count(flow_key(flow, month_period(day))),
                "total": count(flow_key(flow)),
            }
            for flow in FLOWS
        }
        money = _contributions(counters, k)
        region = self.policy.regions.get(code)
        # Built from counters by this module, field by field of the contract's types: validating a few
        # thousand aggregates a second again (nested dicts of every breakdown) was a fifth of reporting's CPU.
        # tests/unit/reporting check that what is built validates.
        return RegionAggregate.model_construct(
            region_code=code,
            region_name=region.name if region else ("Indonesia" if code == NATIONAL_CODE else code),
            level=level_of(code),
            parent_code=parent_of(code),
            as_of=self.as_of,
            business_date=day,
            source_offsets=dict(self.model.offsets),
            suppressed_below=k or None,
            active=count(ACTIVE),
            enrollments=flows["enrollments"],
            terminations=flows["terminations"],
            reactivations=flows["reactivations"],
            migrations=flows["migrations"],
            holds=flows["holds"],
            by_segment=breakdown(SEGMENT),
            by_category=breakdown(CATEGORY),
            by_program=breakdown(PROGRAM),
            by_funding_source=breakdown(FUNDING),
            by_sex=breakdown(SEX),
            by_age_band=breakdown(AGE),
            monthly_contributions_by_payer=money.by_payer,
            monthly_contributions_by_funding_source=money.by_funding_source,
            monthly_contributions_by_funding_source_and_payer=money.crosstab,
            annual_contributions_by_funding_source=money.annual,
            rejections=count(REJECTIONS),
            rejections_by_reason=prefixed(REJECTION_REASON),
            rejections_by_partner=prefixed(REJECTION_PARTNER),
            coverage=coverage,
            rank_in_province=rank.rank_in_province if rank else None,
            rank_national=rank.rank_national if rank else None,
            budgets=budgets or [],
        )


def _starting(counters: Counters, start: str) -> list[tuple[str, int]]:
    """The counters under a prefix; sorted by the caller, which sorts these few rather than all of them."""
    return [(key, n) for key, n in counters.items() if key.startswith(start)]


@dataclass(frozen=True)
class _Money:
    by_payer: dict[str, Figure]
    by_funding_source: dict[str, Figure]
    crosstab: dict[str, dict[str, Figure]]
    annual: dict[str, Figure]


def _contributions(counters: Counters, k: int) -> _Money:
    """Rupiah per month by payer, by funding source and both; a sum behind fewer than k people is hidden."""

    def hide(amount: int, people: int) -> Figure:
        return f"<{k}" if 0 < people < k else amount

    by_payer: dict[str, tuple[int, int]] = dict.fromkeys(_PAYERS, (0, 0))
    by_source: dict[str, tuple[int, int]] = {}
    crosstab: dict[str, dict[str, Figure]] = {}
    for source, active_key, payers in _CONTRIBUTIONS:
        amount_of_source = 0
        row: dict[str, Figure] = {}
        for payer, amount_key, people_key in payers:
            amount = counters.get(amount_key, 0)
            people = counters.get(people_key, 0)
            row[payer] = hide(amount, people)
            total, n = by_payer[payer]
            by_payer[payer] = (total + amount, n + people)
            amount_of_source += amount
        crosstab[source] = row
        by_source[source] = (amount_of_source, counters.get(active_key, 0))
    return _Money(
        by_payer={p: hide(amount, n) for p, (amount, n) in by_payer.items()},
        by_funding_source={s: hide(amount, n) for s, (amount, n) in by_source.items()},
        crosstab=crosstab,
        annual={s: hide(amount * MONTHS_PER_YEAR, n) for s, (amount, n) in by_source.items()},
    )
