"""Migrating existing participations: a partner with the `migration` right sends a historical coverage start,
and registration prices every past month with the rates and JP wage ceiling in force that month."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.registration.domain.contributions import calculate, past_contributions, rate_changes
from services.registration.domain.decisions import decide
from services.registration.domain.nik import format_nik
from services.registration.domain.participation import Context, Decision, Partner, PartnerRight
from services.registration.domain.rates import load_rate_table
from services.registration.domain.rules import MIGRATION_EARLIEST
from shared import events as ev

TODAY = date(2025, 11, 24)
KOTA_BOGOR, BOGOR_SELATAN = "32.71", "32.71.01"
WAGE = 12_000_000  # above every JP wage ceiling since 2021, so each March's new ceiling changes the JP amount


def _partner(*rights: PartnerRight) -> Partner:
    return Partner(
        partner_id="bogor-hr",
        name="BKPSDM Kota Bogor",
        regions=frozenset({KOTA_BOGOR}),
        segments=frozenset({ev.Segment.PU, ev.Segment.BPU}),
        funding_sources=frozenset({ev.FundingSource.APBD, ev.FundingSource.EMPLOYER}),
        rights=frozenset(rights),
    )


@pytest.fixture(scope="module")
def ctx() -> Context:
    from shared.regions import load_regions  # noqa: PLC0415 - the reference data, loaded once for the module

    now = datetime(2025, 11, 24, tzinfo=UTC)
    return Context(today=TODAY, regions=load_regions(), nik_secret=b"test-secret", now=now)


def _request(coverage_start: date, migrated_from: str | None = "SIPP 2019", **terms: Any) -> ev.EnrollmentRequested:
    birth = date(1985, 6, 5)
    worker = ev.Worker(
        nik=format_nik(BOGOR_SELATAN, birth, ev.Sex.MALE, 7),
        full_name="Budi Santoso",
        birth_date=birth,
        sex=ev.Sex.MALE,
        domicile_kecamatan=BOGOR_SELATAN,
        email="budi@example.org",
        contact_consent=True,
    )
    fields: dict[str, Any] = {
        "segment": ev.Segment.PU,
        "category": ev.Category.NON_ASN_STAFF,
        "employer": ev.Employer(registration_number="12345678", size=ev.EmployerSize.LARGE, jkk_risk=ev.RiskLevel.LOW),
        "programs": [ev.Program.JKK, ev.Program.JKM, ev.Program.JHT, ev.Program.JP],
        "monthly_wage": WAGE,
        "funding_source": ev.FundingSource.APBD,
    }
    data = ev.EnrollmentRequest(
        request_id="mig-1",
        worker=worker,
        region_code=KOTA_BOGOR,
        coverage_start=coverage_start,
        migrated_from=migrated_from,
        **(fields | terms),
    )
    return ev.EnrollmentRequested(source="partner/bogor-hr", data=data)


def _decide(event: ev.EnrollmentRequested, partner: Partner, ctx: Context) -> Decision:
    return decide(event, partner, None, ctx)


def _codes(decision: Decision) -> list[tuple[str, str | None]]:
    assert isinstance(decision.outcome, ev.RequestRejected)
    return [(r.code, r.field) for r in decision.outcome.data.reasons]


def test_a_migration_keeps_its_real_start_and_prices_every_past_month(ctx: Context) -> None:
    decision = _decide(_request(date(2021, 5, 10)), _partner(PartnerRight.MIGRATION), ctx)
    outcome = decision.outcome
    assert isinstance(outcome, ev.ParticipantRegistered)
    registered = outcome.data
    assert registered.participant.coverage_start == date(2021, 5, 10)
    assert registered.participant.migrated_from == "SIPP 2019"
    periods = registered.past_contributions
    # May 2021 to October 2025, cut where the JP wage ceiling rose (every 1 March).
    assert [(p.first_month, p.last_month) for p in periods] == [
        ("2021-05", "2022-02"),
        ("2022-03", "2023-02"),
        ("2023-03", "2024-02"),
        ("2024-03", "2025-02"),
        ("2025-03", "2025-10"),
    ]
    assert sum(p.months for p in periods) == 54
    jp = [p.monthly.by_program[ev.Program.JP] for p in periods]
    # 3 % of each year's ceiling: Rp8,754,600 in 2021 ... Rp10,547,400 from March 2025.
    assert jp == [262_638, 272_328, 286_788, 301_269, 316_422]
    assert registered.past_contributions_total == sum(p.months * p.monthly.total for p in periods)
    # The current month is the participation's ordinary contribution, as of today.
    assert registered.participant.contributions.as_of == TODAY


BPU_TERMS: dict[str, Any] = {
    "segment": ev.Segment.BPU,
    "category": ev.Category.VULNERABLE,
    "employer": None,
    "monthly_wage": None,
    "declared_income": 1_000_000,
    "programs": [ev.Program.JKK, ev.Program.JKM, ev.Program.JHT],
}


@pytest.mark.parametrize(
    ("start", "terms"),
    [(date(2021, 3, 15), {}), (date(2016, 1, 20), BPU_TERMS)],
    ids=["PU-with-JP", "BPU-since-2016"],
)
def test_each_past_month_equals_pricing_that_month_alone(start: date, terms: dict[str, Any]) -> None:
    request = _request(start, **terms).data
    periods = past_contributions(request, start, TODAY)
    month, expected = date(start.year, start.month, 1), []
    while month < date(2025, 11, 1):
        expected.append(calculate(request, max(month, start)).total)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    assert [p.monthly.total for p in periods for _ in range(p.months)] == expected


def test_jp_reaches_back_only_as_far_as_the_rate_file_has_ceilings(ctx: Context) -> None:
    # DOMAIN.md gives JP wage ceilings from March 2021: an older JP participation is refused with the date,
    # not priced with a made-up ceiling.
    decision = _decide(_request(date(2019, 1, 15)), _partner(PartnerRight.MIGRATION), ctx)
    assert isinstance(decision.outcome, ev.RequestRejected)
    [reason] = decision.outcome.data.reasons
    assert (reason.code, reason.subject) == ("COVERAGE_START_INVALID", "2019-01-15")


def test_without_the_migration_right_the_partner_is_refused(ctx: Context) -> None:
    decision = _decide(_request(date(2021, 5, 10)), _partner(), ctx)
    assert _codes(decision) == [("PARTNER_MIGRATION_NOT_ALLOWED", "migrated_from")]


def test_an_ordinary_enrollment_still_may_not_reach_back_years(ctx: Context) -> None:
    decision = _decide(_request(date(2021, 5, 10), migrated_from=None), _partner(PartnerRight.MIGRATION), ctx)
    assert _codes(decision) == [("COVERAGE_START_INVALID", "coverage_start")]


def test_a_migration_cannot_start_in_the_future_or_before_the_programs(ctx: Context) -> None:
    partner = _partner(PartnerRight.MIGRATION)
    assert _codes(_decide(_request(date(2025, 12, 1)), partner, ctx)) == [("COVERAGE_START_INVALID", "coverage_start")]
    assert _codes(_decide(_request(date(2015, 6, 30)), partner, ctx)) == [("COVERAGE_START_INVALID", "coverage_start")]


def test_a_migration_within_the_ordinary_window_has_no_past_months_before_this_one(ctx: Context) -> None:
    decision = _decide(_request(date(2025, 11, 3)), _partner(PartnerRight.MIGRATION), ctx)
    assert isinstance(decision.outcome, ev.ParticipantRegistered)
    assert decision.outcome.data.past_contributions == []
    assert decision.outcome.data.participant.migrated_from == "SIPP 2019"


def test_an_ordinary_enrollment_carries_no_past_months(ctx: Context) -> None:
    decision = _decide(_request(date(2025, 11, 3), migrated_from=None), _partner(), ctx)
    assert isinstance(decision.outcome, ev.ParticipantRegistered)
    assert decision.outcome.data.past_contributions == []
    assert decision.outcome.data.participant.migrated_from is None


def test_the_earliest_migration_is_the_first_date_the_rate_file_prices() -> None:
    assert rate_changes(load_rate_table())[0] == MIGRATION_EARLIEST
