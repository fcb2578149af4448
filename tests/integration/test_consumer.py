"""The shared batch consumer on the real broker: offsets are committed only after the handler's effects.

Every service subscribes through `shared.consumer.batch_subscriber`, so these are the delivery guarantees
all three rest on: a batch whose handler fails is read again and nothing of it is committed; a batch handled
is committed once; a service that commits after its own state writes (`commit=False`) is left to do so; a
poison pill (a record the handler raises on every time, for a reason other than infrastructure trouble) is
dead-lettered after a bounded number of tries and does not block its partition, while infrastructure trouble
dead-letters nothing however long it lasts.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Counter
from pymongo.errors import AutoReconnect

from shared import consumer
from shared.consumer import Batches, Records, batch_subscriber
from shared.crypto import Sealer
from shared.events import DeadLetterRecorded
from shared.messaging import DeadLetters
from tests.support import consume_until

pytestmark = pytest.mark.integration

COUNT = 20


async def _topic_with_records(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name=topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(COUNT):
            await producer.send_and_wait(topic, f"r{i}".encode(), key=f"k{i % 5}".encode())
    finally:
        await producer.stop()


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return sum(meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset > 0)


async def _run(  # noqa: PLR0913 - one consumer's facts
    bootstrap: str,
    topic: str,
    group: str,
    handle: Callable[[Records], Any],
    done: asyncio.Event,
    *,
    dead_letters: DeadLetters | None = None,
) -> Counter:
    failures = Counter("failures", "batches read again", registry=CollectorRegistry())
    broker = KafkaBroker(bootstrap)
    batch_subscriber(
        broker,
        Batches(topic, group, max_records=50, timeout_ms=50, dead_letters=dead_letters),
        handle,
        failures=failures,
        title="test",
        description="test",
        back_off=0.1,
    )
    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), 60)
    return failures


async def test_a_failed_batch_is_read_again_and_committed_only_once_handled(kafka_bootstrap: str, unique: str) -> None:
    topic, group = f"consumer.{unique}", f"consumer-{unique}"
    await _topic_with_records(kafka_bootstrap, topic)
    handled: list[bytes] = []
    attempts = 0
    done = asyncio.Event()

    async def handle(records: Sequence[Any]) -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("the store is down")
        handled.extend(r.value for r in records)
        if len(handled) >= COUNT:
            done.set()

    failures = await _run(kafka_bootstrap, topic, group, handle, done)

    assert failures._value.get() == 1
    # Nothing lost (the failed batch came again), nothing doubled (a handled batch is not delivered again).
    assert sorted(handled) == sorted(f"r{i}".encode() for i in range(COUNT))
    assert await _committed(kafka_bootstrap, group, topic) == COUNT


async def test_commit_false_leaves_committing_to_the_service_and_rewind_is_its_own(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, group = f"consumer.{unique}", f"consumer-{unique}"
    await _topic_with_records(kafka_bootstrap, topic)
    handled: list[bytes] = []
    rewound: list[set[TopicPartition]] = []
    failed_once = False
    done = asyncio.Event()

    async def handle(records: Sequence[Any]) -> None:
        nonlocal failed_once
        if not failed_once:
            failed_once = True
            raise RuntimeError("the store is down")
        handled.extend(r.value for r in records)
        if len(set(handled)) >= COUNT:
            done.set()

    def rewind(records: Records) -> None:
        # This service keeps no cursor of its own: it asks for the records again by seeking to the first.
        rewound.append({TopicPartition(r.topic, r.partition) for r in records})
        first: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            first[tp] = min(first.get(tp, r.offset), r.offset)
        for tp, offset in first.items():
            consumer.seek(tp, offset)

    failures = Counter("failures", "batches read again", registry=CollectorRegistry())
    broker = KafkaBroker(kafka_bootstrap)
    subscriber = batch_subscriber(
        broker,
        Batches(topic, group, max_records=50, timeout_ms=50),
        handle,
        failures=failures,
        title="test",
        description="test",
        commit=False,
        rewind=rewind,
        back_off=0.1,
    )
    async with broker:
        await broker.start()
        consumer = subscriber.consumer
        assert consumer is not None
        await asyncio.wait_for(done.wait(), 60)

    assert failures._value.get() == 1
    assert len(rewound) == 1
    assert set(handled) == {f"r{i}".encode() for i in range(COUNT)}
    assert await _committed(kafka_bootstrap, group, topic) == 0  # the service commits after its state writes


class UnforeseenValueError(ValueError):
    """What a domain raises on a value no rule expected: not infrastructure trouble."""


async def test_a_poison_pill_is_dead_lettered_after_bounded_tries_and_its_partition_moves_on(
    kafka_bootstrap: str, unique: str
) -> None:
    topic, group, letters_topic = f"consumer.{unique}", f"consumer-{unique}", f"consumer.deadletters.{unique}"
    await _topic_with_records(kafka_bootstrap, topic)
    sealer = Sealer(base64.b64encode(os.urandom(32)).decode())
    poison = b"r7"  # key k2: its partition holds other records behind it
    handled: list[bytes] = []
    tries = 0
    done = asyncio.Event()

    async def handle(records: Sequence[Any]) -> None:
        nonlocal tries
        if any(r.value == poison for r in records):
            tries += len(records) == 1
            raise UnforeseenValueError("the domain met a value it did not expect")
        handled.extend(r.value for r in records)
        if len(set(handled)) >= COUNT - 1:
            done.set()

    await _run(kafka_bootstrap, topic, group, handle, done, dead_letters=DeadLetters("test", letters_topic, sealer))

    records = await consume_until(kafka_bootstrap, letters_topic, lambda r: len(r) >= 1)
    letter = DeadLetterRecorded.model_validate_json(records[0].value)
    assert len(records) == 1
    assert sealer.open(letter.data.value_sealed) == poison  # the original bytes
    assert letter.data.error_type == "HandlerFailed"
    assert "UnforeseenValueError: the domain met a value it did not expect" in letter.data.error
    assert tries == 3  # Batches.attempts, alone
    assert set(handled) == {f"r{i}".encode() for i in range(COUNT)} - {poison}
    # The offset moved past the poison pill: every record is committed.
    deadline = asyncio.get_running_loop().time() + 30
    while await _committed(kafka_bootstrap, group, topic) < COUNT:
        assert asyncio.get_running_loop().time() < deadline, "the poison pill's offset was not committed"
        await asyncio.sleep(0.2)


async def test_infrastructure_trouble_is_waited_out_and_dead_letters_nothing(kafka_bootstrap: str, unique: str) -> None:
    topic, group, letters_topic = f"consumer.{unique}", f"consumer-{unique}", f"consumer.deadletters.{unique}"
    await _topic_with_records(kafka_bootstrap, topic)
    sealer = Sealer(base64.b64encode(os.urandom(32)).decode())
    handled: list[bytes] = []
    outage = 8  # more failures than Batches.attempts: a store down for a while
    done = asyncio.Event()

    async def handle(records: Sequence[Any]) -> None:
        nonlocal outage
        if outage:
            outage -= 1
            raise AutoReconnect("the store is down")
        handled.extend(r.value for r in records)
        if len(set(handled)) >= COUNT:
            done.set()

    failures = await _run(
        kafka_bootstrap, topic, group, handle, done, dead_letters=DeadLetters("test", letters_topic, sealer)
    )

    assert failures._value.get() == 8
    assert set(handled) == {f"r{i}".encode() for i in range(COUNT)}
    with pytest.raises(TimeoutError):
        await consume_until(kafka_bootstrap, letters_topic, lambda r: len(r) >= 1, timeout=3)


async def test_records_that_arrive_while_a_batch_is_handled_all_come_in_the_next_batch(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aiokafka holds one fetch per partition until it is read: without the top-up, the records that arrived
    while a batch was handled were split between the next batch (the first of them) and the one after it."""
    monkeypatch.setattr(consumer, "TOP_UP_MS", 2000)  # the mechanism, not this machine's fetch time
    topic, group = f"consumer.{unique}", f"consumer-{unique}"
    await _topic_with_records(kafka_bootstrap, topic)
    late = [f"late{i}".encode() for i in range(10)]
    batches: list[list[bytes]] = []
    done = asyncio.Event()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()

    async def handle(records: Sequence[Any]) -> None:
        batches.append([r.value for r in records])
        if len(batches) == 1:
            for i, value in enumerate(late):  # they reach the broker one by one while this batch is handled
                await producer.send_and_wait(topic, value, key=f"k{i % 5}".encode())
                await asyncio.sleep(0.03)
        if sum(map(len, batches)) >= COUNT + len(late):
            done.set()

    try:
        await _run(kafka_bootstrap, topic, group, handle, done)
    finally:
        await producer.stop()
    with_late = [batch for batch in batches if set(batch) & set(late)]
    assert len(with_late) == 1, batches
    assert set(late) <= set(with_late[0])
