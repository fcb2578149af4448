"""The budget panel of a region page: each APBD/APBDes budget of the region itself (allocation against what is
reserved and spent to date, the runway at the current enrollment rate) and what full coverage of the region's
vulnerable workers would cost. The figures are the API's (`BudgetFigures` from domain/budgets.py). Pure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.reporting.dashboard.i18n import FUNDERS
from services.reporting.dashboard.tables import Cell, Row, Table, count_cell, money_cell, percent_cell

if TYPE_CHECKING:
    from services.reporting.dashboard.i18n import Words
    from shared.events.aggregates import BudgetFigures


def budget_label(budget: BudgetFigures) -> str:
    """`APBD 2027`, `APBDes 2027`: the source as the region's officials name it, and the fiscal year."""
    return f"{FUNDERS['id'][budget.funding_source.value]} {budget.fiscal_year}"


def _money_or_dash(w: Words, amount: int | None) -> Cell:
    return Cell("–") if amount is None else money_cell(w, amount)


def _runway(w: Words, budget: BudgetFigures) -> Cell:
    if budget.runway_months is None:
        return Cell(w("runway_none"))
    return Cell(w("runway_months", months=w.decimal(budget.runway_months)), budget.runway_months)


def positions(w: Words, budgets: list[BudgetFigures]) -> Table:
    """Allocation, reserved and spent to date side by side (the chart), then what remains and how long it lasts."""
    rows = tuple(
        Row(
            budget_label(b),
            (
                _money_or_dash(w, b.allocation),
                money_cell(w, b.reserved),
                money_cell(w, b.spent_to_date),
                _money_or_dash(w, b.remaining),
                percent_cell(w, b.reserved_ratio),
                count_cell(w, b.workers),
                _money_or_dash(w, b.monthly_reservation_rate),
                _runway(w, b),
                count_cell(w, b.holds_waiting),
            ),
            key=b.key,
        )
        for b in budgets
    )
    columns = (
        w("col_budget"),
        w("col_allocation"),
        w("col_reserved"),
        w("col_spent"),
        w("col_remaining"),
        w("col_reserved_share"),
        w("col_workers"),
        w("col_rate"),
        w("col_runway"),
        w("col_holds"),
    )
    return Table(
        "budget-position", w("budget_position"), columns, rows, "flows", plot=(0, 1, 2), unit="rupiah",
        note=w("budget_note"),
    )  # fmt: skip


def full_coverage(w: Words, budgets: list[BudgetFigures]) -> Table:
    """The cost of covering every estimated vulnerable worker: this year's remaining months and next year."""
    rows = []
    note = w("full_coverage_none")
    for b in budgets:
        full = b.full_coverage
        if full is None:
            continue
        note = w(
            "full_coverage_note",
            share=w.percent(full.vulnerable_share),
            workforce=w.count(full.workforce),
            package=w.rupiah(full.package_monthly),
        )
        rows.append(
            Row(
                budget_label(b),
                (
                    count_cell(w, full.estimated_workers),
                    count_cell(w, b.workers),
                    count_cell(w, full.uncovered_workers),
                    Cell(w.count(full.months_remaining), full.months_remaining),
                    money_cell(w, full.cost_remaining_months),
                    money_cell(w, full.gap_remaining_months),
                    money_cell(w, full.cost_next_fiscal_year),
                    money_cell(w, full.gap_next_fiscal_year),
                ),
                key=b.key,
            )
        )
    columns = (
        w("col_budget"),
        w("col_estimated"),
        w("col_workers"),
        w("col_uncovered"),
        w("col_months_left"),
        w("col_cost_remaining"),
        w("col_gap_remaining"),
        w("col_cost_next"),
        w("col_gap_next"),
    )
    return Table("budget-full-coverage", w("budget_full_coverage"), columns, tuple(rows), note=note)


def budget_tables(w: Words, budgets: list[BudgetFigures]) -> tuple[Table, ...]:
    return (positions(w, budgets), full_coverage(w, budgets))
