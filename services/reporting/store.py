"""Reporting's MongoDB storage (works on FerretDB: single-document atomic updates only, no transactions).

Collections:
- `partition_chunks`, one document per (source topic, partition, province) plus one per partition for what
  is counted at national level only: `{_id: "topic:partition:chunk", applied_offset, leaves}`.
  Splitting a partition by province keeps each document small (the 16 MiB limit; FerretDB rewrites a whole
  document on every update) and a compaction rewrites only the provinces it takes leaves of.
- `partition_cursors`, one per (topic, partition): `{next_offset, recent, leaves}` where `recent` packs the
  dedupe window (8-byte digests, oldest first) and `leaves` is the overlay (domain/partitions.py): the leaves
  whose chunk does not hold their counters as of `next_offset` yet.

`leaves` is one binary value, `{leaf: {counter: n}}` as JSON compressed with zlib (`pack_leaves`), not a
nested document: FerretDB turns every field of a document into SQLite JSON on each write, and a cursor with 100
leaves of 40 counters took 65 ms to write as a document, 11-17 ms as one binary value (measured on this
machine), so the cursors of twelve partitions took seconds per round under load and the aggregates lagged.
Documents an older version wrote with nested leaves are still read (`unpack_leaves`) and rewritten whole.
- `targets`, one per region with official figures loaded by an operator.
- `budgets`, one per budget (`_id` = `32.71|2027|APBD`): `{sequence, position, samples: [{at, reserved}]}`,
  the latest position registration published and the samples of its reservation (domain/budgets.py).

Every write is conditional on the offset that was read (compare-and-set), so a consumer that lost its
partition in a rebalance without noticing cannot overwrite the new owner's work: it gets ConcurrentWriteError.

Keys may not contain `.` or start with `$` (FerretDB), so older versions' nested leaves had region codes stored
as `32_71_01` and counter names with `%`, `.` and `$` percent-encoded (a partner id or a reason code may contain
a dot); the packed leaves need no such encoding.
"""

from __future__ import annotations

import json
import sys
import zlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.reporting.domain.budgets import BudgetRecord, Sample
from services.reporting.domain.coverage import Target
from services.reporting.domain.partitions import Chunk, ConcurrentWriteError, PartitionState, RecentEvents
from shared.events import BudgetPosition
from shared.mongo import bulk_update, insert_new

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Mapping, Sequence

    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.collection import AsyncCollection

    from services.reporting.domain.counters import Counters
    from services.reporting.domain.partitions import ChunkWrite, PartitionChange

Document = dict[str, Any]
LOAD_ATTEMPTS = 10  # reads of a partition that another writer keeps moving (a rebalance), before giving up


def encode_leaf(code: str) -> str:
    return code.replace(".", "_")


def decode_leaf(key: str) -> str:
    return key.replace("_", ".")


def encode_counter(name: str) -> str:
    return name.replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def decode_counter(key: str) -> str:
    return unquote(key)


def decode_leaves(leaves: Mapping[str, Mapping[str, int]]) -> dict[str, Counters]:
    return {
        # Interned like the fold's names (domain.counters.add_into): one copy of each name across leaves and partitions.
        decode_leaf(leaf): {sys.intern(decode_counter(name)): int(value) for name, value in counters.items()}
        for leaf, counters in leaves.items()
    }


def pack_leaves(leaves: Mapping[str, Mapping[str, int]]) -> bytes:
    """Leaves as one binary value: JSON, compressed (level 1: counter names repeat across leaves)."""
    return zlib.compress(json.dumps(leaves, separators=(",", ":")).encode(), 1)


def unpack_leaves(stored: bytes | Mapping[str, Mapping[str, int]]) -> dict[str, Counters]:
    """Leaves as `pack_leaves` stored them, or as a nested document (an older version's)."""
    if isinstance(stored, bytes):
        # Interned like the fold's names (domain.counters.add_into): one copy of each name across leaves.
        return {
            sys.intern(leaf): {sys.intern(name): int(value) for name, value in counters.items()}
            for leaf, counters in json.loads(zlib.decompress(stored)).items()
        }
    return decode_leaves(stored)


def _one_of(accepted: tuple[int, ...]) -> int | Document:
    # FerretDB runs an equality noticeably faster than `$in`; several values only follow a failed write.
    return accepted[0] if len(accepted) == 1 else {"$in": list(accepted)}


