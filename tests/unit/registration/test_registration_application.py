"""The application layer's order of steps, against in-memory repositories: rounds, the request log's replay,
the log written chunk by chunk, and what is published where. The real store is covered by the integration
tests; here the point is how many round trips a batch costs and which decision stands."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord

from services.registration.domain.decisions import schema_rejection
from services.registration.domain.nik import format_nik
from services.registration.domain.participation import Context, Decision, ParticipantRecord, Partner
from services.registration.handlers import Intake
from services.registration.service import LOG_CHUNK, Batch, Registration
from shared import events as ev
from shared.crypto import Sealer
from shared.messaging import DeadLetters, Keyed
from shared.reasons import ReasonCode
from shared.regions import Regions

TODAY = date(2025, 11, 24)
COVERAGE_START = date(2025, 12, 1)  # the enrollments' (conftest); a change takes effect from it at the earliest
NOW = datetime(2025, 11, 24, 2, 0, tzinfo=UTC)
OUTCOMES = "outcomes"
PARTNER = Partner(
    partner_id="bogor-hr",
    name="BKPSDM Kota Bogor",
    regions=frozenset({"32.71"}),
    segments=frozenset({ev.Segment.BPU}),
    funding_sources=frozenset({ev.FundingSource.APBD}),
)


class MemoryStore:
    """The three repositories in memory, counting the round trips a batch makes."""

    def __init__(self) -> None:
        self.log: dict[str, Decision] = {}
        self.participants: dict[str, ParticipantRecord] = {}
        self.partners = {PARTNER.partner_id: PARTNER}
        self.calls: list[tuple[str, int]] = []

    async def load_partners(self) -> dict[str, Partner]:
        self.calls.append(("load_partners", len(self.partners)))
        return dict(self.partners)

    async def participations(self, participant_ids: Iterable[str]) -> dict[str, ParticipantRecord]:
        ids = list(participant_ids)
        self.calls.append(("participations", len(ids)))
        return {pid: self.participants[pid] for pid in ids if pid in self.participants}

    async def record(self, decisions: Sequence[Decision]) -> set[str]:
        self.calls.append(("record", len(decisions)))
        await asyncio.sleep(0)
        there = {d.key for d in decisions if d.key in self.log}
        for decision in decisions:
            self.log.setdefault(decision.key, decision)
        return there

    async def recorded(self, keys: Iterable[str]) -> dict[str, Decision]:
        wanted = list(keys)
        self.calls.append(("recorded", len(wanted)))
        return {key: self.log[key] for key in wanted if key in self.log}

    async def apply(self, decisions: Sequence[Decision]) -> None:
        self.calls.append(("apply", len(decisions)))
        for decision in decisions:
            after = decision.participant
            stored = self.participants.get(after.participant_id) if after else None
            if after is not None and (stored is None or after.version > stored.version):
                self.participants[after.participant_id] = after


class Published:
    def __init__(self) -> None:
        self.records: list[Keyed] = []

    async def __call__(self, records: Sequence[Keyed]) -> None:
        self.records.extend(records)

    def outcomes(self, topic: str = OUTCOMES) -> list[Any]:
        return [ev.outcome_adapter.validate_json(r.value) for r in self.records if r.topic == topic]


@pytest.fixture
def ctx(regions: Regions) -> Context:
    return Context(today=TODAY, regions=regions, nik_secret=b"test-secret", now=NOW)


def registration(
    store: MemoryStore, published: Published, regions: Regions, *, per_partner: bool = False
) -> Registration:
    return Registration(
        request_log=store,
        participations=store,
        partners=store,
        publish=published,
        regions=regions,
        nik_secret=b"test-secret",
        outcomes_topic=OUTCOMES,
        partner_outcome_topics=per_partner,
    )


def nik(serial: int) -> str:
    return format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, serial)


def enroll(
    bpu: Callable[..., ev.EnrollmentRequest], make_worker: Any, request_id: str, serial: int, partner: str = "bogor-hr"
) -> ev.EnrollmentRequested:
    data = bpu(request_id=request_id, worker=make_worker(nik=nik(serial)))
    return ev.EnrollmentRequested(source=f"partner/{partner}", data=data)


def update(request_id: str, serial: int) -> ev.UpdateRequested:
    data = ev.UpdateRequest(
        request_id=request_id,
        nik=nik(serial),
        segment=ev.Segment.BPU,
        declared_income=2_000_000,
        effective_date=COVERAGE_START,
    )
    return ev.UpdateRequested(source="partner/bogor-hr", data=data)


def batch(requests: list[Any], answered: list[Decision] | None = None) -> Batch:
    return Batch(len(requests) + len(answered or []), requests, answered or [], [])


async def test_a_fresh_batch_costs_one_log_insert_and_no_lookup(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    requests = [enroll(bpu, make_worker, f"r{i}", i + 1) for i in range(3)]
    await registration(store, published, regions).handle(batch(requests), ctx)

    assert store.calls == [("load_partners", 1), ("participations", 3), ("record", 3), ("apply", 3)]
    assert [type(o) for o in published.outcomes()] == [ev.ParticipantRegistered] * 3
    assert len(store.participants) == 3


async def test_a_workers_second_request_is_decided_on_the_first_in_the_next_round(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    requests = [enroll(bpu, make_worker, "enroll", 1), enroll(bpu, make_worker, "other", 2), update("update", 1)]
    await registration(store, published, regions).handle(batch(requests), ctx)

    assert [c for c in store.calls if c[0] == "record"] == [("record", 2), ("record", 1)]
    outcomes = {o.data.request_id: o for o in published.outcomes()}
    assert [o.data.request_id for o in published.outcomes()] == ["enroll", "other", "update"]  # input order
    assert isinstance(outcomes["update"], ev.ParticipantUpdated)
    assert outcomes["update"].data.version == 2


async def test_a_redelivered_batch_is_answered_from_the_log_with_the_same_events(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    requests = [enroll(bpu, make_worker, "enroll", 1), update("update", 1)]
    service = registration(store, published, regions)
    await service.handle(batch(requests), ctx)
    first = [o.id for o in published.outcomes()]
    participants = dict(store.participants)

    await service.handle(batch(requests), ctx)

    assert [o.id for o in published.outcomes()] == first * 2
    assert store.participants == participants
    assert len(store.log) == 2


async def test_a_request_logged_before_stands_and_its_worker_is_read_again(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    service = registration(store, published, regions)
    enrollment = enroll(bpu, make_worker, "enroll", 1)
    await service.handle(batch([enrollment]), ctx)
    store.calls.clear()

    # A partner re-sends the enrollment with an update behind it: the enrollment is answered from the log and
    # the update is decided on the participation the store holds.
    await service.handle(batch([enrollment, update("update", 1)]), ctx)

    assert store.calls == [
        ("load_partners", 1),
        ("participations", 1),
        ("record", 1),
        ("recorded", 1),
        ("apply", 1),
        ("participations", 1),
        ("record", 1),
        ("apply", 2),
    ]
    registered, updated = published.outcomes()[1:]
    assert registered.id == published.outcomes()[0].id
    assert isinstance(updated, ev.ParticipantUpdated)
    assert updated.data.version == 2


async def test_the_same_request_twice_in_one_batch_is_answered_once(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    request = enroll(bpu, make_worker, "enroll", 1)
    await registration(store, published, regions).handle(batch([request, request]), ctx)

    assert len(published.outcomes()) == 1
    assert [c for c in store.calls if c[0] == "record"] == [("record", 1)]


async def test_a_round_is_logged_chunk_by_chunk_with_the_schema_rejections_first(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    count = LOG_CHUNK * 2 + 10
    requests = [enroll(bpu, make_worker, f"r{i}", i + 1) for i in range(count)]
    rejected = schema_rejection(
        event_id="raw-1", partner_id="bogor-hr", request_id="bad", code=ReasonCode.SCHEMA_INVALID, subject="x", ctx=ctx
    )
    await registration(store, published, regions).handle(batch(requests, [rejected]), ctx)

    assert [c for c in store.calls if c[0] == "record"] == [
        ("record", LOG_CHUNK + 1),
        ("record", LOG_CHUNK),
        ("record", 10),
    ]
    outcomes = published.outcomes()
    assert outcomes[0].data.request_id == "bad"
    assert len(outcomes) == count + 1


async def test_only_a_registered_partner_gets_a_copy_on_its_own_topic(
    bpu: Any, make_worker: Any, regions: Regions, ctx: Context
) -> None:
    store, published = MemoryStore(), Published()
    requests = [enroll(bpu, make_worker, "known", 1), enroll(bpu, make_worker, "stranger", 2, partner="nobody")]
    await registration(store, published, regions, per_partner=True).handle(batch(requests), ctx)

    assert [o.data.request_id for o in published.outcomes()] == ["known", "stranger"]
    own = published.outcomes("lindungi.partner.bogor-hr.outcomes.v1")
    assert [o.data.request_id for o in own] == ["known"]
    assert not [r for r in published.records if r.topic == "lindungi.partner.nobody.outcomes.v1"]


# --- decoding (handlers.py) ----------------------------------------------------------------------------------


class Captured:
    """Stands in for the application layer: keeps the batch the handler built."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.batches: list[Batch] = []

    def context(self) -> Context:
        return self.ctx

    async def handle(self, batch: Batch, ctx: Context) -> None:  # noqa: ARG002
        self.batches.append(batch)


