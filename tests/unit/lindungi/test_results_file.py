"""The `lindungi publish` results file carries the money: per program and per payer, exactly as the outcome
event states it, so a finance office can reconcile its budget line against the file.

The outcomes are real: registration's pure `decide` answers requests, and each outcome goes through the same
JSON the CLI reads from the outcome topic."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from lindungi.files import CONTRIBUTION_COLUMNS, PAST_COLUMNS, RESULT_COLUMNS, Row, result_row, write_results
from services.registration.domain.decisions import decide
from services.registration.domain.nik import format_nik
from services.registration.domain.participation import Context, Decision, Partner, PartnerRight, RequestEvent
from shared import events as ev
from shared.messaging import encode
from shared.regions import load_regions

TODAY = date(2025, 11, 24)
COVERAGE_START = date(2025, 12, 1)
KOTA_BOGOR = "32.71"
BOGOR_SELATAN = "32.71.01"
PARTNER = Partner(
    partner_id="bogor-hr",
    name="BKPSDM Kota Bogor",
    regions=frozenset({KOTA_BOGOR}),
    segments=frozenset({ev.Segment.PU, ev.Segment.BPU}),
    funding_sources=frozenset({ev.FundingSource.APBD}),
    rights=frozenset({PartnerRight.MIGRATION}),
)
FIRST_COLUMNS = ("row", "request_id", "outcome", "reason_codes", "messages", "event_id")


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(
        today=TODAY, regions=load_regions(), nik_secret=b"test-secret", now=datetime(2025, 11, 24, 2, tzinfo=UTC)
    )


def enrollment(request_id: str, serial: int, **terms: Any) -> ev.EnrollmentRequested:
    birth = date(1990, 6, 5)
    worker = ev.Worker(
        nik=format_nik(BOGOR_SELATAN, birth, ev.Sex.FEMALE, serial),
        full_name="Siti Aminah",
        birth_date=birth,
        sex=ev.Sex.FEMALE,
        domicile_kecamatan=BOGOR_SELATAN,
    )
    data = ev.EnrollmentRequest(
        request_id=request_id,
        worker=worker,
        region_code=KOTA_BOGOR,
        **({"coverage_start": COVERAGE_START} | terms),
    )
    return ev.EnrollmentRequested(source=f"partner/{PARTNER.partner_id}", subject=request_id, data=data)


def non_asn_staff(request_id: str = "hr-1", serial: int = 1) -> ev.EnrollmentRequested:
    """Non-ASN staff of the city on every program: the APBD, the worker and the state each pay a share."""
    return enrollment(
        request_id,
        serial,
        segment=ev.Segment.PU,
        category=ev.Category.NON_ASN_STAFF,
        employer=ev.Employer(registration_number="12345678", size=ev.EmployerSize.LARGE, jkk_risk=ev.RiskLevel.LOW),
        programs=list(ev.Program),
        monthly_wage=4_813_987,  # an odd wage, so each line is rounded
        funding_source=ev.FundingSource.APBD,
    )


def vulnerable_worker(request_id: str = "hr-2", serial: int = 2, **changes: Any) -> ev.EnrollmentRequested:
    """A pekerja rentan whose whole contribution the APBD pays."""
    terms: dict[str, Any] = {
        "segment": ev.Segment.BPU,
        "category": ev.Category.VULNERABLE,
        "programs": [ev.Program.JKK, ev.Program.JKM],
        "declared_income": 1_000_000,
        "funding_source": ev.FundingSource.APBD,
    }
    return enrollment(request_id, serial, **(terms | changes))


def answered(request: RequestEvent, ctx: Context, current: Decision | None = None) -> tuple[Decision, ev.Outcome]:
    """Registration's decision, and its outcome as the CLI reads it back from the outcome topic."""
    decision = decide(request, PARTNER, current.participant if current else None, ctx)
    value, _ = encode(decision.outcome)
    return decision, ev.outcome_adapter.validate_json(value)


def as_line(cells: list[str | int]) -> dict[str, str]:
    """The row as a spreadsheet (or csv.DictReader) reads it back."""
    return dict(zip(RESULT_COLUMNS, (str(cell) for cell in cells), strict=True))


def test_the_columns_are_the_old_six_then_a_fixed_set_of_amounts() -> None:
    assert RESULT_COLUMNS[:6] == FIRST_COLUMNS
    assert RESULT_COLUMNS[-2:] == PAST_COLUMNS == ("past_months", "past_contributions_total")
    assert RESULT_COLUMNS[6:-2] == CONTRIBUTION_COLUMNS == (
        "funding_source", "contributions_as_of",
        "contribution_JKK", "contribution_JKM", "contribution_JHT", "contribution_JP", "contribution_JKP",
        "paid_by_employer", "paid_by_worker", "paid_by_funder", "paid_by_central_government",
        "total_monthly",
    )  # fmt: skip


