"""The tables of a dashboard page: every chart is drawn from one of these, and the table is shown beside it.

Built from the same `Figures` the HTTP API answers from, so every count is the API's count, suppressed by the
same rule (`suppress` from domain/figures.py, applied once more only to what the API's aggregate does not
carry: the barometer's counts and the trend's day and month counters). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from services.reporting.dashboard.i18n import (
    CATEGORIES,
    FUNDERS,
    PAYERS,
    PROGRAMS,
    SEGMENTS,
    SEXES,
)
from services.reporting.dashboard.i18n import (
    FLOWS as FLOW_WORDS,
)
from services.reporting.domain.counters import FLOWS, business_date, day_period, level_of, month_period
from services.reporting.domain.figures import suppress
from shared.events import AgeBand, Category, FundingSource, Payer, Program, Segment, Sex
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from services.reporting.dashboard.i18n import Words
    from services.reporting.domain.figures import Figures, Ranked
    from shared.events import Figure, RegionAggregate

Chart = Literal["bars", "ranking", "map", "flows"]
Unit = Literal["count", "percent", "rupiah"]

# Vulnerable workers and non-ASN staff first: the two groups Inpres 2/2021 asks regions to fund.
CATEGORY_ORDER = (Category.VULNERABLE, Category.NON_ASN_STAFF, Category.FORMAL_EMPLOYEE, Category.INFORMAL,
                  Category.CONSTRUCTION, Category.MIGRANT)  # fmt: skip


@dataclass(frozen=True)
class Cell:
    text: str
    value: float | None = None  # what a chart draws; None when hidden by suppression or not a number


@dataclass(frozen=True)
class Row:
    label: str
    cells: tuple[Cell, ...]
    href: str | None = None
    own: bool = False  # the region of the page or one of its ancestors
    key: str = ""  # the region code (the map joins its shapes on it)
    short: str = ""  # the chart's label where the table's is too long for an axis


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    columns: tuple[str, ...]  # the row label's header first
    rows: tuple[Row, ...]
    chart: Chart | None = None
    plot: tuple[int, ...] = (0,)  # the cells a chart draws (several: one series each)
    unit: Unit = "count"
    note: str = ""


def href(code: str) -> str:
    return f"/dashboard/{code}"


def count_cell(w: Words, figure: Figure) -> Cell:
    return Cell(w.count(figure), float(figure) if isinstance(figure, int) else None)


def money_cell(w: Words, figure: Figure) -> Cell:
    return Cell(w.rupiah(figure), float(figure) if isinstance(figure, int) else None)


def percent_cell(w: Words, ratio: float | None) -> Cell:
    return Cell(w.percent(ratio), None if ratio is None else ratio)


def share(part: Figure, whole: Figure) -> float | None:
    return part / whole if isinstance(part, int) and isinstance(whole, int) and whole > 0 else None


def related(code: str, page_code: str) -> bool:
    """The page's region or an ancestor of it: what a barometer highlights as "own"."""
    return code == page_code or page_code.startswith(code + ".")


# --- Who is protected --------------------------------------------------------------------------------------


def breakdown(
    w: Words, table_id: str, values: Mapping[str, Figure], total: Figure, labels: Iterable[tuple[str, str]]
) -> Table:
    """Active participants by one attribute, in the order of `labels` (key, label), with each group's share."""
    rows = tuple(
        Row(label, (count_cell(w, values.get(key, 0)), percent_cell(w, share(values.get(key, 0), total))))
        for key, label in labels
    )
    title = w(table_id.replace("-", "_"))
    return Table(table_id, title, (w("col_label"), w("col_active"), w("col_share")), rows, "bars")


def who(w: Words, a: RegionAggregate) -> tuple[Table, ...]:
    def labelled(table: dict[str, dict[str, str]], keys: Iterable[str]) -> list[tuple[str, str]]:
        return [(key, w.label(table, key)) for key in keys]

    ages = [(band.value, w("age_band", band=band.value)) for band in AgeBand]
    return (
        breakdown(w, "by-category", a.by_category, a.active, labelled(CATEGORIES, [c.value for c in CATEGORY_ORDER])),
        breakdown(w, "by-segment", a.by_segment, a.active, labelled(SEGMENTS, [s.value for s in Segment])),
        breakdown(w, "by-program", a.by_program, a.active, labelled(PROGRAMS, [p.value for p in Program])),
        breakdown(w, "by-funding", a.by_funding_source, a.active, labelled(FUNDERS, [f.value for f in FundingSource])),
        breakdown(w, "by-sex", a.by_sex, a.active, labelled(SEXES, [s.value for s in Sex])),
        breakdown(w, "by-age", a.by_age_band, a.active, ages),
    )


