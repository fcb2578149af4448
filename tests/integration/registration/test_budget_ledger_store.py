"""The budget ledger's compare-and-swap against the real FerretDB: concurrent changes are never lost.

The soak found ledgers a few hundred workers short of what the outcomes charged: FerretDB v1 evaluates the
filter of a conditional replace and writes the document in two steps, so two instances replacing the same
`sequence` both succeeded and one change vanished. Here eight clients change one ledger at once, each change
retried on the ledger as it now is, like `Budgeting` does: every change that said it succeeded must be in it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.registration.budgets import SUMMARY_EVERY, MongoBudgets, budget_key, newest_ledgers
from services.registration.domain.budget import Charge
from shared.crypto import Sealer

pytestmark = pytest.mark.integration

KEY = "32.71|2026|APBD"
CLIENTS = 8
CHANGES = 60  # per client


async def test_concurrent_swaps_on_one_ledger_lose_no_change(
    mongodb_url: str, unique: str, service_env: dict[str, str]
) -> None:
    database = f"registration_{unique}"
    clients: list[AsyncMongoClient[dict[str, Any]]] = [AsyncMongoClient(mongodb_url) for _ in range(CLIENTS)]
    stores = [MongoBudgets(c, database, Sealer(service_env["LINDUNGI_SEAL_KEY"])) for c in clients]
    won = 0

    async def change(store: MongoBudgets) -> None:
        nonlocal won
        for _ in range(CHANGES):
            while True:
                before = (await store.load([KEY]))[KEY]
                after = before.counted(Charge(before.budget, amount=1, workers=1, by_month={"2026-12": 1}))
                if await store.swap(before, after):
                    won += 1
                    break

    try:
        await asyncio.gather(*(change(s) for s in stores))
        ledger = (await stores[0].load([KEY]))[KEY]
        assert won == CLIENTS * CHANGES
        assert (ledger.sequence, ledger.reserved, ledger.workers) == (won, won, won)
        assert ledger.by_month == {"2026-12": won}
        # Each store started its loads from the versions it wrote itself; a store that never wrote starts from
        # the summary, which lags by less than a rewrite interval per writer, and finds the newest all the same.
        summary = await clients[0][database]["budgets"].find_one({"_id": KEY})
        assert summary is not None
        assert won - CLIENTS * SUMMARY_EVERY < summary["sequence"] <= won
        fresh = MongoBudgets(clients[0], database, Sealer(service_env["LINDUNGI_SEAL_KEY"]))
        assert (await fresh.load([KEY]))[KEY] == ledger
        assert (await newest_ledgers(clients[0][database]))[KEY] == ledger
    finally:
        await clients[0].drop_database(database)
        for client in clients:
            await client.close()


async def test_budgets_declared_before_the_declarations_list_are_found_at_start(
    mongodb_url: str, unique: str, service_env: dict[str, str]
) -> None:
    """A database written before `budget_declarations` existed holds its declarations only in the summaries'
    `declared` flag: starting the store copies them, once, however many instances start."""
    database = f"registration_{unique}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    store = MongoBudgets(client, database, Sealer(service_env["LINDUNGI_SEAL_KEY"]))
    try:
        await client[database]["budgets"].insert_many(
            [{"_id": KEY, "declared": True}, {"_id": "32.73|2026|APBD", "declared": False}]
        )
        assert await store.declared() == frozenset()
        await asyncio.gather(store.create_indexes(), store.create_indexes())
        assert await store.declared() == {KEY}
        await store.declare(["32.73|2026|APBD", KEY])
        assert await store.declared() == {KEY, "32.73|2026|APBD"}
    finally:
        await client.drop_database(database)
        await client.close()


async def test_a_summary_is_rewritten_every_few_versions_and_loads_follow_past_it(
    mongodb_url: str, unique: str, service_env: dict[str, str]
) -> None:
    """One store alone writes the summary at its first change and then every `SUMMARY_EVERY` versions; another
    store starts from that summary and follows the versions after it, and the first sees the second's."""
    database = f"registration_{unique}"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    sealer = Sealer(service_env["LINDUNGI_SEAL_KEY"])
    first, second = MongoBudgets(client, database, sealer), MongoBudgets(client, database, sealer)
    one = Charge(budget_key(KEY), amount=1, workers=1, by_month={"2026-12": 1})
    try:
        changes = SUMMARY_EVERY + 4
        for _ in range(changes):
            before = (await first.load([KEY]))[KEY]
            assert await first.swap(before, before.counted(one))
        summary = await client[database]["budgets"].find_one({"_id": KEY})
        assert summary is not None
        assert summary["sequence"] == 1 + SUMMARY_EVERY
        seen = (await second.load([KEY]))[KEY]
        assert (seen.sequence, seen.reserved) == (changes, changes)
        assert await second.swap(seen, seen.counted(one))
        assert (await first.load([KEY]))[KEY] == (await second.load([KEY]))[KEY]
        assert (await first.load([KEY]))[KEY].reserved == changes + 1
    finally:
        await client.drop_database(database)
        await client.close()
