"""Never overshoot: two registration instances deciding one region's APBD enrollments at once, a rebalance when
the second joins and a kill -9 of the first, against the real broker and FerretDB. The budget's ledger is one
document changed by compare-and-swap (FerretDB v1 has no transactions): exactly as many workers as the
allocation pays for are enrolled, every other request is held, each request is answered with one outcome, and
no position the ledger ever published reserves more than the allocation.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.registration.domain.budget import commitment
from shared import events as ev
from tests.budget_requests import BUDGET, PARTNERS, START, TODAY, allocation, enrollment
from tests.support import ServiceProcess, consume_until, publish_events, registration_env

pytestmark = pytest.mark.e2e

REQUESTS = 240
CAPACITY = 60  # workers the allocation pays for


def _outcomes(records: list[Any]) -> dict[str, set[str]]:
    """Outcome event ids by request id (a redelivered batch publishes the very same event again)."""
    found: dict[str, set[str]] = {}
    for record in records:
        outcome = ev.outcome_adapter.validate_json(record.value)
        found.setdefault(outcome.data.request_id, set()).add(outcome.id)
    return found


@pytest.mark.timeout(600)
async def test_two_instances_a_rebalance_and_a_kill_never_reserve_past_the_allocation(
    tmp_path: Path,
    service_env: dict[str, str],
    kafka_bootstrap: str,
    unique: str,
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    seed = tmp_path / "partners.json"
    seed.write_text(json.dumps(PARTNERS))
    env = {**registration_env(service_env, unique, seed), "REGISTRATION_BATCH_MAX_RECORDS": "20"}
    first, second = (ServiceProcess("registration", env, tmp_path / f"registration-{n}.log") for n in (1, 2))
    requests, outcomes, budget = f"requests.{unique}", f"outcomes.{unique}", f"budget.{unique}"
    each = sum(commitment(enrollment("x", 1).data, START, TODAY.year).values())
    try:
        first.start()
        await first.wait_ready()
        declared = allocation("apbd", CAPACITY * each)
        await publish_events(kafka_bootstrap, requests, [(BUDGET, declared)])
        stream = [enrollment(f"e-{n}", n) for n in range(1, REQUESTS + 1)]
        await publish_events(kafka_bootstrap, requests, [(e.data.worker.nik, e) for e in stream])
        second.start()  # joins the group while the first is deciding: a rebalance mid-stream
        await second.wait_ready()
        await consume_until(kafka_bootstrap, outcomes, lambda rs: len(_outcomes(rs)) >= REQUESTS // 4, timeout=180)
        first.kill()  # kill -9: its batches in flight are redelivered to the second and decided again
        records = await consume_until(kafka_bootstrap, outcomes, lambda rs: len(_outcomes(rs)) >= REQUESTS, timeout=300)
    finally:
        first.kill()
        second.stop()

    answered = _outcomes(records)
    assert all(len(ids) == 1 for ids in answered.values()), "a request was answered with two different outcomes"
    kinds = [ev.outcome_adapter.validate_json(r.value) for r in records]
    by_request = {o.data.request_id: o for o in kinds}
    registered = [o for o in by_request.values() if isinstance(o, ev.ParticipantRegistered)]
    held = [o for o in by_request.values() if isinstance(o, ev.RequestHeld)]
    assert (len(registered), len(held)) == (CAPACITY, REQUESTS - CAPACITY)

    database = mongo[f"registration_{unique}"]
    assert await database["participants"].count_documents({}) == CAPACITY
    ledger = await _settled(database)
    assert (ledger["reserved"], ledger["workers"]) == (CAPACITY * each, CAPACITY)
    assert len(json.loads(ledger["holds"])) == REQUESTS - CAPACITY

    positions = [
        e.data
        for e in (
            ev.budget_event_adapter.validate_json(r.value)
            for r in await consume_until(kafka_bootstrap, budget, lambda rs: _final(rs, each), timeout=60)
        )
        if isinstance(e, ev.BudgetPositionChanged)
    ]
    assert all(p.reserved <= CAPACITY * each for p in positions), "a position reserved past the allocation"


def _final(records: list[Any], each: int) -> bool:
    """The position that shows every request decided (later ones only repeat it)."""
    for record in records:
        event = ev.budget_event_adapter.validate_json(record.value)
        if isinstance(event, ev.BudgetPositionChanged):
            p = event.data
            if (p.reserved, p.holds_waiting) == (CAPACITY * each, REQUESTS - CAPACITY):
                return True
    return False


async def _settled(database: Any) -> dict[str, Any]:
    """The ledger once the last batch's entries are settled (settling follows the outcomes' publication). Read
    from its newest version, the truth: the `budgets` summary is written at settle only and may lag behind a
    later batch's entries (services/registration/budgets.py)."""
    for _ in range(60):
        ledger = await database["budget_versions"].find_one({"budget": BUDGET}, sort=[("sequence", -1)])
        if ledger is not None and json.loads(ledger["pending"]) == {}:
            return dict(ledger)
        await asyncio.sleep(0.5)
    raise AssertionError(f"entries still pending: {ledger}")