# --- Money ---------------------------------------------------------------------------------------------------


def money(w: Words, a: RegionAggregate) -> tuple[Table, ...]:
    by_funding = tuple(
        Row(
            w.label(FUNDERS, source.value),
            (
                money_cell(w, a.monthly_contributions_by_funding_source.get(source.value, 0)),
                money_cell(w, a.annual_contributions_by_funding_source.get(source.value, 0)),
            ),
        )
        for source in FundingSource
    )
    crosstab = tuple(
        Row(
            w.label(FUNDERS, source.value),
            tuple(
                money_cell(w, a.monthly_contributions_by_funding_source_and_payer.get(source.value, {}).get(p.value, 0))
                for p in Payer
            ),
        )
        for source in FundingSource
    )
    payers = tuple(w.label(PAYERS, p.value) for p in Payer)
    return (
        Table("money-by-funding", w("money_by_funding"), (w("col_funding"), w("col_month"), w("money_year")),
              by_funding, "bars", unit="rupiah"),
        Table("money-crosstab", w("money_crosstab"), (w("col_funding"), *payers), crosstab),
    )  # fmt: skip


def apbd_monthly(a: RegionAggregate) -> Figure:
    """What the regional budget itself pays a month: as funder (vulnerable workers) and as the employer of its
    non-ASN staff (docs/reporting.md). Hidden when either part is."""
    row = a.monthly_contributions_by_funding_source_and_payer.get(FundingSource.APBD.value, {})
    parts = [row.get(Payer.FUNDER.value, 0), row.get(Payer.EMPLOYER.value, 0)]
    hidden = [p for p in parts if isinstance(p, str)]
    return hidden[0] if hidden else sum(p for p in parts if isinstance(p, int))


# --- Flows and rejections ------------------------------------------------------------------------------------


def flows(w: Words, figures: Figures, a: RegionAggregate) -> tuple[Table, ...]:
    columns = (w("col_period"), *(w.label(FLOW_WORDS, f) for f in FLOWS))
    summary = tuple(
        Row(w(period), tuple(count_cell(w, getattr(a, flow).get(period, 0)) for flow in FLOWS))
        for period in ("today", "this_month", "total")
    )
    # Each leaf keeps its own latest two days and months (counters.expired_periods), so summed over a region
    # only yesterday, today, last month and this month are complete: older periods are left out.
    counters = figures.model.counters(a.region_code)
    ordered = complete_periods(figures.as_of)
    periods: dict[str, dict[str, int]] = {p: {} for p in ordered}
    for key, value in counters.items():
        if key.startswith("flow/") and key.count("/") == 3:
            _, flow, kind, when = key.split("/")
            if f"{kind}/{when}" in periods:
                periods[f"{kind}/{when}"][flow] = value
    k = figures.suppress_below
    trend = tuple(
        Row(w.period(p), tuple(count_cell(w, suppress(periods[p].get(flow, 0), k)) for flow in FLOWS)) for p in ordered
    )
    return (
        Table("flows", w("section_flows"), columns, summary),
        Table("flows-trend", w("flows_trend"), columns, trend, "flows", plot=(0, 1, 2), note=w("flows_window")),
    )


def complete_periods(as_of: datetime) -> tuple[str, ...]:
    """Yesterday, today, last month and this month (WIB), as the counters name them."""
    today = business_date(as_of)
    last_month = today.replace(day=1) - timedelta(days=1)
    return (
        day_period(today - timedelta(days=1)),
        day_period(today),
        month_period(last_month),
        month_period(today),
    )


def rejections(w: Words, a: RegionAggregate) -> tuple[Table, ...]:
    def reason(code: str) -> str:
        try:
            return ReasonCode(code).message(w.lang)
        except ValueError:  # a code newer than this reader: shown as it is
            return code

    counts = sorted(a.rejections_by_reason.items(), key=lambda item: (-_sortable(item[1]), item[0]))
    by_reason = tuple(Row(reason(code), (Cell(code), count_cell(w, n)), short=code) for code, n in counts)
    partners = sorted(a.rejections_by_partner.items(), key=lambda item: (-_sortable(item[1]), item[0]))
    by_partner = tuple(Row(partner, (count_cell(w, n),)) for partner, n in partners)
    return (
        Table("rejections-by-reason", w("rejections_by_reason"), (w("col_reason"), w("col_code"), w("col_count")),
              by_reason, "bars", plot=(1,), note=w("rejections_note")),
        Table("rejections-by-partner", w("rejections_by_partner"), (w("col_partner"), w("col_count")), by_partner,
              "bars"),
    )  # fmt: skip


