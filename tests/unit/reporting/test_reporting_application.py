"""The application layer and the outcome handler, against an in-memory store, consumer positions and broker.

A partition the listener failed to load is adopted by the first batch that reads it (and that batch's records
of it are read again from the stored offset); after a failure the consumer goes back to the state's offsets;
a write commits what it wrote to Kafka; an unreadable record is dead-lettered once, before the state moves
past it, and not again when it is read a second time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry

from services.reporting.handlers import OutcomeHandler
from services.reporting.projection import Projection
from services.reporting.service import Metrics, Reporting
from shared.crypto import Sealer, new_key
from shared.messaging import DeadLetters
from tests.unit.reporting.memory_store import MemoryStore
from tests.unit.reporting.outcomes import Simulation

TOPIC = "outcomes"


class Positions:
    """The consumer's partitions as the application layer sees them."""

    def __init__(self, assigned: set[int]) -> None:
        self.partitions = assigned
        self.seeks: dict[int, int] = {}
        self.committed: dict[int, int] = {}

    def assigned(self) -> set[int]:
        return self.partitions

    def seek(self, partition: int, offset: int) -> None:
        self.seeks[partition] = offset

    async def commit(self, written: Mapping[int, int]) -> None:
        self.committed.update(written)


class Broker:
    """Records what is published and where the state of partition 0 was at that moment; acknowledges at once."""

    def __init__(self, state: Callable[[], int | None]) -> None:
        self.state = state
        self.published: list[tuple[str, int | None]] = []

    async def publish(self, value: bytes, topic: str, **_: Any) -> asyncio.Future[None]:  # noqa: ARG002
        self.published.append((topic, self.state()))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def reporting_with(store: MemoryStore, positions: Positions, registry: CollectorRegistry | None = None) -> Reporting:
    metrics = Metrics.register(registry or CollectorRegistry())
    return Reporting(Projection(store, TOPIC, window=100), positions, metrics)


def record(partition: int, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"key", value, None, len(b"key"), len(value), ())


def outcome_values(count: int) -> list[bytes]:
    events = Simulation(3).run(count).events[:count]
    return [event.model_dump_json().encode() for _, event in events]


def test_a_partition_the_listener_did_not_load_is_adopted_and_read_again_from_its_stored_offset() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        store.cursor_docs[TOPIC, 1] = (40, b"")
        positions = Positions({0, 1})
        reporting = reporting_with(store, positions)
        await reporting.projection.assign([0])
        assert await reporting.adopt([0, 1, 2]) == {1}  # 0 is owned already, 2 is not this consumer's
        assert reporting.projection.owned == {0, 1}
        assert positions.seeks == {1: 40}
        assert await reporting.adopt([1]) == set()

    asyncio.run(scenario())


def test_after_a_failure_owned_partitions_are_read_again_from_the_state_and_a_write_is_committed() -> None:
    async def scenario() -> None:
        store = MemoryStore()
        store.cursor_docs[TOPIC, 0] = (7, b"")
        positions = Positions({0, 1})
        reporting = reporting_with(store, positions)
        await reporting.projection.assign([0])
        await reporting.fold({0: [(7, None), (8, None)]})
        reporting.rewind([0, 1, 3])  # 1 is not owned: its next batch adopts it; 3 is not assigned
        assert positions.seeks == {0: 9}
        assert positions.committed == {}
        await reporting.write_state()
        assert positions.committed == {0: 9}
        assert store.cursor_docs[TOPIC, 0][0] == 9

    asyncio.run(scenario())


def test_an_unreadable_record_is_dead_lettered_once_before_the_state_moves_past_it() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        reporting = reporting_with(MemoryStore(), Positions({0}), registry)
        await reporting.projection.assign([0])
        broker = Broker(lambda: reporting.projection.next_offset(0))
        dead_letters = DeadLetters("reporting", "dead", Sealer(new_key()))
        handler = OutcomeHandler(TOPIC, 10_000, lambda: reporting, broker, dead_letters, 3)  # type: ignore[arg-type]
        good = outcome_values(2)
        batch = [record(0, 0, good[0]), record(0, 1, b"{not json"), record(0, 2, good[1])]
        await handler.handle(batch)
        assert broker.published == [("dead", 0)]  # published while the state was still before it
        assert reporting.projection.next_offset(0) == 3
        assert registry.get_sample_value("reporting_outcomes_applied_total") == 2
        await handler.handle(batch)  # read again (a rewind, a restart before the write): no second letter
        assert broker.published == [("dead", 0)]
        assert registry.get_sample_value("reporting_outcomes_duplicate_total") == 0
        assert reporting.catching_up  # three records, as many as a batch may hold: more are waiting
        await handler.handle(batch[:2])
        assert not reporting.catching_up

    asyncio.run(scenario())