def record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("requests", 0, offset, 0, 0, b"key", value, None, 3, len(value), ())


async def test_the_handler_sorts_records_into_requests_answers_and_dead_letters(
    bpu: Any, make_worker: Any, ctx: Context
) -> None:
    captured = Captured(ctx)
    sealer = Sealer("A" * 43 + "=")
    intake = Intake(captured, DeadLetters("registration", "deadletters", sealer), 2048)  # type: ignore[arg-type]
    valid = enroll(bpu, make_worker, "ok", 1).model_dump_json().encode()
    readable = (
        b'{"type": "id.lindungi.enrollment.requested", "source": "partner/bogor-hr", "data": {"request_id": "r"}}'
    )
    await intake.handle([record(0, valid), record(1, readable), record(2, b"\xffnot json"), record(3, b"x" * 4096)])

    [handled] = captured.batches
    assert handled.size == 4
    assert [r.data.request_id for r in handled.requests] == ["ok"]
    [answer] = handled.answered
    assert answer.key == "bogor-hr:r"
    assert [r.code for r in answer.outcome.data.reasons] == ["SCHEMA_INVALID"]
    letters = [ev.DeadLetterRecorded.model_validate_json(r.value) for r in handled.dead_letters]
    assert [(letter.data.offset, letter.data.error_type) for letter in letters] == [
        (2, "NotJson"),
        (3, "MessageTooLarge"),
    ]
    assert {r.topic for r in handled.dead_letters} == {"deadletters"}
