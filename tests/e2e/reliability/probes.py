"""Reading what the system holds: topics, consumer groups, health and HTTP answers, polled with deadlines."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from tests.support import ServiceProcess

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float, interval: float = 0.5) -> bool:
    """Poll a condition until it holds or the time is up; never a fixed sleep standing in for a condition."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)


async def health_of(client: httpx.AsyncClient, service: ServiceProcess) -> tuple[int, dict[str, Any]]:
    try:
        response = await client.get(f"{service.url}/health", timeout=10)
        return response.status_code, response.json().get("checks", {})
    except (httpx.HTTPError, ValueError):
        return 0, {}


async def group_assignment(bootstrap: str, group: str) -> tuple[str, list[list[int]]]:
    """A consumer group's state and the partitions each member owns."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        _error, _group, state, _protocol_type, _protocol, members = response.groups[0][:6]
        owned = [
            sorted(p for _, partitions in ConsumerProtocolMemberAssignment.decode(m[4]).assignment for p in partitions)
            if m[4]
            else []
            for m in members
        ]
        return str(state), owned
    finally:
        await admin.close()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of the topic a group-less consumer subscribed to (all of them, once metadata came)."""
    await eventually(lambda: bool(consumer.assignment()), 30, interval=0.1)
    return sorted(tp for tp in consumer.assignment() if tp.topic == topic)


async def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a topic, from the start to the end each partition has now."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        ends = await consumer.end_offsets(partitions)
        records: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for tp, items in batch.items():
                records.extend(r for r in items if r.offset < ends[tp])
        return records
    finally:
        await consumer.stop()


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        return {tp.partition: n for tp, n in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()


async def lag(bootstrap: str, group: str, topic: str) -> int:
    """Records of `topic` not yet committed by `group` (what is left to do)."""
    ends = await end_offsets(bootstrap, topic)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    done = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    return sum(max(0, end - max(done.get(p, 0), 0)) for p, end in ends.items())


async def list_topics(bootstrap: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def get_json(client: httpx.AsyncClient, url: str) -> tuple[Any, str]:
    response = await client.get(url, timeout=30)
    response.raise_for_status()
    return response.json(), response.text
