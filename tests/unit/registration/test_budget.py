"""The budget side's pure parts: what an enrollment reserves, what a termination releases, and the ledger that
counts each request exactly once whoever settles it. Amounts are exact Rupiah."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.registration.domain.budget import Charge, commitment, token
from services.registration.domain.decisions import decide
from services.registration.domain.holds import decide_allocation, decide_verdict, held
from services.registration.domain.ledger import Allocation, Ledger
from services.registration.domain.nik import format_nik
from services.registration.domain.participation import Context, Decision, Partner, PartnerRight
from shared import events as ev
from shared.reasons import ReasonCode
from shared.regions import load_regions

TODAY = date(2026, 6, 15)
NOW = datetime(2026, 6, 15, 3, tzinfo=UTC)
PACKAGE = 16_800  # BPU vulnerable-worker package: JKK Rp10,000 + JKM Rp6,800 a month, all paid by the APBD
BUDGET = ev.BudgetKey(region_code="32.71", fiscal_year=2026, funding_source=ev.BudgetSource.APBD)
SENDER = Partner(
    partner_id="dinsos-bogor",
    name="Dinas Sosial Kota Bogor",
    regions=frozenset({"32.71"}),
    segments=frozenset({ev.Segment.BPU, ev.Segment.PU}),
    funding_sources=frozenset({ev.FundingSource.APBD}),
)
FINANCE = Partner(
    partner_id="bpkad-bogor",
    name="BPKAD Kota Bogor",
    regions=frozenset({"32.71"}),
    segments=frozenset({ev.Segment.BPU}),
    funding_sources=frozenset({ev.FundingSource.APBD}),
    rights=frozenset({PartnerRight.BUDGET}),
)


@pytest.fixture(scope="module")
def ctx() -> Context:
    return Context(today=TODAY, regions=load_regions(), nik_secret=b"test-secret", now=NOW)


def _enroll(request_id: str, serial: int, start: date = date(2026, 6, 15), **changes: Any) -> ev.EnrollmentRequested:
    birth = date(1990, 6, 5)
    fields: dict[str, Any] = {
        "region_code": "32.71",
        "segment": ev.Segment.BPU,
        "category": ev.Category.VULNERABLE,
        "programs": [ev.Program.JKK, ev.Program.JKM],
        "declared_income": 1_000_000,
        "funding_source": ev.FundingSource.APBD,
        "coverage_start": start,
    }
    data = ev.EnrollmentRequest(
        request_id=request_id,
        worker=ev.Worker(
            nik=format_nik("32.71.01", birth, ev.Sex.FEMALE, serial),
            full_name="Siti Aminah",
            birth_date=birth,
            sex=ev.Sex.FEMALE,
            domicile_kecamatan="32.71.01",
        ),
        **(fields | changes),
    )
    return ev.EnrollmentRequested(source="partner/dinsos-bogor", data=data)


def _terminate(nik: str, effective: date) -> ev.TerminationRequested:
    data = ev.TerminationRequest(
        request_id="stop-1",
        nik=nik,
        segment=ev.Segment.BPU,
        reason=ev.TerminationReason.MOVED,
        effective_date=effective,
    )
    return ev.TerminationRequested(source="partner/dinsos-bogor", data=data)


def _allocated(amount: int, cap: int | None = None, version: int = 1) -> Ledger:
    allocation = Allocation(version, amount, cap, date(2026, 1, 1), "Perda 5/2025", "bpkad-bogor", f"apbd-{version}")
    return Ledger(BUDGET).declare(allocation)


def _admit(ledger: Ledger, decision: Decision, ctx: Context) -> tuple[Ledger, Decision]:
    """What the application layer does before the request log: hold where there is no room, enter the charge."""
    assert decision.charge is not None
    short = ledger.fits_replacing(decision.key, decision.charge, ctx.today)
    if short is not None:
        decision = held(decision, short, decision.charge.budget)
    assert decision.charge is not None
    return ledger.enter(decision.key, decision.charge, decision.outcome.id), decision


def test_an_enrollment_reserves_the_funders_share_of_every_month_to_december(ctx: Context) -> None:
    decision = decide(_enroll("r1", 1), SENDER, None, ctx)
    assert decision.charge is not None
    assert decision.charge.budget == BUDGET
    # June (whole, though coverage starts on the 15th) to December: 7 months of the package.
    assert decision.charge.amount == 7 * PACKAGE == 117_600
    assert decision.charge.by_month == {f"2026-{m:02d}": PACKAGE for m in range(6, 13)}
    assert isinstance(decision.outcome, ev.ParticipantRegistered)
    assert decision.outcome.data.budget is not None
    assert decision.outcome.data.budget.amount == 117_600
    assert decision.participant is not None
    assert decision.participant.reserved is not None


def test_self_funded_and_employer_funded_enrollments_reserve_nothing(ctx: Context) -> None:
    decision = decide(
        _enroll("r1", 1, funding_source=ev.FundingSource.SELF, category=ev.Category.INFORMAL), SENDER, None, ctx
    )
    assert decision.charge is None


def test_an_enrollment_that_exactly_fills_the_allocation_is_accepted(ctx: Context) -> None:
    ledger = _allocated(2 * 117_600)
    ledger, _ = _admit(ledger, decide(_enroll("r1", 1), SENDER, None, ctx), ctx)
    ledger, second = _admit(ledger, decide(_enroll("r2", 2), SENDER, None, ctx), ctx)
    assert isinstance(second.outcome, ev.ParticipantRegistered)
    assert ledger.reserved == 235_200 == ledger.allocation(TODAY).amount  # type: ignore[union-attr]


def test_one_rupiah_over_the_allocation_is_held_not_rejected(ctx: Context) -> None:
    ledger = _allocated(2 * 117_600 - 1)
    ledger, _ = _admit(ledger, decide(_enroll("r1", 1), SENDER, None, ctx), ctx)
    ledger, second = _admit(ledger, decide(_enroll("r2", 2), SENDER, None, ctx), ctx)
    assert isinstance(second.outcome, ev.RequestHeld)
    assert second.participant is None  # not applied
    held_ = second.outcome.data
    assert [r.code for r in held_.reasons] == ["BUDGET_EXHAUSTED"]
    assert (held_.required, held_.available) == (117_600, 117_599)
    assert "Rp117.600" in held_.reasons[0].message_id
    assert ledger.reserved == 117_600
    assert ledger.position(NOW, TODAY).holds_waiting == 1
    assert ledger.position(NOW, TODAY).holds_waiting_amount == 117_600


def test_the_worker_cap_holds_the_worker_past_it(ctx: Context) -> None:
    ledger = _allocated(10_000_000, cap=1)
    ledger, _ = _admit(ledger, decide(_enroll("r1", 1), SENDER, None, ctx), ctx)
    _, second = _admit(ledger, decide(_enroll("r2", 2), SENDER, None, ctx), ctx)
    assert isinstance(second.outcome, ev.RequestHeld)
    assert second.outcome.data.reasons[0].code == "BUDGET_WORKER_CAP_REACHED"


def test_a_termination_mid_month_releases_the_months_after_it(ctx: Context) -> None:
    enrolled = decide(_enroll("r1", 1), SENDER, None, ctx)
    assert enrolled.participant is not None
    nik = format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, 1)
    ended = decide(_terminate(nik, date(2026, 9, 10)), SENDER, enrolled.participant, ctx)
    assert ended.charge is not None
    # September stays due (a month is due whole); October to December are released: 3 x Rp16,800.
    assert (ended.charge.amount, ended.charge.workers) == (-50_400, -1)
    assert sorted(ended.charge.by_month) == ["2026-10", "2026-11", "2026-12"]
    ledger = _allocated(117_600)
    ledger, _ = _admit(ledger, enrolled, ctx)
    ledger, _ = _admit(ledger, ended, ctx)
    assert (ledger.reserved, ledger.workers) == (67_200, 0)


def test_a_termination_of_a_coverage_starting_next_year_releases_next_years_months() -> None:
    # In December a coverage may start in January: its months are reserved on next year's budget, and a
    # termination before the year turns must release them there (it used to look at this year's only).
    december = Context(today=date(2026, 12, 6), regions=load_regions(), nik_secret=b"test-secret", now=NOW)
    enrolled = decide(_enroll("r1", 1, start=date(2027, 1, 4)), SENDER, None, december)
    assert enrolled.charge is not None
    assert (enrolled.charge.budget.fiscal_year, enrolled.charge.amount) == (2027, 12 * PACKAGE)
    nik = format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, 1)
    ended = decide(_terminate(nik, date(2027, 1, 4)), SENDER, enrolled.participant, december)
    assert ended.charge is not None
    assert ended.charge.budget == enrolled.charge.budget
    assert (ended.charge.amount, ended.charge.workers) == (-11 * PACKAGE, -1)  # January stays due
    assert ended.participant is not None
    assert ended.participant.reserved is not None
    assert ended.participant.reserved.by_month == {"2027-01": PACKAGE}


def test_an_allocation_revised_below_the_reservations_holds_new_ones_and_keeps_accepted_ones(ctx: Context) -> None:
    ledger = _allocated(2 * 117_600)
    ledger, _ = _admit(ledger, decide(_enroll("r1", 1), SENDER, None, ctx), ctx)
    revision = Allocation(2, 100_000, None, date(2026, 6, 1), "Perda APBD-P", "bpkad-bogor", "apbd-p")
    ledger = ledger.declare(revision)
    assert ledger.allocation(TODAY) == replace(revision, version=2)
    ledger, second = _admit(ledger, decide(_enroll("r2", 2), SENDER, None, ctx), ctx)
    assert isinstance(second.outcome, ev.RequestHeld)
    assert second.outcome.data.available == 100_000 - 117_600  # negative: below what is reserved
    assert ledger.reserved == 117_600  # the accepted enrollment stands


def test_a_revision_declared_ahead_applies_from_its_effective_date() -> None:
    ledger = _allocated(100).declare(Allocation(0, 500, None, date(2026, 7, 1), "APBD-P", "bpkad-bogor", "p"))
    assert ledger.allocation(date(2026, 6, 30)).amount == 100  # type: ignore[union-attr]
    assert ledger.allocation(date(2026, 7, 1)).amount == 500  # type: ignore[union-attr]
    assert ledger.declare(Allocation(0, 900, None, date(2026, 7, 1), "again", "bpkad-bogor", "p")) == ledger


def test_a_charge_entered_twice_for_one_request_counts_once(ctx: Context) -> None:
    """A batch retried after a crash before its log write, or redelivered to another instance."""
    decision = decide(_enroll("r1", 1), SENDER, None, ctx)
    assert decision.charge is not None
    ledger = _allocated(1_000_000)
    once = ledger.enter(decision.key, decision.charge, "event-a")
    twice = once.enter(decision.key, decision.charge, "event-b")
    assert twice.reserved == once.reserved == 117_600
    # The log kept the second instance's decision: settled to it, counted once.
    assert twice.settle(decision.key, "event-b", decision.charge).reserved == 117_600
    assert twice.settle(decision.key, "event-b", decision.charge).pending == {}


def test_a_loser_or_a_late_resend_is_undone_when_settled(ctx: Context) -> None:
    decision = decide(_enroll("r1", 1), SENDER, None, ctx)
    assert decision.charge is not None
    settled = (
        _allocated(1_000_000).enter(decision.key, decision.charge, "kept").settle(decision.key, "kept", decision.charge)
    )
    # A partner's re-send decided again after the first was settled: entered, then undone, never doubled.
    again = settled.enter(decision.key, decision.charge, "resent")
    assert again.reserved == 2 * 117_600  # counted while pending...
    assert again.settle(decision.key, "kept", decision.charge).reserved == 117_600  # ...and undone


def test_settling_twice_changes_nothing(ctx: Context) -> None:
    decision = decide(_enroll("r1", 1), SENDER, None, ctx)
    assert decision.charge is not None
    once = _allocated(1_000_000).enter(decision.key, decision.charge, "a").settle(decision.key, "a", decision.charge)
    assert once.settle(decision.key, "a", decision.charge) == once


def test_a_hold_opened_and_closed_leaves_no_hold() -> None:
    opened = Ledger(BUDGET).enter("p:r", Charge(BUDGET).with_hold("p:r", 500, opens=True), "h")
    assert opened.holds == {token("p:r"): 500}
    closed = opened.settle("p:r", "h", Charge(BUDGET).with_hold("p:r", 500, opens=True))
    closed = closed.enter("p:r#v", Charge(BUDGET).with_hold("p:r", 500, opens=False), "v")
    assert closed.holds == {}


def test_a_settled_hold_decided_again_and_undone_stays_open_and_a_closed_one_stays_closed() -> None:
    """An instance settles a batch of holds and is killed before committing its offsets: the next instance
    decides the batch again, loses the request log to the first decisions, and its entries are undone."""
    opens = Charge(BUDGET).with_hold("p:r", 500, opens=True)
    settled = Ledger(BUDGET).enter("p:r", opens, "first").settle("p:r", "first", opens)
    again = settled.enter("p:r", opens, "second")
    assert again.holds == {token("p:r"): 500}
    assert again.settle("p:r", "first", opens).holds == {token("p:r"): 500}
    # The same for a verdict that closed the hold, redelivered after it was settled.
    closes = Charge(BUDGET).with_hold("p:r", 500, opens=False)
    closed = settled.enter("p:r#v", closes, "verdict").settle("p:r#v", "verdict", closes)
    assert closed.holds == {}
    assert closed.enter("p:r#v", closes, "again").settle("p:r#v", "verdict", closes).holds == {}
    # An entry that did open the hold is still undone when its decision lost the log.
    assert Ledger(BUDGET).enter("p:r", opens, "lost").settle("p:r", "kept", None).holds == {}


def test_a_verdict_needs_the_budget_right_and_another_principal(ctx: Context) -> None:
    held_ = held(decide(_enroll("r1", 1), SENDER, None, ctx), _short(), BUDGET).outcome.data
    assert isinstance(held_, ev.Held)

    def verdict(by: Partner, verdict: ev.HoldVerdict = ev.HoldVerdict.APPROVE) -> Decision:
        data = ev.HoldDecisionRequest(
            request_id="v1", held_partner_id="dinsos-bogor", held_request_id="r1", verdict=verdict
        )
        event = ev.HoldDecisionRequested(source=f"partner/{by.partner_id}", data=data)
        return decide_verdict(event, by, held_, ctx)

    own = verdict(SENDER.model_copy(update={"rights": frozenset({PartnerRight.BUDGET})}))
    assert _codes(own) == ["HOLD_SELF_DECISION"]
    assert _codes(verdict(FINANCE.model_copy(update={"rights": frozenset()}))) == ["PARTNER_BUDGET_NOT_ALLOWED"]
    approved = verdict(FINANCE)
    assert isinstance(approved.outcome, ev.HoldDecidedEvent)
    assert approved.outcome.data.resolution is ev.HoldResolution.APPROVED
    assert approved.forward is not None
    assert approved.forward.held_key == "dinsos-bogor:r1"


def test_an_allocation_for_a_closed_year_or_another_region_is_rejected(ctx: Context) -> None:
    def allocation(partner: Partner, **changes: Any) -> Decision:
        fields: dict[str, Any] = {
            "request_id": "a1",
            "region_code": "32.71",
            "fiscal_year": 2026,
            "funding_source": ev.BudgetSource.APBD,
            "amount": 1_000_000_000,
            "effective_date": date(2026, 1, 1),
            "dprd_decision": "Perda Kota Bogor 5/2025",
        }
        data = ev.AllocationRequest(**(fields | changes))
        return decide_allocation(
            ev.AllocationRequested(source=f"partner/{partner.partner_id}", data=data), partner, ctx
        )

    assert isinstance(allocation(FINANCE).outcome, ev.AllocationRecordedEvent)
    assert _codes(allocation(FINANCE, fiscal_year=2025, effective_date=date(2025, 1, 1))) == ["ALLOCATION_YEAR_CLOSED"]
    assert _codes(allocation(FINANCE, region_code="32.01")) == ["PARTNER_BUDGET_NOT_ALLOWED"]
    assert _codes(allocation(SENDER)) == [ReasonCode.PARTNER_BUDGET_NOT_ALLOWED.value]


def test_the_commitment_prices_each_month_with_its_rates() -> None:
    request = _enroll("r1", 1).data
    assert commitment(request, date(2026, 11, 30), 2026) == {"2026-11": PACKAGE, "2026-12": PACKAGE}
    assert commitment(request, date(2027, 1, 1), 2026) == {}


def _short() -> Any:
    from services.registration.domain.ledger import Shortfall  # noqa: PLC0415

    return Shortfall(ReasonCode.BUDGET_EXHAUSTED, 117_600, 0, "Rp117.600 > sisa/left Rp0")


def _codes(decision: Decision) -> list[str]:
    assert isinstance(decision.outcome, ev.RequestRejected), decision.outcome
    return [r.code for r in decision.outcome.data.reasons]
