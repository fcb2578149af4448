"""An in-memory PartitionStore with the same compare-and-set rules as the MongoDB one, and crash injection."""

from __future__ import annotations

import asyncio
import copy

from services.reporting.domain.counters import Counters
from services.reporting.domain.partitions import (
    Chunk,
    ChunkWrite,
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
        self.overlay_docs: dict[tuple[str, int], dict[str, Counters]] = {}  # the cursors' `leaves`
        self.chunk_docs: dict[tuple[str, int, str], Chunk] = {}
        # The document write after this many more dies (cursor writes and chunk writes alike); with
        # `crash_after_landing` it dies once the write has landed, so its writer cannot know that it did.
        self.crash_after_writes: int | None = None
        self.crash_after_landing = False

    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState:
        state = PartitionState(topic, partition, RecentEvents(window))
        if (topic, partition) in self.cursor_docs:
            state.next_offset, packed = self.cursor_docs[topic, partition]
            state.recent = RecentEvents.from_bytes(window, packed)
            state.stored = True
        chunks = {
            chunk: copy.deepcopy(stored)
            for (t, p, chunk), stored in self.chunk_docs.items()
            if (t, p) == (topic, partition)
        }
        state.restore(chunks, copy.deepcopy(self.overlay_docs.get((topic, partition), {})))
        return state

    async def _writing(self) -> bool:
        """Before a document write: dies here, or says whether to die once it has landed."""
        await asyncio.sleep(0)  # a write takes time: batches may be folded meanwhile
        if self.crash_after_writes is None:
            return False
        if self.crash_after_writes > 0:
            self.crash_after_writes -= 1
            return False
        self.crash_after_writes = None
        if not self.crash_after_landing:
            raise Crash
        return True

    async def commit(self, change: PartitionChange) -> None:
        crash = await self._writing()
        key = (change.topic, change.partition)
        cursor = self.cursor_docs.get(key)
        if cursor is not None and cursor[0] not in change.cursor_accepted:
            raise ConcurrentWriteError(f"cursor at {cursor[0]}, not {change.cursor_accepted}")
        if cursor is None and change.cursor_stored:
            raise ConcurrentWriteError("cursor gone")
        self.cursor_docs[key] = (change.next_offset, change.recent.to_bytes())
        self.overlay_docs[key] = copy.deepcopy(change.overlay)
        if crash:
            raise Crash

    async def compact(self, topic: str, partition: int, write: ChunkWrite) -> None:
        crash = await self._writing()
        key = (topic, partition, write.chunk)
        stored = self.chunk_docs.get(key)
        if stored is not None and stored.applied_offset not in write.accepted:
            raise ConcurrentWriteError(f"{key}: at {stored.applied_offset}, not {write.accepted}")
        if stored is None and write.stored:
            raise ConcurrentWriteError(f"{key}: gone")
        self.chunk_docs[key] = Chunk(write.applied_offset, copy.deepcopy(write.leaves))
        if crash:
            raise Crash

    async def cursors(self, topic: str) -> dict[int, int]:
        return {p: offset for (t, p), (offset, _) in self.cursor_docs.items() if t == topic}
