"""Requests of the budget side for the tests: a social-affairs office that enrolls vulnerable workers on the
city's APBD, the city's finance office that declares the budget and decides held requests, and their events."""

from __future__ import annotations

from datetime import date

from services.registration.domain.nik import format_nik
from shared import events as ev

SENDER, FINANCE = "dinsos-bogor", "bpkad-bogor"
PARTNERS = [
    {
        "partner_id": SENDER,
        "name": "Dinas Sosial Kota Bogor",
        "regions": ["32.71"],
        "segments": ["BPU"],
        "funding_sources": ["APBD", "SELF"],
        "rights": ["budget"],  # may act on budgets too, but never on its own held requests
    },
    {
        "partner_id": FINANCE,
        "name": "BPKAD Kota Bogor",
        "regions": ["32.71"],
        "segments": ["BPU"],
        "funding_sources": ["APBD"],
        "rights": ["budget"],
    },
]
TODAY = date.today()
START = date(TODAY.year, TODAY.month, 1)
BUDGET = f"32.71|{TODAY.year}|APBD"


def nik(serial: int) -> str:
    return format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, serial)


def enrollment(request_id: str, serial: int) -> ev.EnrollmentRequested:
    """A vulnerable worker of Bogor Selatan on the standard package, paid by Kota Bogor's APBD."""
    birth = date(1990, 6, 5)
    data = ev.EnrollmentRequest(
        request_id=request_id,
        worker=ev.Worker(
            nik=nik(serial), full_name="Siti Aminah", birth_date=birth, sex=ev.Sex.FEMALE, domicile_kecamatan="32.71.01"
        ),
        region_code="32.71",
        segment=ev.Segment.BPU,
        category=ev.Category.VULNERABLE,
        programs=[ev.Program.JKK, ev.Program.JKM],
        declared_income=1_000_000,
        funding_source=ev.FundingSource.APBD,
        coverage_start=START,
    )
    return ev.EnrollmentRequested(source=f"partner/{SENDER}", subject=request_id, data=data)


def allocation(request_id: str, amount: int, worker_cap: int | None = None) -> ev.AllocationRequested:
    data = ev.AllocationRequest(
        request_id=request_id,
        region_code="32.71",
        fiscal_year=TODAY.year,
        funding_source=ev.BudgetSource.APBD,
        amount=amount,
        worker_cap=worker_cap,
        effective_date=date(TODAY.year, 1, 1),
        dprd_decision=f"Perda Kota Bogor APBD {TODAY.year} ({request_id})",
    )
    return ev.AllocationRequested(source=f"partner/{FINANCE}", subject=request_id, data=data)


def verdict(
    request_id: str, held_request_id: str, choice: ev.HoldVerdict, by: str = FINANCE
) -> ev.HoldDecisionRequested:
    data = ev.HoldDecisionRequest(
        request_id=request_id, held_partner_id=SENDER, held_request_id=held_request_id, verdict=choice
    )
    return ev.HoldDecisionRequested(source=f"partner/{by}", subject=request_id, data=data)