@pytest.mark.parametrize("request_of", [non_asn_staff, vulnerable_worker])
def test_an_accepted_row_carries_the_contribution_of_its_outcome_event(request_of: Any, ctx: Context) -> None:
    request = request_of()
    _, outcome = answered(request, ctx)
    assert isinstance(outcome, ev.ParticipantRegistered)
    money = outcome.data.participant.contributions

    line = as_line(result_row(Row(2, request, "key"), outcome))

    assert line["outcome"] == "REGISTERED"
    assert line["event_id"] == outcome.id
    assert line["funding_source"] == "APBD"
    assert line["contributions_as_of"] == money.as_of.isoformat()
    for program in ev.Program:
        assert int(line[f"contribution_{program.value}"]) == money.by_program.get(program, 0)
    for payer in ev.Payer:
        assert int(line[f"paid_by_{payer.value.lower()}"]) == money.by_payer.get(payer, 0)
    assert int(line["total_monthly"]) == money.total > 0
    per_payer = sum(int(line[c]) for c in CONTRIBUTION_COLUMNS if c.startswith("paid_by_"))
    per_program = sum(int(line[c]) for c in CONTRIBUTION_COLUMNS if c.startswith("contribution_"))
    assert per_payer == per_program == int(line["total_monthly"])


def test_the_apbd_share_of_non_asn_staff_is_apart_from_the_workers_and_the_states(ctx: Context) -> None:
    request = non_asn_staff()
    _, outcome = answered(request, ctx)
    assert isinstance(outcome, ev.ParticipantRegistered)
    by_payer = outcome.data.participant.contributions.by_payer

    line = as_line(result_row(Row(2, request, "key"), outcome))

    assert int(line["paid_by_funder"]) == by_payer[ev.Payer.FUNDER] > 0
    assert int(line["paid_by_worker"]) == by_payer[ev.Payer.WORKER] > 0
    assert int(line["paid_by_central_government"]) == by_payer[ev.Payer.CENTRAL_GOVERNMENT] > 0
    assert line["paid_by_employer"] == "0"


def test_a_rejected_or_unanswered_row_has_no_amounts(ctx: Context) -> None:
    rejected_request = vulnerable_worker("hr-3", 3, funding_source=ev.FundingSource.CSR)  # not this partner's
    _, rejected = answered(rejected_request, ctx)
    assert isinstance(rejected, ev.RequestRejected)

    refused = as_line(result_row(Row(2, rejected_request, "key"), rejected))
    pending = as_line(result_row(Row(3, vulnerable_worker(), "key"), None))

    assert refused["outcome"] == "REJECTED"
    assert "PARTNER_FUNDING_NOT_ALLOWED" in refused["reason_codes"]
    assert pending["outcome"] == "PENDING"
    for line in (refused, pending):
        assert all(line[column] == "" for column in CONTRIBUTION_COLUMNS), line


def test_a_termination_shows_the_contribution_that_stops(ctx: Context) -> None:
    enrolled, _ = answered(vulnerable_worker(), ctx)
    data = ev.TerminationRequest(
        request_id="hr-2-end",
        nik=vulnerable_worker().data.worker.nik,
        segment=ev.Segment.BPU,
        reason=ev.TerminationReason.MOVED,
        effective_date=COVERAGE_START,
    )
    request = ev.TerminationRequested(source=f"partner/{PARTNER.partner_id}", subject="hr-2-end", data=data)
    _, outcome = answered(request, ctx, current=enrolled)
    assert isinstance(outcome, ev.ParticipantTerminated)

    line = as_line(result_row(Row(2, request, "key"), outcome))

    assert line["outcome"] == "TERMINATED"
    assert int(line["total_monthly"]) == outcome.data.participant.contributions.total > 0


def test_the_written_file_sums_to_the_events_in_a_spreadsheet(ctx: Context, tmp_path: Path) -> None:
    requests = [non_asn_staff("hr-1", 1), vulnerable_worker("hr-2", 2), vulnerable_worker("hr-3", 3)]
    outcomes = {r.data.request_id: answered(r, ctx)[1] for r in requests}
    path = tmp_path / "requests.results.csv"

    write_results(path, [Row(n, r, "key") for n, r in enumerate(requests, start=2)], outcomes)

    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == RESULT_COLUMNS
        lines = list(reader)
    apbd_line = sum(int(line["paid_by_funder"]) for line in lines if line["funding_source"] == "APBD")
    expected = 0
    for outcome in outcomes.values():
        assert not isinstance(outcome, ev.RequestRejected)
        expected += outcome.data.participant.contributions.by_payer.get(ev.Payer.FUNDER, 0)
    assert apbd_line == expected > 0


def test_a_migration_line_shows_the_past_months_and_their_sum(ctx: Context) -> None:
    request = vulnerable_worker("mig-1", 3, coverage_start=date(2023, 1, 16), migrated_from="SIPP 2019")
    _, outcome = answered(request, ctx)
    assert isinstance(outcome, ev.ParticipantRegistered)
    line = as_line(result_row(Row(2, request, "k"), outcome))
    # January 2023 to October 2025: 34 months of Rp16,800 (JKK 1 % of Rp1,000,000 and JKM Rp6,800).
    assert (line["past_months"], line["past_contributions_total"]) == ("34", str(34 * 16_800))
    assert line["total_monthly"] == "16800"


def test_an_ordinary_line_leaves_the_past_empty(ctx: Context) -> None:
    request = vulnerable_worker("new-1", 4)
    _, outcome = answered(request, ctx)
    line = as_line(result_row(Row(2, request, "k"), outcome))
    assert (line["past_months"], line["past_contributions_total"]) == ("", "")
