"""Figures: the read model over every partition's leaves, coverage, rankings, snapshots and suppression.

The read model keeps, for every region that has data, the sum of the counters of all leaves at or below it,
over all source partitions; it is changed only by the net change of a durable batch (or of a partition
reloaded from the store), so what is shown is what is stored. Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from services.reporting.domain import (
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
    add_into,
    business_date,
    contribution_key,
    day_period,
    flow_key,
    level_of,
    lineage,
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
from shared.regions import NATIONAL_CODE

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from datetime import datetime
    from enum import StrEnum

    from shared.regions import Regions

MONTHS_PER_YEAR = 12


class ReadModel:
    """Counters per region at every level, summed over all partitions, and which regions changed."""

    def __init__(self) -> None:
        self._totals: dict[str, Counters] = {}
        self._children: dict[str, set[str]] = {}
        self.dirty: set[str] = set()
        self.offsets: dict[str, int] = {}  # `topic:partition` -> next offset reflected

    def add(self, leaf_deltas: Mapping[str, Mapping[str, int]], sign: int = 1) -> None:
        for leaf, delta in leaf_deltas.items():
            if not delta:
                continue
            for code in lineage(leaf):
                if code not in self._totals:
                    self._totals[code] = {}
                    parent = parent_of(code)
                    if parent is not None:
                        self._children.setdefault(parent, set()).add(code)
                add_into(self._totals[code], delta, sign)
                self.dirty.add(code)  # published once more (with zeros, if it has just emptied)
                if not self._totals[code]:
                    self._forget(code)

    def _forget(self, code: str) -> None:
        """A region whose every counter is back to zero has no data any more, as if never seen."""
        del self._totals[code]
        parent = parent_of(code)
        if parent is not None:
            self._children.get(parent, set()).discard(code)

    def set_offset(self, topic: str, partition: int, next_offset: int) -> None:
        self.offsets[f"{topic}:{partition}"] = next_offset

    def counters(self, code: str) -> Counters:
        return self._totals.get(code, {})

    def codes(self) -> set[str]:
        """Every region that has (or had) data, with all its ancestors."""
        return set(self._totals)

    def children_with_data(self, code: str) -> set[str]:
        return set(self._children.get(code, ()))

    def own_level(self, code: str) -> Counters:
        """What is counted at this region itself and at none of its children (no kecamatan, no region)."""
        own = dict(self.counters(code))
        for child in self._children.get(code, ()):
            add_into(own, self.counters(child), -1)
        return own

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty


# --- Coverage -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Official figures an operator loads for a region: its workforce and/or its coverage target."""

    region_code: str
    workforce: int | None = None
    target_ratio: float | None = None


class TargetStore(Protocol):
    async def load_targets(self) -> dict[str, Target]: ...


@dataclass(frozen=True)
class CoveragePolicy:
    """Denominator: the official workforce if loaded, else population x working-age share x participation."""

    regions: Regions
    working_age_share: float
    labour_force_participation: float
    default_target_ratio: float | None = None
    targets: Mapping[str, Target] = field(default_factory=dict)

    def denominator(self, code: str) -> tuple[int, Literal["estimate", "official"]] | None:
        target = self.targets.get(code)
        if target is not None and target.workforce is not None:
            return target.workforce, "official"
        population = self.regions.population(code)
        if population is None:
            return None  # kecamatan: population.csv stops at regency/city level
        return round(population.total * self.working_age_share * self.labour_force_participation), "estimate"

    def coverage(self, code: str, active: int) -> Coverage | None:
        denominator = self.denominator(code)
        if denominator is None or denominator[0] <= 0:
            return None
        workforce, source = denominator
        target = self.targets.get(code)
        target_ratio = (
            target.target_ratio if target is not None and target.target_ratio is not None else self.default_target_ratio
        )
        distance = None
        if target_ratio is not None:
            # round() first: 0.7 * 10 is 7.000000000000001 in binary floating point.
            distance = max(0, math.ceil(round(target_ratio * workforce, 6)) - active)
        return Coverage(
            denominator=workforce,
            denominator_source=source,
            ratio=round(active / workforce, 6),
            target_ratio=target_ratio,
            distance_to_target=distance,
        )


