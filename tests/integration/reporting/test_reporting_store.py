"""Reporting's store against a real MongoDB-protocol server: documents an older version wrote (nested leaves)
are still read, and are rewritten packed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from services.reporting.budgets import BudgetLedger
from services.reporting.domain.budgets import CoverageCost
from services.reporting.domain.partitions import Checkpoint, event_digest
from services.reporting.service import Metrics
from services.reporting.store import MongoReportingStore, encode_counter, encode_leaf
from shared import events as ev

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.integration

TOPIC = "outcomes"
WINDOW = 2500
COST = CoverageCost(vulnerable_share=0.5917, package_monthly=16_800)


def budget_position(sequence: int, region: str) -> ev.BudgetPosition:
    return ev.BudgetPosition(
        region_code=region,
        fiscal_year=2027,
        funding_source=ev.BudgetSource.APBD,
        sequence=sequence,
        as_of=datetime(2027, 1, 1, tzinfo=UTC) + timedelta(days=sequence),
        allocation=100_000_000,
        allocation_version=1,
        dprd_decision="Perda 5/2026",
        reserved=sequence * 16_800,
        workers=sequence,
        by_month={},
        holds_waiting=0,
        holds_waiting_amount=0,
    )


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


async def test_budget_records_are_stored_in_bulk_and_the_newest_sequence_wins_across_instances(
    store: MongoReportingStore,
) -> None:
    """Two instances' ledgers on one store (a rebalance moved a budget partition between them): each batch's
    records go out together, a record older than the stored one is not written, and an instance that could not
    store one reads back what is stored."""
    this = BudgetLedger(store, COST, Metrics.register(CollectorRegistry()))
    other = BudgetLedger(store, COST, Metrics.register(CollectorRegistry()))
    kota, kabupaten = budget_position(1, "32.71"), budget_position(1, "32.01")
    await this.record([kota, kabupaten])
    assert await store.budget_sequences() == {kota.key: 1, kabupaten.key: 1}

    await other.record([budget_position(3, "32.71")])  # not known to `other`: inserted, found there, updated
    await this.record([budget_position(2, "32.71"), budget_position(2, "32.01")])
    assert await store.budget_sequences() == {kota.key: 3, kabupaten.key: 2}
    assert this.book.sequences() == {kota.key: 3, kabupaten.key: 2}  # the newer one read back, ours kept

    await store.budget_docs.delete_one({"_id": kabupaten.key})  # gone by hand: written again, not lost
    await this.record([budget_position(4, "32.01")])
    assert await store.budget_sequences() == {kota.key: 3, kabupaten.key: 4}
