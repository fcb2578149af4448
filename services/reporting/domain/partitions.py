"""A source partition's share of the aggregates: its state, the fold of its records, and what is pending a write.

Words used here (and in counters.py):
- a *chunk* is one province's leaves (or the nation's own leaf) within one source partition: the unit that is
  written atomically together with the offset it reflects (`applied_offset`).
- a partition's *cursor* is the next offset to read and the window of recent event ids (the dedupe window).

Exactly once: a record at offset `o` changes chunk `c` only if `o >= c.applied_offset`, and every chunk
write sets `applied_offset` to the partition's next offset in the same document update. The cursor is written
last. After a crash between chunk writes the replay starts at the cursor and skips, chunk by chunk, what is
already there. The fold is deterministic (same records, same order -> same state, whatever the batch
boundaries), so a replay and a rebuild from the start of the topic give the same figures.

Batches are folded in memory and written together every commit interval (`Pending`): the number of writes
follows the interval, not the event rate.

Pure: no I/O. The storage behind `PartitionStore` is in store.py.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from services.reporting.domain.counters import Counters, add_into, effects, expired_periods
from shared.regions import NATIONAL_CODE

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from shared.events import Outcome


# --- The dedupe window -------------------------------------------------------------------------------------


DIGEST_SIZE = 8


def event_digest(event_id: str) -> bytes:
    """8 bytes of BLAKE2b for an event id (ids are up to 128 characters): with 10,000 ids remembered, the
    chance that a new event is taken for a duplicate is about 5 in 10^16."""
    return hashlib.blake2b(event_id.encode(), digest_size=DIGEST_SIZE).digest()


class RecentEvents:
    """The last `capacity` event ids applied on one partition, oldest first.

    Registration may publish an outcome twice with the same event id (a crash between publishing and recording
    it); the copy follows the original closely on the same partition, because the key is the same. The window
    is bounded by `capacity`, not by the number of participants: a copy further behind would be counted twice.
    """

    __slots__ = ("_members", "_order", "capacity")

    def __init__(self, capacity: int, digests: Iterable[bytes] = ()) -> None:
        self.capacity = capacity
        self._order: deque[bytes] = deque()
        self._members: set[bytes] = set()
        for digest in digests:
            if digest not in self._members:
                self.add(digest)

    def __contains__(self, digest: object) -> bool:
        return digest in self._members

    def __len__(self) -> int:
        return len(self._order)

    def add(self, digest: bytes) -> None:
        self._order.append(digest)
        self._members.add(digest)
        if len(self._order) > self.capacity:
            self._members.discard(self._order.popleft())

    def copy(self) -> RecentEvents:
        clone = RecentEvents(self.capacity)
        clone._order = self._order.copy()
        clone._members = self._members.copy()
        return clone

    def to_bytes(self) -> bytes:
        return b"".join(self._order)

    @classmethod
    def from_bytes(cls, capacity: int, packed: bytes) -> RecentEvents:
        return cls(capacity, (packed[i : i + DIGEST_SIZE] for i in range(0, len(packed), DIGEST_SIZE)))


# --- A partition's state and the fold ----------------------------------------------------------------------


def chunk_of(leaf: str) -> str:
    """The chunk holding a leaf: its province, or the nation for what is counted at national level only."""
    return NATIONAL_CODE if leaf == NATIONAL_CODE else leaf[:2]


@dataclass
class Chunk:
    applied_offset: int  # the partition's next offset when this chunk was last changed
    leaves: dict[str, Counters] = field(default_factory=dict)


@dataclass
class PartitionState:
    """One source partition's share of the aggregates (its chunks) and its cursor, in memory."""

    topic: str
    partition: int
    recent: RecentEvents
    next_offset: int = 0
    stored: bool = False  # whether a cursor was stored when this state was loaded
    chunks: dict[str, Chunk] = field(default_factory=dict)

    def leaves(self) -> Iterator[tuple[str, Counters]]:
        for chunk in self.chunks.values():
            yield from chunk.leaves.items()

    def counters(self, leaf: str) -> Counters:
        chunk = self.chunks.get(chunk_of(leaf))
        return chunk.leaves.get(leaf, {}) if chunk is not None else {}

    def apply(self, folded: Folded) -> None:
        for leaf, counters in folded.leaves.items():
            chunk = self.chunks.setdefault(chunk_of(leaf), Chunk(folded.next_offset))
            chunk.applied_offset = folded.next_offset
            if counters:
                chunk.leaves[leaf] = counters
            else:
                chunk.leaves.pop(leaf, None)
        self.next_offset = folded.next_offset
        self.recent = folded.recent


@dataclass(frozen=True)
class Folded:
    """What one batch of records does to one partition."""

    next_offset: int
    recent: RecentEvents
    leaves: dict[str, Counters]  # the new counters of every touched leaf; empty = the leaf is gone
    deltas: dict[str, Counters]  # the net change per leaf, for the read model
    applied: int
    duplicates: int


