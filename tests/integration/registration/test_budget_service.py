"""The budget side of registration as a separate process, against the real broker and MongoDB server: a finance
office declares an allocation, enrollments fill it to the exact Rupiah, the next one is held, a second principal
approves (the budget re-checked) or refuses, and a downward revision holds new enrollments without undoing any.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.registration.budgets import newest_ledgers
from services.registration.domain.budget import commitment
from shared import events as ev
from tests.budget_requests import FINANCE, PARTNERS, SENDER, START, TODAY, allocation, enrollment, verdict
from tests.support import ServiceProcess, consume_until, publish_events, registration_env

pytestmark = pytest.mark.integration


@dataclass
class Running:
    service: ServiceProcess
    bootstrap: str
    requests: str
    outcomes: str
    budget: str
    database: str


@pytest.fixture
async def registration(
    tmp_path: Path, service_env: dict[str, str], kafka_bootstrap: str, unique: str
) -> AsyncIterator[Running]:
    seed = tmp_path / "partners.json"
    seed.write_text(json.dumps(PARTNERS))
    env = {**registration_env(service_env, unique, seed), "REGISTRATION_BATCH_MAX_RECORDS": "200"}
    running = Running(
        ServiceProcess("registration", env, tmp_path / "registration.log"),
        kafka_bootstrap,
        f"requests.{unique}",
        f"outcomes.{unique}",
        f"budget.{unique}",
        f"registration_{unique}",
    )
    running.service.start()
    try:
        await running.service.wait_ready()
        yield running
    finally:
        running.service.stop()


async def _send(running: Running, events: Iterable[ev.CloudEvent[Any]]) -> None:
    await publish_events(running.bootstrap, running.requests, [(e.subject or e.id, e) for e in events])


async def _answers(running: Running, wanted: dict[str, int]) -> dict[str, list[ev.Outcome]]:
    """Outcomes by request id, once each wanted id has at least that many."""

    def by_id(records: list[Any]) -> dict[str, list[ev.Outcome]]:
        found: dict[str, list[ev.Outcome]] = {}
        for record in records:
            outcome = ev.outcome_adapter.validate_json(record.value)
            found.setdefault(outcome.data.request_id, []).append(outcome)
        return found

    records = await consume_until(
        running.bootstrap,
        running.outcomes,
        lambda rs: all(len(by_id(rs).get(k, [])) >= n for k, n in wanted.items()),
        timeout=90,
    )
    return by_id(records)


async def _position(running: Running, done: Any) -> ev.BudgetPosition:
    """The latest position of the budget once `done(position)`."""

    def latest(records: list[Any]) -> ev.BudgetPosition | None:
        positions = [
            e.data
            for e in (ev.budget_event_adapter.validate_json(r.value) for r in records)
            if isinstance(e, ev.BudgetPositionChanged)
        ]
        return max(positions, key=lambda p: p.sequence) if positions else None

    records = await consume_until(
        running.bootstrap, running.budget, lambda rs: (p := latest(rs)) is not None and done(p), timeout=90
    )
    position = latest(records)
    assert position is not None
    return position


async def test_an_allocation_is_filled_to_the_rupiah_then_held_approved_and_refused(  # noqa: PLR0915 - one story
    registration: Running, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    each = sum(commitment(enrollment("x", 1).data, START, TODAY.year).values())
    assert each > 0

    # Declared for exactly two workers; the third is held, not rejected and not applied.
    await _send(registration, [allocation("apbd-1", 2 * each)])
    await _position(registration, lambda p: p.allocation == 2 * each)
    await _send(registration, [enrollment("e-1", 1), enrollment("e-2", 2), enrollment("e-3", 3)])
    answers = await _answers(registration, {"e-1": 1, "e-2": 1, "e-3": 1})
    assert isinstance(answers["e-1"][0], ev.ParticipantRegistered)
    assert isinstance(answers["e-2"][0], ev.ParticipantRegistered)
    held = answers["e-3"][0]
    assert isinstance(held, ev.RequestHeld)
    assert [r.code for r in held.data.reasons] == ["BUDGET_EXHAUSTED"]
    assert (held.data.required, held.data.available) == (each, 0)
    position = await _position(registration, lambda p: p.holds_waiting == 1)
    assert (position.reserved, position.workers, position.allocation) == (2 * each, 2, 2 * each)
    database = mongo[registration.database]
    assert await database["participants"].count_documents({}) == 2

    # The sender may not decide its own held request; the finance office may, and the budget is checked again.
    await _send(registration, [verdict("v-self", "e-3", ev.HoldVerdict.APPROVE, by=SENDER)])
    await _send(registration, [verdict("v-1", "e-3", ev.HoldVerdict.APPROVE)])
    answers = await _answers(registration, {"v-self": 1, "v-1": 1, "e-3": 2})
    assert [r.code for r in answers["v-self"][0].data.reasons] == ["HOLD_SELF_DECISION"]  # type: ignore[union-attr]
    assert isinstance(answers["v-1"][0], ev.HoldDecidedEvent)
    assert isinstance(answers["e-3"][1], ev.RequestHeld)  # approved, but the allocation still has no room

    # The APBD-P raises the allocation: approved again, the worker is enrolled, with who approved it.
    await _send(registration, [allocation("apbd-p", 3 * each)])
    await _position(registration, lambda p: p.allocation_version == 2)
    await _send(registration, [verdict("v-2", "e-3", ev.HoldVerdict.APPROVE)])
    answers = await _answers(registration, {"e-3": 3})
    registered = answers["e-3"][2]
    assert isinstance(registered, ev.ParticipantRegistered)
    assert registered.data.approved_by == FINANCE
    position = await _position(registration, lambda p: p.reserved == 3 * each and p.holds_waiting == 0)
    assert position.workers == 3
    history = await database["history"].find_one({"hold": "APPROVED"})
    assert history is not None
    assert history["decided_by"] == FINANCE

    # Revised below what is reserved: the next enrollment is held, the accepted ones stand; then refused.
    await _send(registration, [allocation("apbd-cut", each)])
    await _position(registration, lambda p: p.allocation == each)
    await _send(registration, [enrollment("e-4", 4)])
    answers = await _answers(registration, {"e-4": 1})
    assert isinstance(answers["e-4"][0], ev.RequestHeld)
    assert answers["e-4"][0].data.available == each - 3 * each
    await _send(registration, [verdict("v-3", "e-4", ev.HoldVerdict.REFUSE)])
    answers = await _answers(registration, {"e-4": 2, "v-3": 1})
    refused = answers["e-4"][1]
    assert isinstance(refused, ev.RequestRejected)
    assert [r.code for r in refused.data.reasons] == ["HOLD_REFUSED"]
    position = await _position(registration, lambda p: p.holds_waiting == 0 and p.allocation == each)
    assert (position.reserved, position.workers) == (3 * each, 3)

    # A partner's re-send of an accepted request is answered again, never reserved twice.
    await _send(registration, [enrollment("e-1", 1)])
    answers = await _answers(registration, {"e-1": 2})
    assert answers["e-1"][1].id == answers["e-1"][0].id
    ledger = (await newest_ledgers(database, [key := f"32.71|{TODAY.year}|APBD"]))[key]
    assert (ledger.reserved, ledger.pending) == (3 * each, {})
