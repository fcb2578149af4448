"""The rebalance listener hands the loading of partition state to a task of its own.

aiokafka sends no heartbeat while `on_partitions_assigned` runs: a load that outlasts the session timeout
gets the member expelled, and the next member's load expels it in turn (the rebalance storm the reliability
run found while FerretDB was busy). These tests hold the store's load back and check that the callback
returns at once, that the consumer is sent to the stored offsets when the load ends, and that a load still
running when the partitions are revoked never completes an ownership that has already ended.
"""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from services.reporting.domain.partitions import PartitionState
from services.reporting.handlers import PartitionAssignments
from services.reporting.projection import Projection
from tests.unit.reporting.memory_store import MemoryStore

TOPIC = "outcomes"


class SlowStore(MemoryStore):
    """Loads wait until the test lets them go."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState:
        await self.gate.wait()
        return await super().load_partition(topic, partition, window)


class Consumer:
    """The part of AIOKafkaConsumer the listener uses."""

    def __init__(self, partitions: set[int]) -> None:
        self.assigned = {TopicPartition(TOPIC, p) for p in partitions}
        self.seeks: dict[int, int] = {}
        self.committed: dict[int, int] = {}

    def partitions_for_topic(self, topic: str) -> set[int]:
        assert topic == TOPIC
        return {0, 1, 2, 3}

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks[tp.partition] = offset

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update({tp.partition: n for tp, n in offsets.items()})


def setup(partitions: set[int]) -> tuple[SlowStore, Projection, Consumer, PartitionAssignments]:
    store = SlowStore()
    store.cursor_docs.update({(TOPIC, p): (100 + p, b"") for p in range(4)})
    projection = Projection(store, TOPIC, window=10)
    consumer = Consumer(partitions)
    return store, projection, consumer, PartitionAssignments(lambda: projection, TOPIC, lambda: consumer)


def test_the_callback_returns_before_the_state_is_loaded_and_the_load_then_seeks() -> None:
    async def scenario() -> None:
        store, projection, consumer, listener = setup({0, 2})
        await asyncio.wait_for(listener.on_partitions_assigned(consumer.assigned), 1)
        assert projection.owned == set()
        assert consumer.seeks == {}
        store.gate.set()
        assert listener._loading is not None
        await listener._loading
        assert projection.owned == {0, 2}
        assert consumer.seeks == {0: 100, 2: 102}
        # Kafka's offsets (monitoring) catch up with the stored cursors, even with nothing more to read.
        assert consumer.committed == {0: 100, 2: 102}

    asyncio.run(scenario())


def test_a_load_still_running_at_revocation_never_takes_the_partitions() -> None:
    async def scenario() -> None:
        store, projection, consumer, listener = setup({0, 1})
        await listener.on_partitions_assigned(consumer.assigned)
        await asyncio.wait_for(listener.on_partitions_revoked(set(consumer.assigned)), 1)
        store.gate.set()
        await asyncio.sleep(0.01)
        assert projection.owned == set()
        assert consumer.seeks == {}

    asyncio.run(scenario())


def test_a_partition_adopted_by_a_batch_first_is_not_loaded_again() -> None:
    async def scenario() -> None:
        store, projection, consumer, listener = setup({3})
        store.gate.set()
        await projection.assign([3])
        await projection.apply({3: [(103, None), (104, None)]})  # folded, not yet written
        await listener.on_partitions_assigned(consumer.assigned)
        assert listener._loading is not None
        await listener._loading
        assert projection.next_offset(3) == 105  # the state in memory, ahead of the store, is kept
        assert consumer.seeks == {3: 105}

    asyncio.run(scenario())
