"""The independent computation of the aggregates: what reporting must show, from the inputs alone."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from services.registration.domain.contributions import calculate
from shared import events as ev
from tests.e2e.reliability.plan import age_band, chain
from tests.e2e.reliability.workload import Workload

Figures = dict[str, Any]


def _bump(figures: dict[str, Any], path: tuple[str, ...], amount: int = 1) -> None:
    for step in path[:-1]:
        figures = figures.setdefault(step, {})
    figures[path[-1]] = figures.get(path[-1], 0) + amount


def expected_figures(work: Workload) -> dict[str, Figures]:
    """Per region: the figures reporting must show, from the inputs alone (contributions priced with
    registration's effective-dated rate table, the one piece of domain knowledge borrowed)."""
    figures: dict[str, Figures] = defaultdict(dict)
    for p in work.participations.values():
        if not p.active:
            continue
        rows = _active_rows(p.request, work.today)
        for code in chain(p.leaf):
            for path, amount in rows:
                _bump(figures[code], path, amount)
    for leaf, flow in work.flows:
        for code in chain(leaf):
            _bump(figures[code], (flow, "total"))
    for leaf, partner, codes in work.rejections:
        for code in chain(leaf):
            _bump(figures[code], ("rejections",))
            _bump(figures[code], ("rejections_by_partner", partner))
            for reason in codes:
                _bump(figures[code], ("rejections_by_reason", reason))
    return {code: _sparse(f) for code, f in figures.items()}


def _active_rows(request: ev.EnrollmentRequest, today: date) -> list[tuple[tuple[str, ...], int]]:
    """What one active participation adds to every region it rolls up into: (the figure's path, amount)."""
    contributions = calculate(request, max(today, request.coverage_start))
    rows: list[tuple[tuple[str, ...], int]] = [
        (("active",), 1),
        (("by_segment", request.segment.value), 1),
        (("by_category", request.category.value), 1),
        (("by_funding_source", request.funding_source.value), 1),
        (("by_sex", request.worker.sex.value), 1),
        (("by_age_band", age_band(request.worker.birth_date, today)), 1),
    ]
    rows += [(("by_program", program.value), 1) for program in set(request.programs)]
    source = request.funding_source.value
    for payer, amount in contributions.by_payer.items():
        rows += [
            (("monthly_contributions_by_payer", payer.value), amount),
            (("monthly_contributions_by_funding_source", source), amount),
        ]
    return rows


COMPARED = (
    "active",
    "by_segment",
    "by_category",
    "by_program",
    "by_funding_source",
    "by_sex",
    "by_age_band",
    "monthly_contributions_by_payer",
    "monthly_contributions_by_funding_source",
    "enrollments",
    "terminations",
    "reactivations",
    "rejections",
    "rejections_by_reason",
    "rejections_by_partner",
)


def _sparse(value: Any) -> Any:
    """Zeros dropped at every depth, so a missing counter and a zero one compare equal."""
    if isinstance(value, dict):
        kept = {k: _sparse(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in (0, {}, None)}
    return value


def observed_figures(snapshot: dict[str, Any]) -> Figures:
    """The compared figures of a snapshot or an API answer. `today` and `this_month` are left out: they
    depend on when each outcome was decided, which the inputs do not say (totals are compared)."""
    picked = {key: snapshot.get(key) for key in COMPARED}
    for flow in ("enrollments", "terminations", "reactivations"):
        picked[flow] = {"total": (snapshot.get(flow) or {}).get("total", 0)}
    figures: Figures = _sparse(picked)
    return figures


def differences(actual: dict[str, Figures], expected: dict[str, Figures]) -> list[str]:
    out = []
    for code in sorted(actual.keys() | expected.keys()):
        got, want = actual.get(code, {}), expected.get(code, {})
        if got != want:
            keys = sorted(k for k in got.keys() | want.keys() if got.get(k) != want.get(k))
            out.append(f"{code}: " + "; ".join(f"{k} {got.get(k)} != {want.get(k)}" for k in keys[:3]))
    return out