# --- Rankings (the barometer) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ranked:
    """A regency/city in the barometer: ordered by coverage ratio, then active participants, then code."""

    region_code: str
    region_name: str
    province_code: str
    kota: bool
    active: int
    coverage: Coverage
    rank_national: int
    rank_in_province: int

    def as_json(self) -> dict[str, Any]:
        return {
            "region_code": self.region_code,
            "region_name": self.region_name,
            "province_code": self.province_code,
            "kind": "kota" if self.kota else "kabupaten",
            "active": self.active,
            "coverage": self.coverage.model_dump(mode="json"),
            "rank_national": self.rank_national,
            "rank_in_province": self.rank_in_province,
        }


def rank_regencies(model: ReadModel, policy: CoveragePolicy) -> dict[str, Ranked]:
    """Every regency/city with a denominator, with or without participants (those rank last)."""
    codes = {r.code for r in policy.regions.at_level("regency/city")}
    codes |= {c for c in model.codes() if level_of(c) == "regency/city"}
    rows: list[tuple[str, int, Coverage]] = []
    for code in codes:
        active = model.counters(code).get(ACTIVE, 0)
        coverage = policy.coverage(code, active)
        if coverage is not None:
            rows.append((code, active, coverage))
    rows.sort(key=lambda row: (-row[2].ratio, -row[1], row[0]))
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
class Figures:
    """The read model at one instant, as downstream consumers see it (topic and HTTP API alike)."""

    model: ReadModel
    policy: CoveragePolicy
    as_of: datetime
    suppress_below: int = 0
    ranks: dict[str, Ranked] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranks", rank_regencies(self.model, self.policy))

    def region(self, code: str) -> RegionAggregate:
        counters, coverage, rank = self._inputs(code)
        return self._aggregate(code, counters, coverage, rank)

    def fingerprint(self, code: str) -> tuple[Any, ...]:
        """What a region's published figures depend on besides `as_of` and the offsets: equal fingerprints
        mean equal figures, so an unchanged region is recognised without building its aggregate."""
        counters, coverage, rank = self._inputs(code)
        return (
            business_date(self.as_of),
            coverage,
            (rank.rank_in_province, rank.rank_national) if rank else None,
            tuple(sorted(counters.items())),
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
        self, code: str, counters: Counters, coverage: Coverage | None, rank: Ranked | None
    ) -> RegionAggregate:
        k = self.suppress_below

        def count(key: str) -> Figure:
            return suppress(counters.get(key, 0), k)

        def breakdown(prefix: str, values: type[StrEnum]) -> dict[str, Figure]:
            return {v.value: count(f"{prefix}/{v.value}") for v in values}

        def prefixed(prefix: str) -> dict[str, Figure]:
            start = prefix + "/"
            return {key[len(start) :]: suppress(n, k) for key, n in sorted(counters.items()) if key.startswith(start)}

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
            by_segment=breakdown(SEGMENT, Segment),
            by_category=breakdown(CATEGORY, Category),
            by_program=breakdown(PROGRAM, Program),
            by_funding_source=breakdown(FUNDING, FundingSource),
            by_sex=breakdown(SEX, Sex),
            by_age_band=breakdown(AGE, AgeBand),
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
        )


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

    by_payer: dict[str, tuple[int, int]] = {}
    by_source: dict[str, tuple[int, int]] = {}
    crosstab: dict[str, dict[str, Figure]] = {}
    for source in FundingSource:
        amount_of_source = 0
        for payer in Payer:
            amount = counters.get(contribution_key(source, payer), 0)
            people = counters.get(contribution_key(source, payer, contributors=True), 0)
            crosstab.setdefault(source.value, {})[payer.value] = hide(amount, people)
            total, n = by_payer.get(payer.value, (0, 0))
            by_payer[payer.value] = (total + amount, n + people)
            amount_of_source += amount
        by_source[source.value] = (amount_of_source, counters.get(f"{FUNDING}/{source.value}", 0))
    return _Money(
        by_payer={p: hide(amount, n) for p, (amount, n) in by_payer.items()},
        by_funding_source={s: hide(amount, n) for s, (amount, n) in by_source.items()},
        crosstab=crosstab,
        annual={s: hide(amount * MONTHS_PER_YEAR, n) for s, (amount, n) in by_source.items()},
    )


