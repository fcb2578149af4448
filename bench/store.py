"""The MongoDB-protocol server for the harness: what a service stored, how big it is, and the raw write limit."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import bson
from pymongo import AsyncMongoClient

Document = dict[str, Any]


class Store:
    def __init__(self, url: str, ledger: Path, *, keep: bool = False) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
        self.created: list[str] = []
        self._ledger = ledger
        self.keep = keep  # `--keep`: every database stays for reading after the run, the scenarios' own too

    async def close(self) -> None:
        await self.client.close()

    def remember(self, name: str) -> None:
        """A database this run creates: dropped when its scenario ends, and listed in a ledger file so that
        `python -m bench --clean` can drop it after an interrupted run (listing every database is slow on
        FerretDB with many of them)."""
        if name not in self.created:
            self.created.append(name)
            self._ledger.parent.mkdir(parents=True, exist_ok=True)
            with self._ledger.open("a") as ledger:
                ledger.write(f"{name}\n")

    def forget(self, names: list[str]) -> None:
        """Databases dropped: out of the ledger, so that it lists only what is still to be dropped."""
        if self._ledger.exists():
            kept = [name for name in self._ledger.read_text().split() if name not in names]
            self._ledger.write_text("".join(f"{name}\n" for name in kept))

    def forgotten(self) -> list[str]:
        """Every database the ledger lists (what earlier runs may have left), emptying it."""
        if not self._ledger.exists():
            return []
        names = sorted(set(self._ledger.read_text().split()))
        self._ledger.unlink()
        return names

    async def server_version(self) -> str:
        info = await self.client.admin.command("buildInfo")
        if "ferretdbVersion" in info:
            return f"FerretDB {info['ferretdbVersion']} (MongoDB wire protocol {info.get('version', '?')})"
        return f"MongoDB {info.get('version', '?')}"

    async def drop(self, name: str) -> None:
        """Drop a database a scenario is done with (each run's, as soon as the next needs the disk), unless
        the run keeps them: then it stays, listed in the ledger for `python -m bench --clean`."""
        if not self.keep:
            await self.client.drop_database(name)

    async def size(self, database: str, collections: list[str] | None = None) -> int:
        """Bytes of BSON the database's documents take: the checkpoint a service would restore from."""
        db = self.client[database]
        names = collections if collections is not None else await db.list_collection_names()
        total = 0
        for name in names:
            async for document in db[name].find({}).batch_size(100):
                total += len(bson.encode(document))
        return total

    async def count(self, database: str, collection: str) -> int:
        return int(await self.client[database][collection].estimated_document_count())

    async def copy_timed(
        self, source: str, target: str, limits: dict[str, int], chunk: int = 5_000, chunk_bytes: int = 16_000_000
    ) -> float:
        """Insert up to `limits[collection]` documents of each of `source`'s collections into `target` with bulk
        inserts of `chunk` documents (fewer when they pass `chunk_bytes`: request-log documents are large);
        returns the seconds spent in the inserts alone (reading them back is not part of the limit)."""
        spent = 0.0
        self.remember(target)
        for name, limit in limits.items():
            batch: list[Document] = []
            size = 0
            # Small reply batches: FerretDB does not cap a reply by size, and a request log's documents are
            # large enough for a default batch to pass the driver's 48 MB message limit.
            async for document in self.client[source][name].find({}).limit(limit).batch_size(200):
                batch.append(document)
                size += len(bson.encode(document))
                if len(batch) >= chunk or size >= chunk_bytes:
                    spent += await self._insert(target, name, batch)
                    batch, size = [], 0
            if batch:
                spent += await self._insert(target, name, batch)
        return spent

    async def _insert(self, database: str, collection: str, documents: list[Document]) -> float:
        start = time.perf_counter()
        await self.client[database][collection].insert_many(documents, ordered=False)
        return time.perf_counter() - start
