"""Smoke tests: real round trips through the real broker and the real MongoDB-protocol server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from shared.messaging import ensure_topics
from shared.topics import CATALOGUE, Topic

pytestmark = pytest.mark.integration


async def _consume(
    bootstrap: str, topic: str, group: str, expected: int, timeout: float = 30
) -> list[tuple[bytes | None, dict[str, Any], bytes]]:
    """Start a broker with one subscriber in `group`, collect `expected` messages, acknowledge, stop."""
    received: list[tuple[bytes | None, dict[str, Any], bytes]] = []
    done = asyncio.Event()
    broker = KafkaBroker(bootstrap)

    @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK)
    async def collect(body: bytes, message: KafkaMessage) -> None:
        received.append((message.raw_message.key, dict(message.headers), body))
        if len(received) >= expected:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), timeout)
    return received


async def test_keys_headers_and_a_committed_offset_survive_a_reconnect(kafka_bootstrap: str, unique: str) -> None:
    topic, group = f"smoke.{unique}", f"smoke-group-{unique}"
    async with KafkaBroker(kafka_bootstrap) as producer:
        for i in range(3):
            await producer.publish(f"m{i}".encode(), topic, key=f"k{i}".encode(), headers={"ce_id": f"e{i}"})

    first = await _consume(kafka_bootstrap, topic, group, expected=3)
    assert sorted((k, h["ce_id"], b) for k, h, b in first) == [
        (b"k0", "e0", b"m0"),
        (b"k1", "e1", b"m1"),
        (b"k2", "e2", b"m2"),
    ]

    async with KafkaBroker(kafka_bootstrap) as producer:
        await producer.publish(b"m3", topic, key=b"k3")

    # The group committed past m0..m2, so a new consumer in the same group starts after them.
    second = await _consume(kafka_bootstrap, topic, group, expected=1)
    assert [b for _, _, b in second] == [b"m3"]


async def test_catalogue_topics_are_created_with_partitions_and_config(kafka_bootstrap: str, unique: str) -> None:
    scratch = tuple(
        Topic(
            name=f"{t.name}.{unique}",
            key=t.key,
            partitions=t.partitions,
            config=t.config,
            producers=t.producers,
            consumers=t.consumers,
            events=t.events,
            description=t.description,
        )
        for t in CATALOGUE
    )
    created = await ensure_topics(kafka_bootstrap, scratch)
    assert sorted(created) == sorted(t.name for t in scratch)
    assert await ensure_topics(kafka_bootstrap, scratch) == []  # idempotent

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    expected = {t.name: t.partitions for t in scratch}
    try:
        for _ in range(50):  # metadata reaches the broker's cache a moment after creation
            described = await admin.describe_topics(list(expected))
            partitions = {d["topic"]: len(d["partitions"]) for d in described}
            if partitions == expected:
                break
            await asyncio.sleep(0.2)
        assert partitions == expected
    finally:
        await admin.close()


async def test_write_read_and_a_unique_index(mongo: AsyncMongoClient[dict[str, Any]], unique: str) -> None:
    collection = mongo[f"smoke_{unique}"]["things"]
    await collection.create_index([("partner_id", ASCENDING), ("request_id", ASCENDING)], unique=True)
    await collection.insert_one({"partner_id": "p", "request_id": "r1", "n": 1})
    found = await collection.find_one({"request_id": "r1"})
    assert found is not None
    assert found["n"] == 1
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"partner_id": "p", "request_id": "r1", "n": 2})
    await collection.update_one({"request_id": "r1"}, {"$inc": {"n": 5}})
    assert (await collection.find_one({"request_id": "r1"}) or {})["n"] == 6
    await mongo.drop_database(f"smoke_{unique}")


async def test_a_conditional_write_on_one_document_has_one_winner(mongodb_url: str, unique: str) -> None:
    """What every compare-and-set of the services relies on (claims, checkpoints, version guards): of several
    clients writing one document on the same condition, exactly one succeeds. MongoDB guarantees it; FerretDB
    v1 only with deploy/local/ferretdb/write-lock.patch (unpatched, this test counted 399 claims and 369
    updates for the 100 documents)."""
    clients: list[AsyncMongoClient[dict[str, Any]]] = [AsyncMongoClient(mongodb_url) for _ in range(8)]
    documents = [c[f"atomicity_{unique}"]["claims"] for c in clients]
    await documents[0].insert_many([{"_id": i, "status": "NEW"} for i in range(100)])
    claimed = updated = 0

    async def claim(collection: Any, i: int) -> None:
        nonlocal claimed
        found = await collection.find_one_and_update({"_id": i, "status": "NEW"}, {"$set": {"status": "CLAIMED"}})
        claimed += found is not None

    async def settle(collection: Any, i: int) -> None:
        nonlocal updated
        result = await collection.update_one({"_id": i, "status": "CLAIMED"}, {"$set": {"status": "DONE"}})
        updated += result.modified_count

    try:
        for i in range(100):
            await asyncio.gather(*(claim(c, i) for c in documents))
        for i in range(100):
            await asyncio.gather(*(settle(c, i) for c in documents))
        assert (claimed, updated) == (100, 100)
    finally:
        await clients[0].drop_database(f"atomicity_{unique}")
        for client in clients:
            await client.close()