# --- CSV export ---------------------------------------------------------------------------------------------


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{key}": value for key, value in values.items()}


def csv_row(aggregate: RegionAggregate) -> dict[str, Any]:
    coverage = aggregate.coverage
    return {
        "region_code": aggregate.region_code,
        "region_name": aggregate.region_name,
        "level": aggregate.level,
        "parent_code": aggregate.parent_code or "",
        "as_of": aggregate.as_of.isoformat(),
        "business_date": aggregate.business_date.isoformat() if aggregate.business_date else "",
        "active": aggregate.active,
        **_flat("enrollments", aggregate.enrollments),
        **_flat("terminations", aggregate.terminations),
        **_flat("reactivations", aggregate.reactivations),
        **_flat("segment", aggregate.by_segment),
        **_flat("category", aggregate.by_category),
        **_flat("program", aggregate.by_program),
        **_flat("funding_source", aggregate.by_funding_source),
        **_flat("sex", aggregate.by_sex),
        **_flat("age_band", aggregate.by_age_band),
        **_flat("monthly_contributions_payer", aggregate.monthly_contributions_by_payer),
        **_flat("monthly_contributions_funding_source", aggregate.monthly_contributions_by_funding_source),
        **_flat("annual_contributions_funding_source", aggregate.annual_contributions_by_funding_source),
        "rejections": aggregate.rejections,
        "coverage_denominator": coverage.denominator if coverage else "",
        "coverage_denominator_source": coverage.denominator_source if coverage else "",
        "coverage_ratio": coverage.ratio if coverage else "",
        "coverage_target_ratio": coverage.target_ratio if coverage and coverage.target_ratio is not None else "",
        "coverage_distance_to_target": (
            coverage.distance_to_target if coverage and coverage.distance_to_target is not None else ""
        ),
        "rank_in_province": aggregate.rank_in_province or "",
        "rank_national": aggregate.rank_national or "",
    }


def to_csv(aggregates: Iterable[RegionAggregate]) -> str:
    rows = [csv_row(a) for a in aggregates]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


# --- Official figures file ----------------------------------------------------------------------------------


class TargetsFileError(ValueError):
    """Lines of an operator's targets file that cannot be used: every problem, in both languages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_targets(text: str, regions: Regions) -> list[Target]:
    """`region_code,workforce,target_ratio` (either figure may be blank; a ratio may be `0.6` or `60%`)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"region_code", "workforce", "target_ratio"} - set(reader.fieldnames or ())
    if missing:
        raise TargetsFileError([f"kolom tidak ada / missing columns: {', '.join(sorted(missing))}"])
    targets: list[Target] = []
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        try:
            targets.append(_target(row, regions))
        except ValueError as error:
            problems.append(f"baris {line} / line {line}: {error}")
    if problems:
        raise TargetsFileError(problems)
    return targets


def _target(row: Mapping[str, str | None], regions: Regions) -> Target:
    code = (row["region_code"] or "").strip()
    if code not in regions:
        raise ValueError(f"kode wilayah tidak dikenal / unknown region code {code!r}")
    workforce, ratio = _workforce(row["workforce"]), _ratio(row["target_ratio"])
    if workforce is None and ratio is None:
        raise ValueError("baris kosong / neither workforce nor target_ratio given")
    return Target(code, workforce, ratio)


def _workforce(raw: str | None) -> int | None:
    text = (raw or "").strip().replace("_", "")
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"angkatan kerja harus bilangan bulat positif / workforce must be a positive integer: {raw!r}")
    return int(text)


def _ratio(raw: str | None) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise ValueError(f"target harus di antara 0 dan 1 (atau 0-100%) / target must be in (0, 1] or %: {raw!r}")
    return value