def _sortable(figure: Figure) -> int:
    """A suppressed figure (`<5`) sorts below every shown count."""
    return figure if isinstance(figure, int) else 0


# --- Regions: the barometer and the drill-down ---------------------------------------------------------------


def _region_cells(w: Words, row: Ranked, k: int) -> tuple[Cell, ...]:
    return (
        percent_cell(w, row.coverage.ratio),
        count_cell(w, suppress(row.active, k)),
        count_cell(w, row.coverage.denominator),
    )


def barometer_provinces(w: Words, ranked: list[Ranked], page_code: str, k: int) -> Table:
    rows = tuple(
        Row(r.region_name, (Cell(str(r.rank_national)), *_region_cells(w, r, k)), href(r.region_code),
            related(r.region_code, page_code), r.region_code)
        for r in ranked
    )  # fmt: skip
    columns = (w("col_province"), w("rank"), w("col_coverage"), w("col_active"), w("col_workforce"))
    return Table("barometer-provinces", w("barometer_provinces"), columns, rows, "ranking", (1,), "percent")


def barometer_in_province(w: Words, ranked: list[Ranked], province_name: str, page_code: str, k: int) -> Table:
    rows = tuple(
        Row(r.region_name, (Cell(str(r.rank_in_province)), Cell(str(r.rank_national)), *_region_cells(w, r, k)),
            href(r.region_code), related(r.region_code, page_code), r.region_code)
        for r in ranked
    )  # fmt: skip
    columns = (w("col_region"), w("rank"), w("col_rank_national"), w("col_coverage"), w("col_active"),
               w("col_workforce"))  # fmt: skip
    title = w("barometer_province", province=province_name)
    return Table("barometer-province", title, columns, rows, "ranking", (2,), "percent")


def barometer_kota(w: Words, ranked: list[Ranked], figures: Figures, page_code: str) -> Table:
    regions = figures.policy.regions
    rows = []
    for position, r in enumerate(ranked, start=1):
        province = regions.get(r.province_code)
        cells = (Cell(str(position)), Cell(str(r.rank_national)), Cell(province.name if province else ""))
        rows.append(
            Row(r.region_name, (*cells, *_region_cells(w, r, figures.suppress_below)), href(r.region_code),
                related(r.region_code, page_code), r.region_code)
        )  # fmt: skip
    columns = (w("col_region"), w("rank"), w("col_rank_national"), w("col_province"), w("col_coverage"),
               w("col_active"), w("col_workforce"))  # fmt: skip
    return Table("barometer-kota", w("barometer_kota"), columns, tuple(rows), "ranking", (3,), "percent")


def provinces_map(w: Words, figures: Figures, ranked: list[Ranked]) -> Table:
    """The nation's children for the choropleth, in code order, each linking to its page."""
    by_code = {r.region_code: r for r in ranked}
    rows = []
    for child in figures.children("ID"):
        if level_of(child.region_code) != "province":
            continue
        coverage = child.coverage
        rank = by_code.get(child.region_code)
        cells = (
            percent_cell(w, coverage.ratio if coverage else None),
            count_cell(w, child.active),
            count_cell(w, coverage.denominator) if coverage else Cell("–"),
            Cell(str(rank.rank_national) if rank else "–"),
        )
        rows.append(Row(child.region_name, cells, href(child.region_code), key=child.region_code))
    columns = (w("col_province"), w("col_coverage"), w("col_active"), w("col_workforce"), w("rank"))
    return Table("map-provinces", w("section_map"), columns, tuple(rows), "map", (0,), "percent", w("map_note"))


def kecamatan(w: Words, figures: Figures, code: str) -> Table:
    rows = tuple(
        Row(child.region_name, (count_cell(w, child.active),), href(child.region_code), key=child.region_code)
        for child in figures.children(code)
    )
    return Table("children", w("children_kecamatan"), (w("col_region"), w("col_active")), rows, "bars")
