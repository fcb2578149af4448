"""Kafka for the harness: topics of its own, progress read from offsets, and a fast producer to pre-fill topics.

Progress is read from the broker, never from the process under test: the end offsets of the topic a service
writes, or the offsets its consumer group has committed (which every service commits only after the effects
of a batch are durable). Pre-filling uses confluent-kafka (librdkafka, installed with the `bench` extra) so
that writing a million records takes seconds and not the benchmark's time budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    GroupCoordinatorNotAvailableError,
    NonEmptyGroup,
    TopicAlreadyExistsError,
)
from aiokafka.protocol.admin import DeleteGroupsRequest
from confluent_kafka import Producer  # type: ignore[import-untyped]
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential_jitter

if TYPE_CHECKING:
    from collections.abc import Iterable

Record = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # key, value, headers


class Kafka:
    """One admin client and one group-less consumer for offsets, for the whole benchmark."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lindungi-bench")
        self._offsets: AIOKafkaConsumer | None = None  # started at its first use
        self._partitions: dict[str, int] = {}
        self.created: list[str] = []

    async def _offset_reader(self) -> AIOKafkaConsumer:
        if self._offsets is None:
            self._offsets = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap, group_id=None, client_id="lindungi-bench"
            )
            await self._offsets.start()
        return self._offsets

    async def _forget_offsets(self) -> None:
        if self._offsets is not None:
            await self._offsets.stop()
            self._offsets = None

    async def start(self) -> None:
        await self._admin.start()

    async def close(self) -> None:
        await self._forget_offsets()
        await self._admin.close()

    async def create_topic(self, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
        response = await self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, topic_configs=config or {})]
        )
        for _name, code, message in response.topic_errors:
            if code not in (0, TopicAlreadyExistsError.errno):
                raise RuntimeError(f"creating topic {name} failed: {code} {message}")
        self._partitions[name] = partitions
        self.created.append(name)
        await self._wait_for_metadata(name, partitions)

    async def _wait_for_metadata(self, name: str, partitions: int) -> None:
        for _ in range(100):
            (described,) = await self._admin.describe_topics([name])
            ready = [p for p in described["partitions"] if p.get("leader", -1) >= 0]
            if described["error_code"] == 0 and len(ready) == partitions:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {name} did not appear in the metadata")

    async def topics(self) -> list[str]:
        return list(await self._admin.list_topics())

    async def delete_topics(self, names: Iterable[str]) -> None:
        """Remove this run's topics (a million outcome events are a gigabyte or two on disk)."""
        existing = set(await self._admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            with contextlib.suppress(Exception):  # best effort: a failed clean-up must not lose the results
                await self._admin.delete_topics(doomed, timeout_ms=30_000)
            # The offset reader keeps asking for the metadata of every topic it has read offsets of, and the
            # broker creates a topic it is asked about (auto-creation, on for tests' scratch topics): a deleted
            # topic would come back, empty, beside the product's. The next reader knows none of them.
            await self._forget_offsets()
            for name in doomed:
                self._partitions.pop(name, None)

    async def groups(self) -> list[str]:
        # A broker just started answers "load in progress" until it has read its consumer offsets: with many
        # groups left by an interrupted run (what `--clean` is for), for several seconds.
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type((CoordinatorLoadInProgressError, GroupCoordinatorNotAvailableError)),
            stop=stop_after_delay(60),
            wait=wait_exponential_jitter(initial=0.5, max=5),
            reraise=True,
        ):
            with attempt:
                return [group for group, *_ in await self._admin.list_consumer_groups()]
        raise AssertionError("unreachable: tenacity reraises")

    async def delete_groups(self, names: Iterable[str], within: float = 30) -> None:
        """Remove this run's consumer groups. aiokafka's admin client has no call for it: the protocol's
        DeleteGroups request, which aiokafka ships, goes to each group's coordinator. A group keeps a member whose
        consumer did not leave on its way out (killed, or stopped while its group was rebalancing, as instances
        stopped together are) until the broker expires it (the session timeout, 10 s): a group still holding one
        is asked again for up to `within` seconds. Best effort past that (`--clean` removes it later)."""
        remaining = list(names)
        deadline = time.monotonic() + within
        with contextlib.suppress(Exception):
            while remaining:
                by_coordinator: dict[int, list[str]] = {}
                for group in remaining:
                    by_coordinator.setdefault(await self._admin.find_coordinator(group), []).append(group)
                remaining = []
                for node, groups in by_coordinator.items():
                    response = await self._admin._client.send(node, DeleteGroupsRequest(groups))  # noqa: SLF001 - see the docstring
                    remaining += [group for group, code in response.results if code == NonEmptyGroup.errno]
                if remaining and time.monotonic() < deadline:
                    await asyncio.sleep(1)
                else:
                    return

    async def _topic_partitions(self, topic: str) -> list[TopicPartition]:
        count = self._partitions.get(topic)
        if count is None:
            (described,) = await self._admin.describe_topics([topic])
            count = len(described["partitions"]) if described["error_code"] == 0 else 0
            if count:
                self._partitions[topic] = count
        return [TopicPartition(topic, p) for p in range(count or 0)]

    async def end_offsets(self, topic: str) -> dict[int, int]:
        partitions = await self._topic_partitions(topic)
        if not partitions:
            return {}
        ends = await (await self._offset_reader()).end_offsets(partitions)
        return {tp.partition: offset for tp, offset in ends.items()}

    async def records_in(self, topic: str) -> int:
        """How many records a topic holds (the sum of its end offsets; the harness never deletes records)."""
        return sum((await self.end_offsets(topic)).values())

    async def committed(self, group: str, topic: str | None = None) -> dict[tuple[str, int], int]:
        """The offsets a consumer group has committed, per (topic, partition)."""
        try:
            offsets = await self._admin.list_consumer_group_offsets(group)
        except GroupCoordinatorNotAvailableError:
            # A broker just started creates its offsets topic on the first group's use: nothing committed yet.
            return {}
        return {
            (tp.topic, tp.partition): meta.offset
            for tp, meta in offsets.items()
            if (topic is None or tp.topic == topic) and meta.offset >= 0
        }

    async def committed_total(self, group: str, topic: str) -> int:
        return sum((await self.committed(group, topic)).values())


def fill(bootstrap: str, topic: str, records: Iterable[Record]) -> int:
    """Produce keyed records as fast as the broker takes them; returns how many. Blocking: run it in a thread.

    Idempotent producer (no duplicates from retries), large batches and a short linger: the topic is filled
    before any measurement starts, so only the total time matters.
    """
    producer: Any = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 200_000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "client.id": "lindungi-bench-fill",
        }
    )
    errors: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            errors.append(str(error))

    count = 0
    for key, value, headers in records:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let librdkafka send some
        count += 1
        if count % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)
    if errors:
        raise RuntimeError(f"{len(errors)} records were not delivered to {topic}: {errors[0]}")
    return count