def fold(state: PartitionState, records: Iterable[tuple[int, Outcome | None]]) -> Folded | None:
    """Fold one partition's records (offset order; None = a record that was dead-lettered).

    Records before the cursor were applied already. Returns None when nothing new was read.
    """
    recent = state.recent.copy()
    working: dict[str, Counters] = {}
    last: int | None = None
    applied = duplicates = 0
    for offset, event in records:
        if offset < state.next_offset:
            continue
        last = offset
        if event is None:
            continue
        if (digest := event_digest(event.id)) in recent:
            duplicates += 1
            continue
        recent.add(digest)
        applied += 1
        _apply(state, offset, effects(event), working)
    if last is None:
        return None
    # The net change per leaf is taken once per batch, as new counters minus stored ones, rather than summed
    # event by event alongside them (a second dictionary update per event was a tenth of the fold).
    deltas: dict[str, Counters] = {}
    for leaf, counters in working.items():
        for key in expired_periods(counters):
            del counters[key]
        if delta := _difference(counters, state.counters(leaf)):
            deltas[leaf] = delta
    return Folded(
        next_offset=last + 1,
        recent=recent,
        leaves=working,
        deltas=deltas,
        applied=applied,
        duplicates=duplicates,
    )


def _apply(state: PartitionState, offset: int, changes: Mapping[str, Counters], working: dict[str, Counters]) -> None:
    for leaf, delta in changes.items():
        chunk = state.chunks.get(chunk_of(leaf))
        if chunk is not None and offset < chunk.applied_offset:
            continue  # this chunk was written by a run that stopped before writing the cursor
        counters = working.get(leaf)
        if counters is None:
            counters = working[leaf] = dict(chunk.leaves.get(leaf, {}) if chunk else {})
        add_into(counters, delta)


def _difference(after: Mapping[str, int], before: Mapping[str, int]) -> Counters:
    difference = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key, 0)}
    difference.update((key, -n) for key, n in before.items() if key not in after)
    return difference


# --- Writing: several batches are folded in memory, then written together ---------------------------------


@dataclass(frozen=True)
class ChunkWrite:
    chunk: str
    stored: bool  # whether a document for this chunk is known to exist
    accepted: tuple[int, ...]  # applied_offset values the stored document may have for this write to apply
    applied_offset: int
    leaves: dict[str, Counters]  # the whole counters of every changed leaf; empty = the leaf is gone


@dataclass(frozen=True)
class PartitionChange:
    """A durable write of one partition: its changed chunks first, then its cursor."""

    topic: str
    partition: int
    cursor_stored: bool
    cursor_accepted: tuple[int, ...]  # next_offset values the stored cursor may have for this write to apply
    next_offset: int
    recent: RecentEvents
    writes: tuple[ChunkWrite, ...]


@dataclass
class Pending:
    """What was folded into a partition in memory since it was last written.

    A write is accepted by a document that is as it was read (`cursor`, `chunks`) or as a failed attempt of
    ours left it (`attempted`): writes are absolute and the fold is deterministic, so a document at offset T
    holds the same counters whoever wrote it, and writing again after a half-done attempt is harmless.
    """

    cursor: int | None  # the stored cursor's next_offset; None when none is stored
    chunks: dict[str, int]  # applied_offset of every stored chunk
    attempted: list[int] = field(default_factory=list)  # next offsets of writes that failed part-way
    leaves: set[str] = field(default_factory=set)
    deltas: dict[str, Counters] = field(default_factory=dict)
    moved: bool = False

    @classmethod
    def since(cls, state: PartitionState) -> Pending:
        return cls(
            state.next_offset if state.stored else None,
            {key: chunk.applied_offset for key, chunk in state.chunks.items()},
        )

    def add(self, folded: Folded) -> None:
        self.leaves.update(folded.leaves)
        for leaf, delta in folded.deltas.items():
            add_into(self.deltas.setdefault(leaf, {}), delta)
        self.moved = True

    def after(self, change: PartitionChange) -> Pending:
        """What the store holds once `change` is written: folding goes on while it is being written."""
        return Pending(change.next_offset, {**self.chunks, **{w.chunk: w.applied_offset for w in change.writes}})

    def failed(self, change: PartitionChange, since: Pending) -> Pending:
        """`change` did not (entirely) land: pending again, with what was folded while it was being written."""
        merged = Pending(self.cursor, dict(self.chunks), [*self.attempted, change.next_offset], moved=True)
        merged.leaves = self.leaves | since.leaves
        for deltas in (self.deltas, since.deltas):
            for leaf, delta in deltas.items():
                add_into(merged.deltas.setdefault(leaf, {}), delta)
        return merged

    def change(self, state: PartitionState) -> PartitionChange | None:
        if not self.moved:
            return None
        by_chunk: dict[str, dict[str, Counters]] = {}
        for leaf in sorted(self.leaves):
            by_chunk.setdefault(chunk_of(leaf), {})[leaf] = state.counters(leaf)
        writes = tuple(
            ChunkWrite(
                chunk=key,
                stored=key in self.chunks,
                accepted=(*([self.chunks[key]] if key in self.chunks else []), *self.attempted),
                applied_offset=state.next_offset,
                leaves=leaves,
            )
            for key, leaves in sorted(by_chunk.items())
        )
        return PartitionChange(
            topic=state.topic,
            partition=state.partition,
            cursor_stored=self.cursor is not None,
            cursor_accepted=(*([self.cursor] if self.cursor is not None else []), *self.attempted),
            next_offset=state.next_offset,
            recent=state.recent,
            writes=writes,
        )


class ConcurrentWriteError(Exception):
    """Another consumer wrote this partition's state since it was read: the partition moved in a rebalance."""


class PartitionStore(Protocol):
    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState: ...

    async def commit(self, change: PartitionChange) -> None:
        """Chunk writes, then the cursor, each conditional on what was read, else ConcurrentWriteError."""
        ...

    async def cursors(self, topic: str) -> dict[int, int]:
        """partition -> next offset, for every partition with a stored cursor."""
        ...