def _chunk_document(topic: str, partition: int, write: ChunkWrite) -> Document:
    return {
        "_id": chunk_id(topic, partition, write.chunk),
        "topic": topic,
        "partition": partition,
        "chunk": write.chunk,
        "applied_offset": write.applied_offset,
        "leaves": pack_leaves(write.leaves),
    }


def _same_cursor(before: Document | None, after: Document | None) -> bool:
    """The same write of a cursor: same offset and same overlay (whose values are fixed by the offset)."""
    if before is None or after is None:
        return before is after
    same_offset: bool = before["next_offset"] == after["next_offset"]
    return same_offset and set(before.get("leaves", {})) == set(after.get("leaves", {}))


def cursor_id(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


def chunk_id(topic: str, partition: int, chunk: str) -> str:
    return f"{topic}:{partition}:{chunk}"


class MongoReportingStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        db = client[database]
        self.chunk_docs: AsyncCollection[Document] = db["partition_chunks"]
        self.cursor_docs: AsyncCollection[Document] = db["partition_cursors"]
        self.target_docs: AsyncCollection[Document] = db["targets"]
        self.budget_docs: AsyncCollection[Document] = db["budgets"]

    async def create_indexes(self) -> None:
        await self.chunk_docs.create_index([("topic", ASCENDING), ("partition", ASCENDING)])
        await self.cursor_docs.create_index([("topic", ASCENDING)])

    # --- partitions -----------------------------------------------------------------------------------------

    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState:
        """The chunks and the cursor of one moment: the cursor is read before and after the chunks, and again
        if it moved. A cursor that stops carrying a leaf was written after that leaf's chunk was rewritten; had
        the chunks been read between the two, the leaf would be read as it was before the rewrite."""
        before = await self.cursor_docs.find_one({"_id": cursor_id(topic, partition)})
        for _ in range(LOAD_ATTEMPTS):
            chunks = {
                doc["chunk"]: Chunk(int(doc["applied_offset"]), unpack_leaves(doc.get("leaves", {})))
                async for doc in self.chunk_docs.find({"topic": topic, "partition": partition})
            }
            after = await self.cursor_docs.find_one({"_id": cursor_id(topic, partition)})
            if _same_cursor(before, after):
                break
            before = after
        else:
            raise RuntimeError(f"{topic}:{partition}: the state kept moving while it was read")  # not now: retried
        # Chunks are read whether or not a cursor exists: an older version may have left chunks written before
        # the first cursor; their applied_offset keeps the replay from counting those records again.
        state = PartitionState(topic, partition, RecentEvents(window))
        if after is not None:
            state.next_offset = int(after["next_offset"])
            state.recent = RecentEvents.from_bytes(window, bytes(after.get("recent", b"")))
            state.stored = True
        state.restore(chunks, unpack_leaves(after.get("leaves", {})) if after is not None else {})
        return state

    async def commit(self, change: PartitionChange) -> None:
        """The cursor with its overlay: one document, so the batches it covers are durable in one write."""
        _id = cursor_id(change.topic, change.partition)
        fields = {
            "next_offset": change.next_offset,
            "recent": change.recent.to_bytes(),
            "leaves": pack_leaves(change.overlay),
            "updated_at": datetime.now(UTC),
        }
        if change.cursor_accepted and await self._update_if(
            self.cursor_docs, _id, "next_offset", change.cursor_accepted, {"$set": fields}
        ):
            return
        if change.cursor_stored:
            raise ConcurrentWriteError(f"{_id}: the cursor moved on meanwhile")
        try:
            await self.cursor_docs.insert_one(
                {"_id": _id, "topic": change.topic, "partition": change.partition, **fields}
            )
        except DuplicateKeyError as error:
            raise ConcurrentWriteError(f"{_id}: the cursor was created meanwhile") from error

    async def compact(self, topic: str, partition: int, write: ChunkWrite) -> None:
        """One chunk rewritten whole, conditional on the applied_offset read (or attempted)."""
        _id = chunk_id(topic, partition, write.chunk)
        update = {"$set": {"applied_offset": write.applied_offset, "leaves": pack_leaves(write.leaves)}}
        if write.accepted and await self._update_if(self.chunk_docs, _id, "applied_offset", write.accepted, update):
            return
        if write.stored:
            raise ConcurrentWriteError(f"{_id}: the chunk moved on meanwhile")
        try:
            await self.chunk_docs.insert_one(_chunk_document(topic, partition, write))
        except DuplicateKeyError as error:
            raise ConcurrentWriteError(f"{_id}: the chunk was created meanwhile") from error

    @staticmethod
    async def _update_if(
        collection: AsyncCollection[Document], _id: str, field: str, accepted: tuple[int, ...], update: Document
    ) -> bool:
        result = await collection.update_one({"_id": _id, field: _one_of(accepted)}, update)
        return result.matched_count == 1

    async def cursors(self, topic: str) -> dict[int, int]:
        return {
            int(doc["partition"]): int(doc["next_offset"])
            async for doc in self.cursor_docs.find({"topic": topic}, {"partition": 1, "next_offset": 1})
        }

    async def drop_partitions(self, topic: str) -> None:
        """Forget every partition's state for a topic (the start of a rebuild)."""
        await self.chunk_docs.delete_many({"topic": topic})
        await self.cursor_docs.delete_many({"topic": topic})

    # --- official figures -----------------------------------------------------------------------------------

    async def load_targets(self) -> dict[str, Target]:
        return {
            doc["_id"]: Target(doc["_id"], doc.get("workforce"), doc.get("target_ratio"))
            async for doc in self.target_docs.find({})
        }

    async def save_targets(self, targets: Iterable[Target], *, source: str, replace: bool) -> int:
        """Upsert each region's figures; with `replace`, regions absent from `targets` lose theirs."""
        now = datetime.now(UTC)
        rows = list(targets)
        operations = [
            UpdateOne(
                {"_id": t.region_code},
                {
                    "$set": {
                        "workforce": t.workforce,
                        "target_ratio": t.target_ratio,
                        "source": source,
                        "loaded_at": now,
                    }
                },
                upsert=True,
            )
            for t in rows
        ]
        if operations:
            await self.target_docs.bulk_write(operations, ordered=False)
        if replace:
            await self.target_docs.delete_many({"_id": {"$nin": [t.region_code for t in rows]}})
        return len(rows)

    # --- budgets --------------------------------------------------------------------------------------------

    async def save_budgets(self, records: Sequence[BudgetRecord], known: Container[str]) -> set[str]:
        """Store each budget's record unless a position as new or newer is stored (another instance's, or this
        one's before a redelivery): compare-and-set on the sequence. Budgets not `known` to be stored are
        inserted together, the others updated in bulk, each update conditional on an older sequence.

        Returns the keys whose record may not have been stored (a bulk write says how many matched, not
        which): read them back. One write per record instead, at 200 requests/s, was 1,900 writes a minute
        and the largest wait on reporting's database (bench/ latency profile)."""
        fields = {record.key: _budget_fields(record) for record in records}
        fresh = [record for record in records if record.key not in known]
        there = await insert_new(self.budget_docs, [{"_id": record.key, **fields[record.key]} for record in fresh])
        updates = [record for record in records if record.key in known] + [fresh[i] for i in sorted(there)]
        writes = [
            UpdateOne({"_id": r.key, "sequence": {"$lt": r.position.sequence}}, {"$set": fields[r.key]})
            for r in updates
        ]
        if await bulk_update(self.budget_docs, writes) == len(writes):
            return set()
        return {record.key for record in updates}

    async def budget_sequences(self) -> dict[str, int]:
        return {doc["_id"]: int(doc["sequence"]) async for doc in self.budget_docs.find({}, {"sequence": 1})}

    async def load_budgets(self, keys: Iterable[str] | None = None) -> list[BudgetRecord]:
        query: Document = {} if keys is None else {"_id": {"$in": list(keys)}}
        return [
            BudgetRecord(
                BudgetPosition.model_validate(doc["position"]),
                tuple(Sample(s["at"], int(s["reserved"])) for s in doc.get("samples", ())),
            )
            async for doc in self.budget_docs.find(query)
        ]


def _budget_fields(record: BudgetRecord) -> Document:
    position = record.position
    return {
        "region_code": position.region_code,
        "fiscal_year": position.fiscal_year,
        "funding_source": position.funding_source.value,
        "sequence": position.sequence,
        "position": position.model_dump(mode="json"),
        "samples": [{"at": s.at, "reserved": s.reserved} for s in record.samples],
        "updated_at": datetime.now(UTC),
    }
