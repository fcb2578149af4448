"""Budget figures, pure and in exact rupiah: the newest position wins whatever the order of arrival, spent to
date by the WIB month, remaining after a downward revision, the monthly rate and runway from the trailing 30
days, the cost of full coverage for the rest of the year and the next one; then the same figures in a region's
aggregate, its fingerprint, `/budgets` and `/budgets.csv`. The service against real Kafka and FerretDB is in
tests/integration/reporting/test_reporting_budget.py."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Container, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.reporting.budgets import BudgetLedger, BudgetReaders
from services.reporting.dashboard import Dashboard
from services.reporting.domain.budgets import (
    BudgetBook,
    BudgetRecord,
    CoverageCost,
    Sample,
    accept,
    budget_figures,
    monthly_rate,
    months_remaining,
    runway,
    spent_to_date,
)
from services.reporting.domain.counters import WIB, effects
from services.reporting.domain.coverage import CoveragePolicy, Target
from services.reporting.domain.figures import Budgets, Figures
from services.reporting.domain.read_model import ReadModel
from services.reporting.http import RegionsApi
from services.reporting.service import Metrics
from shared import events as ev
from shared.regions import load_regions
from tests.unit.reporting.test_dashboard_pages import call

REGIONS = load_regions()
COST = CoverageCost(vulnerable_share=0.5917, package_monthly=16_800)
JAN_1 = datetime(2027, 1, 1, tzinfo=WIB)


def position(  # noqa: PLR0913 - a position's figures, with test defaults
    sequence: int,
    *,
    reserved: int = 0,
    at: datetime = JAN_1,
    allocation: int | None = 100_000_000,
    workers: int = 0,
    by_month: dict[str, int] | None = None,
    region: str = "32.71",
    source: ev.BudgetSource = ev.BudgetSource.APBD,
    year: int = 2027,
) -> ev.BudgetPosition:
    return ev.BudgetPosition(
        region_code=region,
        fiscal_year=year,
        funding_source=source,
        sequence=sequence,
        as_of=at,
        allocation=allocation,
        allocation_version=0 if allocation is None else 1,
        dprd_decision=None if allocation is None else "Perda 5/2026",
        reserved=reserved,
        workers=workers,
        by_month=by_month or {},
        holds_waiting=0,
        holds_waiting_amount=0,
    )


def record_of(*positions: ev.BudgetPosition) -> BudgetRecord:
    record: BudgetRecord | None = None
    for p in positions:
        record = accept(record, p) or record
    assert record is not None
    return record


# --- the newest position wins ----------------------------------------------------------------------------------


def test_the_highest_sequence_wins_whatever_the_order_and_a_redelivery_changes_nothing() -> None:
    first = accept(None, position(1, reserved=10))
    assert first is not None
    third = accept(first, position(3, reserved=30, at=JAN_1 + timedelta(days=2)))
    assert third is not None
    assert third.position.reserved == 30
    assert accept(third, position(2, reserved=20, at=JAN_1 + timedelta(days=1))) is None  # late
    assert accept(third, position(3, reserved=30, at=JAN_1 + timedelta(days=2))) is None  # redelivered
    book = BudgetBook()
    assert book.keep(third)
    assert not book.keep(first)  # an older record read back from the store does not replace a newer one
    assert book.records[third.key].position.sequence == 3
    assert book.take_dirty() == {"32.71"}


def test_positions_within_the_sample_spacing_keep_two_samples_not_one_per_enrollment() -> None:
    record = record_of(*(position(n, reserved=n * 16_800, at=JAN_1 + timedelta(seconds=n)) for n in range(1, 200)))
    assert len(record.samples) == 2
    assert record.samples[-1] == Sample(JAN_1 + timedelta(seconds=199), 199 * 16_800)


# --- spent, remaining, runway ----------------------------------------------------------------------------------


def test_spent_to_date_sums_the_months_up_to_and_including_the_current_wib_month() -> None:
    by_month = {"2027-01": 168_000, "2027-02": 168_000, "2027-03": 168_000, "2027-12": 168_000}
    # 28 February 18:00 UTC is already 1 March in Jakarta: March counts.
    assert spent_to_date(by_month, datetime(2027, 2, 28, 18, 0, tzinfo=UTC).astimezone(WIB).date()) == 504_000
    assert spent_to_date(by_month, datetime(2027, 2, 28, 16, 0, tzinfo=UTC).astimezone(WIB).date()) == 336_000


def test_remaining_goes_negative_after_a_downward_revision_and_runway_is_then_zero() -> None:
    record = record_of(position(1, reserved=80_000_000, allocation=60_000_000, workers=400))
    figures = budget_figures(record, CoveragePolicy(REGIONS, 0.69, 0.68), COST, JAN_1)
    assert figures.remaining == -20_000_000
    assert figures.reserved_ratio == round(80 / 60, 6)
    assert runway(figures.remaining, 1_000_000) == 0.0


def test_the_monthly_rate_is_the_growth_over_the_trailing_30_days_per_average_month() -> None:
    record = record_of(position(1, reserved=0), position(2, reserved=30_000_000, at=JAN_1 + timedelta(days=30)))
    now = JAN_1 + timedelta(days=30, hours=10)  # the same WIB day as the latest position
    figures = budget_figures(record, CoveragePolicy(REGIONS, 0.69, 0.68), COST, now)
    # 30,000,000 in 30 days = 1,000,000 a day; a month is 365.25 / 12 = 30.4375 days.
    assert figures.monthly_reservation_rate == 30_437_500
    assert figures.remaining == 70_000_000
    assert figures.runway_months == 2.3  # 70,000,000 / 30,437,500 = 2.2998


def test_the_rate_starts_from_the_reservation_in_force_when_the_window_opens() -> None:
    samples = (
        Sample(JAN_1, 0),
        Sample(JAN_1 + timedelta(days=10), 10_000_000),
        Sample(JAN_1 + timedelta(days=40), 40_000_000),
    )
    # Window: day 10 to day 40; reserved was 10,000,000 at its start, 30,000,000 more at its end.
    assert monthly_rate(samples, JAN_1 + timedelta(days=40)) == 30_437_500
    # Ten days later with no new position: 30,000,000 over the window from day 20 (10,000,000 then).
    assert monthly_rate(samples, JAN_1 + timedelta(days=50)) == 30_437_500
    # Forty days without a position: no growth in the window.
    assert monthly_rate(samples, JAN_1 + timedelta(days=80)) is None


def test_no_growth_or_a_net_release_gives_no_rate_and_no_runway() -> None:
    flat = (Sample(JAN_1, 5_000_000), Sample(JAN_1 + timedelta(days=3), 5_000_000))
    released = (Sample(JAN_1, 5_000_000), Sample(JAN_1 + timedelta(days=3), 4_000_000))
    assert monthly_rate(flat, JAN_1 + timedelta(days=3)) is None
    assert monthly_rate(released, JAN_1 + timedelta(days=3)) is None
    assert monthly_rate((Sample(JAN_1, 5_000_000),), JAN_1) is None  # one sample: no time elapsed
    assert runway(10_000_000, None) is None
    assert runway(None, 1_000_000) is None  # no allocation declared yet


# --- the cost of full coverage ---------------------------------------------------------------------------------


def test_months_remaining_count_the_current_month_and_stop_in_december() -> None:
    assert [months_remaining(2027, JAN_1.replace(month=m).date()) for m in (1, 3, 12)] == [12, 10, 1]
    assert months_remaining(2026, JAN_1.date()) == 0
    assert months_remaining(2028, JAN_1.date()) == 12


def test_full_coverage_in_exact_rupiah_from_an_official_workforce() -> None:
    policy = CoveragePolicy(REGIONS, 0.69, 0.68, targets={"32.71": Target("32.71", workforce=10_000)})
    record = record_of(position(1, reserved=917 * 16_800 * 10, workers=917))
    full = budget_figures(record, policy, COST, datetime(2027, 3, 15, tzinfo=WIB)).full_coverage
    assert full is not None
    assert (full.workforce, full.workforce_source, full.estimated_workers) == (10_000, "official", 5_917)
    assert full.months_remaining == 10  # March to December
    assert full.cost_remaining_months == 5_917 * 16_800 * 10 == 994_056_000
    assert full.cost_next_fiscal_year == 5_917 * 16_800 * 12 == 1_192_867_200
    assert full.uncovered_workers == 5_000
    assert full.gap_remaining_months == 840_000_000
    assert full.gap_next_fiscal_year == 1_008_000_000


def test_full_coverage_from_the_population_estimate_and_none_for_a_kecamatan_without_a_workforce() -> None:
    policy = CoveragePolicy(REGIONS, 0.69, 0.68)
    full = budget_figures(record_of(position(1)), policy, COST, datetime(2027, 3, 15, tzinfo=WIB)).full_coverage
    assert full is not None
    # Kota Bogor: round(population x 0.69 x 0.68) = 536,815; x 0.5917 = 317,633 vulnerable workers.
    assert (full.workforce, full.estimated_workers) == (536_815, 317_633)
    assert full.cost_next_fiscal_year == 64_034_812_800
    village = record_of(position(1, region="32.71.01", source=ev.BudgetSource.APBDES))
    assert budget_figures(village, policy, COST, JAN_1).full_coverage is None


# --- in the aggregate, the API and the CSV -----------------------------------------------------------------------


def figures_with(book: BudgetBook, now: datetime = JAN_1 + timedelta(days=30, hours=10)) -> Figures:
    return Figures(ReadModel(), CoveragePolicy(REGIONS, 0.69, 0.68), now, budgets=Budgets(book, COST))


def test_a_region_snapshot_carries_its_own_budgets_and_its_fingerprint_follows_their_sequence() -> None:
    book = BudgetBook()
    for record in (
        record_of(position(1), position(2, reserved=30_000_000, at=JAN_1 + timedelta(days=30))),
        record_of(position(1, region="32.71.01", source=ev.BudgetSource.APBDES, allocation=None)),
    ):
        book.keep(record)
    figures = figures_with(book)
    city = figures.region("32.71")
    assert [(b.region_code, b.funding_source, b.runway_months) for b in city.budgets] == [
        ("32.71", ev.BudgetSource.APBD, 2.3)
    ]
    assert ev.RegionAggregate.model_validate(city.model_dump()) == city
    assert figures.region("32").budgets == []  # a budget is its region's, never summed into the province's
    before = figures.fingerprint("32.71")
    book.keep(record_of(position(3, reserved=31_000_000, at=JAN_1 + timedelta(days=30, hours=1))))
    assert figures_with(book).fingerprint("32.71") != before
    assert figures_with(book).fingerprint("32.71.01") == figures.fingerprint("32.71.01")


def test_budgets_route_filters_by_region_and_year_and_the_csv_has_one_row_per_budget() -> None:
    book = BudgetBook()
    for record in (
        record_of(position(1, reserved=1_680_000, workers=10, by_month={"2027-01": 168_000, "2027-02": 1_512_000})),
        record_of(position(1, year=2028)),
        record_of(position(1, region="33.74")),
    ):
        book.keep(record)
    api = RegionsApi(lambda: figures_with(book, datetime(2027, 1, 20, tzinfo=WIB)))
    status, _, body = call(api, "/budgets?region=32.71&year=2027")
    assert status == 200
    listed: list[dict[str, Any]] = json.loads(body)["budgets"]
    assert [(b["region_code"], b["fiscal_year"], b["spent_to_date"]) for b in listed] == [("32.71", 2027, 168_000)]
    status, _, body = call(api, "/budgets")
    assert len(json.loads(body)["budgets"]) == 3
    status, headers, body = call(api, "/budgets.csv?region=32.71")
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert headers["content-type"].startswith("text/csv")
    assert [(r["fiscal_year"], r["reserved"], r["remaining"]) for r in rows] == [
        ("2027", "1680000", "98320000"),
        ("2028", "0", "100000000"),
    ]
    assert rows[0]["full_coverage_estimated_workers"] == "317633"
    assert call(api, "/budgets?year=20x7")[0] == 400
    assert call(api, "/budgets?region=99.99")[0] == 404


def test_a_held_request_counts_as_a_hold_where_it_was_asked_and_a_verdict_counts_nothing() -> None:
    key = ev.BudgetKey(region_code="32.71", fiscal_year=2027, funding_source=ev.BudgetSource.APBD)
    held = ev.RequestHeld(
        source="test",
        time=datetime(2027, 3, 5, 3, 0, tzinfo=UTC),
        data=ev.Held(
            request_id="r-1",
            partner_id="bogor-hr",
            request_event_id="q-1",
            action=ev.RequestAction.ENROLL,
            reasons=[
                ev.RejectionReason(code="BUDGET_EXHAUSTED", message_id="anggaran habis", message_en="over budget")
            ],
            region_code="32.71",
            segment=ev.Segment.BPU,
            nik_masked="3271**********01",
            nik_hash="h",
            budget=key,
            required=168_000,
            available=100_000,
        ),
    )
    assert effects(held) == {
        "32.71": {"flow/holds/total": 1, "flow/holds/day/2027-03-05": 1, "flow/holds/month/2027-03": 1}
    }
    decided = ev.HoldDecidedEvent(
        source="test",
        data=ev.HoldDecided(
            request_id="d-1",
            partner_id="bogor-finance",
            request_event_id="q-2",
            held_partner_id="bogor-hr",
            held_request_id="r-1",
            resolution=ev.HoldResolution.APPROVED,
            budget=key,
        ),
    )
    assert effects(decided) == {}


def test_the_region_page_has_a_budget_panel_only_where_the_region_has_a_budget() -> None:
    book = BudgetBook()
    book.keep(record_of(position(1), position(2, reserved=30_000_000, at=JAN_1 + timedelta(days=30))))
    dashboard = Dashboard(lambda: figures_with(book))
    status, _, body = call(dashboard, "/dashboard/32.71?lang=en")
    page = body.decode()
    assert status == 200
    assert 'id="budgets"' in page
    assert "Rp70,000,000" in page  # remaining
    assert "2.3 months" in page  # runway
    assert "/budgets.csv?region=32.71" in page
    assert 'id="budgets"' not in call(dashboard, "/dashboard/32.73?lang=en")[2].decode()


class CountingBudgetStore:
    """What `BudgetLedger` asks of a store: saves (kept), every stored sequence (the scans counted)."""

    def __init__(self) -> None:
        self.scans = 0
        self.saved: list[BudgetRecord] = []

    async def save_budgets(self, records: Sequence[BudgetRecord], _known: Container[str]) -> set[str]:
        self.saved.extend(records)
        return set()

    async def budget_sequences(self) -> dict[str, int]:
        self.scans += 1
        return {}

    async def load_budgets(self, _keys: Any = None) -> list[BudgetRecord]:
        return []


class TwoPartitions:
    def partitions_for_topic(self, _topic: str) -> set[int]:
        return {0, 1}


def test_the_stored_budgets_are_read_again_only_while_another_instance_may_have_stored_some() -> None:
    """The read is a scan of every budget: an instance reading the whole budget topic reads the store once
    after each rebalance, not before every round of snapshots."""
    store = CountingBudgetStore()
    readers = BudgetReaders("budget", TwoPartitions)
    ledger = BudgetLedger(store, COST, Metrics.register(CollectorRegistry()), readers=readers)
    both = {TopicPartition("budget", 0), TopicPartition("budget", 1)}

    async def rounds(n: int) -> int:
        before = store.scans
        for _ in range(n):
            await ledger.refresh()
        return store.scans - before

    async def scenario() -> list[int]:
        seen = [await rounds(3)]  # not assigned yet: every round reads
        await readers.on_partitions_assigned({TopicPartition("budget", 0)})
        seen.append(await rounds(3))  # half the topic: another instance stores the rest
        await readers.on_partitions_revoked({TopicPartition("budget", 0)})
        await readers.on_partitions_assigned(both)
        seen.append(await rounds(3))  # the whole topic: one read after the rebalance, then none
        await readers.on_partitions_revoked(both)
        await readers.on_partitions_assigned(both)
        seen.append(await rounds(3))  # lost and got back: what another stored meanwhile is read once
        return seen

    assert asyncio.run(scenario()) == [3, 3, 1, 1]


def test_a_batch_stores_one_record_per_budget_the_same_as_storing_each_position_in_turn() -> None:
    """Registration sends a position per budget per batch of its own: a batch of reporting's holds several of
    one budget, and only the last record is written, with the samples of every position before it."""
    hours = [position(n, reserved=n * 1_000, at=JAN_1 + timedelta(hours=n * 7)) for n in range(1, 9)]
    other = position(1, region="32.73", reserved=5)
    batch = [*hours[:5], other, hours[2], *hours[5:]]  # an old one redelivered among them
    store = CountingBudgetStore()
    ledger = BudgetLedger(store, COST, Metrics.register(CollectorRegistry()))
    asyncio.run(ledger.record(batch))

    one_by_one = BudgetBook()
    for each in [*hours, other]:
        record = one_by_one.apply(each)
        if record is not None:
            one_by_one.keep(record)
    assert [r.key for r in store.saved] == [hours[0].key, other.key]
    assert ledger.book.records == one_by_one.records
    assert len(ledger.book.records[hours[0].key].samples) > 1
