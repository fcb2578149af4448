"""An in-memory PartitionStore with the same compare-and-set rules as the MongoDB one, and crash injection."""

from __future__ import annotations

import asyncio
import copy

from services.reporting.domain.partitions import (
    Chunk,
    ConcurrentWriteError,
    PartitionChange,
    PartitionState,
    RecentEvents,
)


class Crash(Exception):  # noqa: N818 - it is what it simulates
    """The process died here."""


class MemoryStore:
    def __init__(self) -> None:
        self.cursor_docs: dict[tuple[str, int], tuple[int, bytes]] = {}
        self.chunk_docs: dict[tuple[str, int, str], Chunk] = {}
        self.crash_after_chunk_writes: int | None = None  # the next commit dies after this many chunk writes

    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState:
        state = PartitionState(topic, partition, RecentEvents(window))
        if (topic, partition) in self.cursor_docs:
            state.next_offset, packed = self.cursor_docs[topic, partition]
            state.recent = RecentEvents.from_bytes(window, packed)
            state.stored = True
        for (t, p, chunk), stored in self.chunk_docs.items():
            if (t, p) == (topic, partition):
                state.chunks[chunk] = copy.deepcopy(stored)
        return state

    async def commit(self, change: PartitionChange) -> None:
        for written, write in enumerate(change.writes):
            await asyncio.sleep(0)  # a write takes time: batches may be folded meanwhile
            if self.crash_after_chunk_writes is not None and written >= self.crash_after_chunk_writes:
                self.crash_after_chunk_writes = None
                raise Crash
            key = (change.topic, change.partition, write.chunk)
            stored = self.chunk_docs.get(key)
            if stored is not None and stored.applied_offset not in write.accepted:
                raise ConcurrentWriteError(f"{key}: at {stored.applied_offset}, not {write.accepted}")
            if stored is None and write.stored:
                raise ConcurrentWriteError(f"{key}: gone")
            chunk = stored or Chunk(write.applied_offset)
            chunk.applied_offset = write.applied_offset
            for leaf, counters in write.leaves.items():
                if counters:
                    chunk.leaves[leaf] = dict(counters)
                else:
                    chunk.leaves.pop(leaf, None)
            self.chunk_docs[key] = chunk
        if self.crash_after_chunk_writes is not None:
            self.crash_after_chunk_writes = None
            raise Crash
        await asyncio.sleep(0)
        cursor = self.cursor_docs.get((change.topic, change.partition))
        if cursor is not None and cursor[0] not in change.cursor_accepted:
            raise ConcurrentWriteError(f"cursor at {cursor[0]}, not {change.cursor_accepted}")
        if cursor is None and change.cursor_stored:
            raise ConcurrentWriteError("cursor gone")
        self.cursor_docs[change.topic, change.partition] = (change.next_offset, change.recent.to_bytes())

    async def cursors(self, topic: str) -> dict[int, int]:
        return {p: offset for (t, p), (offset, _) in self.cursor_docs.items() if t == topic}
