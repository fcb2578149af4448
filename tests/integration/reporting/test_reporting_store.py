"""Reporting's store against a real MongoDB-protocol server: documents an older version wrote (nested leaves)
are still read, and are rewritten packed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from pymongo import AsyncMongoClient

from services.reporting.domain.partitions import Checkpoint, event_digest
from services.reporting.store import MongoReportingStore, encode_counter, encode_leaf

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.integration

TOPIC = "outcomes"
WINDOW = 2500


@pytest.fixture
async def store(mongodb_url: str, unique: str) -> AsyncIterator[MongoReportingStore]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    database = f"reporting_store_{unique}"
    try:
        yield MongoReportingStore(client, database)
    finally:
        await client.drop_database(database)
        await client.close()


async def test_an_older_versions_cursor_and_nested_leaves_are_read_and_then_rewritten(
    store: MongoReportingStore,
) -> None:
    digests = [event_digest(f"old-{i}") for i in range(1500)]
    nested = {encode_leaf("32.71.01"): {encode_counter("rejection_partner/a.b"): 2, "active": 5}}
    await store.cursor_docs.insert_one(
        {
            "_id": f"{TOPIC}:0",
            "topic": TOPIC,
            "partition": 0,
            "next_offset": 1500,
            "recent": b"".join(digests),
            "leaves": nested,
        }
    )
    await store.chunk_docs.insert_one(
        {
            "_id": f"{TOPIC}:0:33",
            "topic": TOPIC,
            "partition": 0,
            "chunk": "33",
            "applied_offset": 900,
            "leaves": {encode_leaf("33.74.01"): {"active": 7}},
        }
    )
    state = await store.load_partition(TOPIC, 0, WINDOW)
    assert state.recent.to_bytes() == b"".join(digests)
    assert state.counters("32.71.01") == {"rejection_partner/a.b": 2, "active": 5}
    assert state.counters("33.74.01") == {"active": 7}

    checkpoint = Checkpoint.of(state)
    await store.commit(checkpoint.change(state))
    await store.compact(TOPIC, 0, checkpoint.compaction(state, "33"))
    again = await store.load_partition(TOPIC, 0, WINDOW)
    assert again.recent.to_bytes() == state.recent.to_bytes()
    assert dict(again.leaves()) == dict(state.leaves())
    cursor = await store.cursor_docs.find_one({"_id": f"{TOPIC}:0"})
    chunk = await store.chunk_docs.find_one({"_id": f"{TOPIC}:0:33"})
    assert cursor is not None
    assert chunk is not None
    assert isinstance(cursor["leaves"], bytes)
    assert isinstance(chunk["leaves"], bytes)
    assert chunk["applied_offset"] == 1500
