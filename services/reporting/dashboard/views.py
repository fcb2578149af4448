"""A dashboard page as data: the headline figures, the sections of tables (each drawn as a chart in the
browser), the breadcrumbs and the figures' provenance (as-of time, source offsets, suppression).

National -> province -> regency/city -> kecamatan: each level shows what a reader at that level looks for
(the national map and barometers; a province's regencies/cities ranked; a city's kecamatan). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.reporting.dashboard import tables
from services.reporting.dashboard.budget_tables import budget_tables
from services.reporting.dashboard.i18n import LEVELS, POPULATION_SOURCE, WIB
from services.reporting.domain.counters import level_of, lineage
from services.reporting.domain.figures import rank_provinces

if TYPE_CHECKING:
    from services.reporting.dashboard.i18n import Words
    from services.reporting.domain.figures import Figures, Ranked
    from shared.events import RegionAggregate


@dataclass(frozen=True)
class Headline:
    id: str
    label: str
    value: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    id: str
    title: str
    tables: tuple[tables.Table, ...]


@dataclass(frozen=True)
class Page:
    code: str
    name: str
    level: str
    crumbs: tuple[tuple[str, str], ...]  # (href, name) from the nation down to the parent
    headlines: tuple[Headline, ...]
    sections: tuple[Section, ...]
    as_of: str
    when: str  # the as-of moment alone (the "not current since" banner names it)
    offsets: tuple[tuple[str, str], ...]  # (`partition`, next offset) in partition order
    offsets_summary: str
    suppressed_below: int | None


def known(figures: Figures, code: str) -> bool:
    """The API's rule (http.py): a region of the reference data, or a code seen in the data."""
    return code in figures.policy.regions or code in figures.model.codes()


def version(figures: Figures) -> str:
    """What the figures depend on besides the clock: equal versions, equal pages (the live poll's check).

    The offsets move with every write that reaches the read model; the WIB date turns `today`; the official
    figures change when an operator loads others; a budget's sequence moves with each of its positions.
    """
    offsets = ",".join(f"{key}={value}" for key, value in sorted(figures.model.offsets.items()))
    today = figures.as_of.astimezone(WIB).date().isoformat()
    targets = hash(frozenset(figures.policy.targets.items()))
    budgets = hash(frozenset(figures.budgets.book.sequences().items())) if figures.budgets is not None else 0
    return f"{today}|{targets:x}|{budgets:x}|{figures.suppress_below}|{offsets}"


def page(figures: Figures, code: str, w: Words) -> Page:
    aggregate = figures.region(code)
    provinces = rank_provinces(figures.model, figures.policy)
    k = figures.suppress_below
    offsets = sorted(figures.model.offsets.items(), key=lambda item: int(item[0].rsplit(":", 1)[1]))
    return Page(
        code=code,
        name=aggregate.region_name,
        level=w.label(LEVELS, aggregate.level),
        crumbs=_crumbs(figures, code),
        headlines=_headlines(w, figures, aggregate, provinces),
        sections=_sections(w, figures, aggregate, provinces),
        as_of=w("as_of", when=w.moment(figures.as_of)),
        when=w.moment(figures.as_of),
        offsets=tuple((key.rsplit(":", 1)[1], w.count(value)) for key, value in offsets),
        offsets_summary=w("offsets_summary", partitions=len(offsets), events=w.count(sum(v for _, v in offsets))),
        suppressed_below=k or None,
    )


def _crumbs(figures: Figures, code: str) -> tuple[tuple[str, str], ...]:
    names = []
    for ancestor in reversed(lineage(code)[1:]):
        region = figures.policy.regions.get(ancestor)
        names.append((tables.href(ancestor), region.name if region else ancestor))
    return tuple(names)


def _headlines(w: Words, figures: Figures, a: RegionAggregate, provinces: list[Ranked]) -> tuple[Headline, ...]:
    today = w("enrolled_today", count=w.count(a.enrollments.get("today", 0)))
    lines = [Headline("active", w("active"), w.count(a.active), (today,))]
    coverage = a.coverage
    if coverage is None:
        lines.append(Headline("coverage", w("coverage"), "–", (w("no_denominator"),)))
    else:
        policy = figures.policy
        source = (
            w("official")
            if coverage.denominator_source == "official"
            else w(
                "estimate",
                population=POPULATION_SOURCE[w.lang],
                share=w.decimal(policy.working_age_share),
                participation=w.decimal(policy.labour_force_participation),
            )
        )
        of = w("coverage_of", denominator=w.count(coverage.denominator))
        lines.append(Headline("coverage", w("coverage"), w.percent(coverage.ratio), (of, source)))
        target = w.percent(coverage.target_ratio) if coverage.target_ratio is not None else w("target_none")
        gap = (
            () if coverage.distance_to_target is None else (w("target_gap", gap=w.count(coverage.distance_to_target)),)
        )
        lines.append(Headline("target", w("target"), target, gap))
    rank = _rank(w, figures, a, provinces)
    if rank is not None:
        lines.append(rank)
    monthly = tables.apbd_monthly(a)
    yearly = monthly * 12 if isinstance(monthly, int) else monthly
    lines.append(
        Headline("apbd", w("apbd"), w.rupiah(monthly), (w("apbd_month"), w("apbd_year", amount=w.rupiah(yearly))))
    )
    return tuple(lines)


def _rank(w: Words, figures: Figures, a: RegionAggregate, provinces: list[Ranked]) -> Headline | None:
    if a.level == "province":
        mine = next((r for r in provinces if r.region_code == a.region_code), None)
        if mine is None:
            return None
        text = w("rank_province", rank=mine.rank_national, total=len(provinces))
        return Headline("rank", w("rank"), str(mine.rank_national), (text,))
    if a.level == "regency/city" and a.rank_national is not None:
        in_province = sum(1 for r in figures.ranks.values() if r.province_code == a.region_code[:2])
        return Headline(
            "rank",
            w("rank"),
            str(a.rank_national),
            (
                w("rank_national", rank=a.rank_national, total=len(figures.ranks)),
                w("rank_in_province", rank=a.rank_in_province, total=in_province),
            ),
        )
    return None


def _sections(w: Words, figures: Figures, a: RegionAggregate, provinces: list[Ranked]) -> tuple[Section, ...]:
    code, k = a.region_code, figures.suppress_below
    level = level_of(code)
    kota = tables.barometer_kota(w, figures.ranking("national", "kota"), figures, code)
    barometer: list[tables.Table] = []
    first: list[Section] = []
    if level == "national":
        first.append(Section("map", w("section_map"), (tables.provinces_map(w, figures, provinces),)))
    else:
        province = figures.policy.regions.get(code[:2])
        in_province = figures.ranking(code[:2])
        name = province.name if province else code[:2]
        barometer.append(tables.barometer_in_province(w, in_province, name, code, k))
    if level == "regency/city":
        first.append(Section("children", w("section_children"), (tables.kecamatan(w, figures, code),)))
    barometer += [tables.barometer_provinces(w, provinces, code, k), kota]
    # A region's own budgets, where it has any: first after the map or the kecamatan, as the finance office
    # and Bappeda look for them.
    if a.budgets:
        first.append(Section("budgets", w("section_budgets"), budget_tables(w, a.budgets)))
    return (
        *first,
        Section("barometer", w("section_barometer"), tuple(barometer)),
        Section("who", w("section_who"), tables.who(w, a)),
        Section("money", w("section_money"), tables.money(w, a)),
        Section("flows", w("section_flows"), tables.flows(w, figures, a)),
        Section("rejections", w("section_rejections"), tables.rejections(w, a)),
    )
