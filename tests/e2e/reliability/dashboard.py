"""Verification of the dashboard's data: what `/dashboard` shows must equal the independent computation too.

The dashboard has two data routes besides its pages: `/dashboard/<code>.csv` (the region and its children,
every figure as a column) and `/dashboard/<code>/live` (JSON polled by the open page: a version and the
re-rendered figures, whose headline `hl-active` is the active count). Both are read from every reporting
instance for every region the computation knows.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from typing import TYPE_CHECKING, Any

import httpx

from services.reporting.dashboard.i18n import Words
from tests.e2e.reliability.figures import differences, expected_figures, observed_figures

if TYPE_CHECKING:
    from tests.e2e.reliability.fleet import Fleet
    from tests.e2e.reliability.verdict import Verdict
    from tests.e2e.reliability.workload import Workload

# CSV column prefixes and the figure each flattens (longest first: `funding_source_` ends two others).
COLUMNS = (
    ("monthly_contributions_funding_source_", "monthly_contributions_by_funding_source"),
    ("annual_contributions_funding_source_", None),  # 12 x monthly: the monthly ones are compared
    ("monthly_contributions_payer_", "monthly_contributions_by_payer"),
    ("funding_source_", "by_funding_source"),
    ("reactivations_", "reactivations"),
    ("terminations_", "terminations"),
    ("enrollments_", "enrollments"),
    ("migrations_", None),
    ("age_band_", "by_age_band"),
    ("category_", "by_category"),
    ("segment_", "by_segment"),
    ("program_", "by_program"),
    ("sex_", "by_sex"),
)
NOT_IN_CSV = ("rejections_by_reason", "rejections_by_partner")  # the API's answers carry these; compared there
HEADLINE = re.compile(r'id="hl-active">([^<]*)<')
# The digits after a decimal point: the charts' ratios carry 17 of them (`data-value="0.0123..."`), which the
# scan would count as NIK-shaped; a NIK is never written as a fraction.
FRACTION = re.compile(r"(?<=\d\.)\d+")


def _number(text: str) -> Any:
    try:
        value = float(text)
    except ValueError:
        return text  # a suppressed figure ("<5") stays as it is shown, and differs from any count
    return int(value) if value.is_integer() else value


def figures_of_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a snapshot of the figures the verification compares."""
    snapshot: dict[str, Any] = {"active": _number(row["active"]), "rejections": _number(row["rejections"])}
    for column, text in row.items():
        for prefix, figure in COLUMNS:
            if column.startswith(prefix):
                if figure is not None and text != "":
                    snapshot.setdefault(figure, {})[column.removeprefix(prefix)] = _number(text)
                break
    return observed_figures(snapshot)


async def verify_dashboard(work: Workload, fleet: Fleet, verdict: Verdict) -> list[str]:
    """Every region's dashboard CSV and live headline, on every reporting instance, against the computation.
    Returns what was served, decimal fractions left out, for the NIK scan."""
    want = expected_figures(work)
    comparable = {code: {k: v for k, v in f.items() if k not in NOT_IN_CSV} for code, f in want.items()}
    words = Words("en")
    gate = asyncio.Semaphore(8)
    texts: list[str] = []
    async with httpx.AsyncClient() as client:

        async def one(base: str, code: str) -> tuple[str, str, str]:
            async with gate:
                table = await client.get(f"{base}/dashboard/{code}.csv", timeout=30)
                live = await client.get(f"{base}/dashboard/{code}/live", params={"lang": "en"}, timeout=30)
            table.raise_for_status()
            live.raise_for_status()
            return code, table.text, live.json()["html"]

        for name in fleet.of("reporting"):
            answers = await asyncio.gather(*(one(fleet.instances[name].url, code) for code in sorted(want)))
            served: dict[str, Any] = {}
            headlines: list[str] = []
            for code, table, html in answers:
                texts += [FRACTION.sub("", table), FRACTION.sub("", html)]
                rows = {row["region_code"]: row for row in csv.DictReader(io.StringIO(table))}
                served[code] = figures_of_row(rows[code])
                shown = HEADLINE.search(html)
                expected = words.count(want[code].get("active", 0))
                if shown is None or shown.group(1).strip() != expected:
                    headlines.append(f"{code}: {shown.group(1) if shown else 'no headline'} != {expected}")
            diff = differences(served, comparable)
            verdict.count("mismatches", f"regions {name}'s dashboard CSV shows differently from the inputs", diff)
            verdict.count("mismatches", f"regions {name}'s dashboard live data heads differently", headlines)
            verdict.checks.append(
                f"dashboard data of {name}: {len(served)} regions' /dashboard/<code>.csv, {len(diff)} differ; "
                f"/dashboard/<code>/live active headline, {len(headlines)} differ"
            )
    return texts
