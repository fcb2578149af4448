"""Reporting's budget figures against the real Kafka broker and the real MongoDB server, the service run as a
separate process.

Budget positions are published on the service's own budget topic the way registration publishes them (keyed
by the budget, a redelivered older sequence among them, an allocation record, one unreadable record), held
requests and a verdict on its outcome topic; the snapshot on the compacted aggregates topic, the API, the CSV
and the figures after a restart (read back from the store) must all say the same, in exact rupiah.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.reporting.app import service_topics
from services.reporting.domain.counters import WIB
from services.reporting.settings import ReportingSettings
from shared import events as ev
from shared.messaging import ensure_topics
from tests.integration.reporting.test_reporting_service import end_offsets, latest
from tests.support import ServiceProcess, consume_until, publish, publish_events
from tests.unit.reporting.outcomes import make_participant

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.integration

CITY = "32.71"  # Kota Bogor: a workforce estimate of 536,815 (docs/reporting.md)
NOW = datetime.now(UTC).replace(microsecond=0)  # the store keeps milliseconds: whole seconds compare equal
TODAY = NOW.astimezone(WIB).date()
KEY = ev.BudgetKey(region_code=CITY, fiscal_year=TODAY.year, funding_source=ev.BudgetSource.APBD)


@pytest.fixture
async def service(
    service_env: dict[str, str], kafka_bootstrap: str, mongodb_url: str, unique: str, tmp_path: Path
) -> AsyncIterator[ServiceProcess]:
    env = {
        **service_env,
        "REPORTING_OUTCOMES_TOPIC": f"outcomes.{unique}",
        "REPORTING_REGION_AGGREGATES_TOPIC": f"aggregates.{unique}",
        "REPORTING_DEAD_LETTERS_TOPIC": f"deadletters.{unique}",
        "REPORTING_BUDGET_TOPIC": f"budget.{unique}",
        "REPORTING_GROUP_ID": f"reporting-{unique}",
        "REPORTING_MONGODB_DATABASE": f"reporting_{unique}",
        "REPORTING_PUBLISH_INTERVAL_SECONDS": "0.3",
        "REPORTING_COMMIT_INTERVAL_SECONDS": "0.2",
    }
    fields: dict[str, Any] = {
        k.removeprefix("REPORTING_").lower(): v for k, v in env.items() if k.startswith("REPORTING_")
    }
    await ensure_topics(kafka_bootstrap, service_topics(ReportingSettings(**fields)))
    process = ServiceProcess("reporting", env, tmp_path / "reporting.log")
    process.start()
    try:
        await process.wait_ready()
        yield process
    finally:
        process.stop()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
        try:
            await client.drop_database(env["REPORTING_MONGODB_DATABASE"])
        finally:
            await client.close()


def position(sequence: int, at: datetime, reserved: int, workers: int, by_month: dict[str, int]) -> ev.BudgetPosition:
    return ev.BudgetPosition(
        **KEY.model_dump(),
        sequence=sequence,
        as_of=at,
        allocation=100_000_000,
        allocation_version=1,
        dprd_decision="Perda Kota Bogor 5/2025",
        reserved=reserved,
        workers=workers,
        by_month=by_month,
        holds_waiting=1 if sequence >= 3 else 0,
        holds_waiting_amount=1_680_000 if sequence >= 3 else 0,
    )


def changed(data: ev.BudgetPosition) -> tuple[str, ev.CloudEvent[Any]]:
    return KEY.key, ev.BudgetPositionChanged(source="lindungi/registration", subject=KEY.key, data=data)


def held(n: int, key: ev.BudgetKey) -> tuple[str, ev.CloudEvent[Any]]:
    return f"held-{n}", ev.RequestHeld(
        source="lindungi/registration",
        data=ev.Held(
            request_id=f"r-held-{n}",
            partner_id="bogor-hr",
            request_event_id=f"q-held-{n}",
            action=ev.RequestAction.ENROLL,
            reasons=[ev.RejectionReason(code="BUDGET_EXHAUSTED", message_id="anggaran habis", message_en="exhausted")],
            region_code=CITY,
            segment=ev.Segment.BPU,
            nik_masked="3271**********01",
            nik_hash=f"hash-held-{n}",
            budget=key,
            required=1_680_000,
            available=1_000_000,
        ),
    )


async def test_budget_positions_and_holds_reach_the_snapshot_the_api_and_the_csv(service: ServiceProcess) -> None:
    env = service.env
    bootstrap = env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"]
    today, key = TODAY, KEY
    months = {f"{today.year}-01": 5_000_000, f"{today.year}-12": 15_000_000}
    allocation = ev.AllocationRecordedEvent(
        source="lindungi/registration",
        data=ev.AllocationRecorded(
            **key.model_dump(),
            version=1,
            amount=100_000_000,
            effective_date=date(today.year, 1, 1),
            dprd_decision="Perda Kota Bogor 5/2025",
            declared_by="bogor-finance",
            request_id="alloc-1",
        ),
    )
    first = position(1, NOW - timedelta(days=20), 0, 0, {})
    second = position(2, NOW - timedelta(days=10), 10_000_000, 1, {f"{today.year}-01": 5_000_000})
    third = position(3, NOW, 20_000_000, 3, months)
    await publish_events(bootstrap, env["REPORTING_BUDGET_TOPIC"], [(key.key, allocation), changed(first)])
    await publish_events(bootstrap, env["REPORTING_BUDGET_TOPIC"], [changed(second), changed(third), changed(second)])
    await publish(bootstrap, env["REPORTING_BUDGET_TOPIC"], [(key.key.encode(), b"{not a budget event", {})])
    registered = ev.ParticipantRegistered(
        source="lindungi/registration",
        data=ev.Registered(
            request_id="r-1",
            partner_id="bogor-hr",
            request_event_id="q-1",
            version=1,
            participant=make_participant("p-1", region=CITY, kecamatan=f"{CITY}.01"),
        ),
    )
    decided = ev.HoldDecidedEvent(
        source="lindungi/registration",
        data=ev.HoldDecided(
            request_id="d-1",
            partner_id="bogor-finance",
            request_event_id="q-d-1",
            held_partner_id="bogor-hr",
            held_request_id="r-held-1",
            resolution=ev.HoldResolution.REFUSED,
            budget=key,
        ),
    )
    await publish_events(
        bootstrap, env["REPORTING_OUTCOMES_TOPIC"], [held(1, key), held(2, key), ("d-1", decided), ("p-1", registered)]
    )

    # --- what every reader must see ---
    spent = 5_000_000 + (15_000_000 if today.month == 12 else 0)
    months_left = 12 - today.month + 1
    estimated = 317_633  # round(536,815 x 0.5917)
    expected = {
        "sequence": 3,
        "allocation": 100_000_000,
        "reserved": 20_000_000,
        "workers": 3,
        "spent_to_date": spent,
        "remaining": 80_000_000,
        "reserved_ratio": 0.2,
        # 20,000,000 over the 20 days since the first position, per average month of 30.4375 days.
        "monthly_reservation_rate": 30_437_500,
        "runway_months": 2.6,  # 80,000,000 / 30,437,500 = 2.628
        "holds_waiting": 1,
        "holds_waiting_amount": 1_680_000,
    }
    expected_full = {
        "estimated_workers": estimated,
        "months_remaining": months_left,
        "cost_remaining_months": estimated * 16_800 * months_left,
        "cost_next_fiscal_year": 64_034_812_800,
        "uncovered_workers": estimated - 3,
        "gap_remaining_months": (estimated - 3) * 16_800 * months_left,
        "gap_next_fiscal_year": (estimated - 3) * 16_800 * 12,
    }

    def budget_matches(budget: dict[str, Any]) -> bool:
        full = budget.get("full_coverage") or {}
        return {k: budget.get(k) for k in expected} == expected and {
            k: full.get(k) for k in expected_full
        } == expected_full

    def snapshot_done(records: list[Any]) -> bool:
        city = latest(records).get(CITY)
        if city is None or len(city.budgets) != 1:
            return False
        return budget_matches(city.budgets[0].model_dump(mode="json")) and city.holds.get("total") == 2

    records = await consume_until(bootstrap, env["REPORTING_REGION_AGGREGATES_TOPIC"], snapshot_done, 60)
    city = latest(records)[CITY]
    assert city.holds == {"today": 2, "this_month": 2, "total": 2}
    assert city.enrollments["total"] == 1  # held requests are not enrollments; the registration after them is
    assert latest(records)["32"].budgets == []  # the city's budget is not the province's

    async with httpx.AsyncClient(base_url=service.url) as client:
        region = (await client.get(f"/regions/{CITY}")).json()
        assert [budget_matches(b) for b in region["budgets"]] == [True]
        listed = (await client.get("/budgets", params={"region": CITY, "year": today.year})).json()["budgets"]
        assert [budget_matches(b) for b in listed] == [True]
        assert (await client.get("/budgets", params={"year": today.year + 1})).json()["budgets"] == []
        rows = list(csv.DictReader(io.StringIO((await client.get("/budgets.csv")).text)))
    assert [(r["region_code"], r["sequence"], r["reserved"], r["remaining"], r["runway_months"]) for r in rows] == [
        (CITY, "3", "20000000", "80000000", "2.6")
    ]
    assert rows[0]["full_coverage_cost_next_fiscal_year"] == "64034812800"

    # Only the unreadable budget record was dead-lettered: not the allocation record, not the holds.
    letters = await end_offsets(bootstrap, env["REPORTING_DEAD_LETTERS_TOPIC"])
    assert sum(letters.values()) == 1

    # Restarted, the service serves the stored position with the same figures.
    service.stop()
    service.start()
    await service.wait_ready()
    async with httpx.AsyncClient(base_url=service.url) as client:
        listed = (await client.get("/budgets", params={"region": CITY})).json()["budgets"]
    assert [budget_matches(b) for b in listed] == [True]
