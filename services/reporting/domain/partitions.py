"""A source partition's share of the aggregates: its state, the fold of its records, and what is pending a write.

Words used here (and in counters.py):
- a *chunk* is one province's leaves (or the nation's own leaf) within one source partition: a document of
  its own, with the offset it reflects (`applied_offset`).
- a partition's *cursor* is the next offset to read, the window of recent event ids (the dedupe window) and the
  *overlay*: the whole counters, as of that offset, of every leaf changed since its chunk was last rewritten.

Writing is in two steps, so that what a batch changed is durable after ONE document write per partition:
- every commit interval the cursor is written (compare-and-set on its offset) with the overlay; from then on
  the batches up to its offset are durable, their offsets may be committed and their figures shown;
- *compaction*, afterwards and within a time budget, rewrites a whole chunk as the state holds it then
  (`applied_offset` = the partition's next offset at that moment, compare-and-set on the one read), and drops
  from the overlay the chunk's leaves not changed since.
A leaf's value is the overlay's when the cursor carries it and its chunk is not ahead of the cursor, else its
chunk's. A chunk may be ahead of the cursor (compacted after it, or written by an older version before it): it
holds every leaf of its province as of its `applied_offset`, so a record at offset `o` changes chunk `c` only if
`o >= c.applied_offset`, and the cursor's older values of its leaves do not apply.

Why: FerretDB commits each updated document in a SQLite transaction of its own (a sync of the write-ahead log),
and a batch touches a chunk in most provinces; rewriting all of them before the cursor took seconds per round,
and the aggregates lagged by that (docs/reporting.md).

The fold is deterministic (same records, same order -> same state, whatever the batch boundaries), so a replay
and a rebuild from the start of the topic give the same figures, and a write that failed and is written again
(its outcome unknown) writes the same values.

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
    """One source partition's share of the aggregates (its leaves, by chunk) and its cursor, in memory."""

    topic: str
    partition: int
    recent: RecentEvents
    next_offset: int = 0
    stored: bool = False  # whether a cursor was stored when this state was loaded
    chunks: dict[str, Chunk] = field(default_factory=dict)
    stored_chunks: dict[str, int] = field(default_factory=dict)  # applied_offset of each chunk document loaded
    overlay: set[str] = field(default_factory=set)  # leaves the loaded cursor carried

    def restore(self, chunks: Mapping[str, Chunk], overlay: Mapping[str, Counters]) -> None:
        """The stored chunks, then the cursor's overlay over them (an empty leaf there: the leaf is gone)."""
        self.chunks = dict(chunks)
        self.stored_chunks = {key: chunk.applied_offset for key, chunk in chunks.items()}
        for leaf, counters in overlay.items():
            chunk = self.chunks.setdefault(chunk_of(leaf), Chunk(0))
            if chunk.applied_offset > self.next_offset:
                continue  # compacted after this cursor was written: it holds the leaf as of a later offset
            if counters:
                chunk.leaves[leaf] = counters
            else:
                chunk.leaves.pop(leaf, None)
        self.overlay = set(overlay)

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


# --- Writing: the cursor every round, the chunks behind it --------------------------------------------------


@dataclass(frozen=True)
class ChunkWrite:
    """A compaction: a whole chunk as the state held it at one offset (`as_of`)."""

    chunk: str
    stored: bool  # whether a document for this chunk is known to exist
    accepted: tuple[int, ...]  # applied_offset values the stored document may have for this write to apply
    applied_offset: int
    as_of: int  # the partition's next offset when the leaves were taken
    leaves: dict[str, Counters]  # every leaf of the chunk, whole counters (not copied: the fold replaces them)


@dataclass(frozen=True)
class PartitionChange:
    """A durable write of one partition: its cursor, with the overlay."""

    topic: str
    partition: int
    cursor_stored: bool
    cursor_accepted: tuple[int, ...]  # next_offset values the stored cursor may have for this write to apply
    next_offset: int
    recent: RecentEvents
    overlay: dict[str, Counters]  # the whole counters, as of `next_offset`, of every leaf the cursor carries


@dataclass
class Pending:
    """What was folded into a partition since its cursor was last written: the net change per leaf, which
    reaches the read model once written."""

    deltas: dict[str, Counters] = field(default_factory=dict)
    moved: bool = False

    def add(self, folded: Folded) -> None:
        for leaf, delta in folded.deltas.items():
            add_into(self.deltas.setdefault(leaf, {}), delta)
        self.moved = True

    def merged(self, later: Pending) -> Pending:
        """A write of this did not (surely) land: pending again, with what was folded meanwhile."""
        merged = Pending(moved=True)
        for deltas in (self.deltas, later.deltas):
            for leaf, delta in deltas.items():
                add_into(merged.deltas.setdefault(leaf, {}), delta)
        return merged


@dataclass
class Checkpoint:
    """What the store holds of one partition, as far as its writer knows, and so what its next writes carry.

    A write is accepted by a document that is as it was read (`cursor`, `chunks`) or as a failed attempt of
    ours may have left it (`attempted`, `chunk_attempts`): writes are absolute and the fold is deterministic,
    so a document at offset T holds the same counters whoever wrote it, and writing again is harmless.
    """

    cursor: int | None  # the stored cursor's next_offset; None when none is stored
    chunks: dict[str, int]  # applied_offset of every stored chunk
    overlay: dict[str, int]  # leaf -> next offset of the batch that last changed it
    attempted: list[int] = field(default_factory=list)  # cursor offsets of writes that may have landed
    chunk_attempts: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, state: PartitionState) -> Checkpoint:
        return cls(
            state.next_offset if state.stored else None,
            dict(state.stored_chunks),
            dict.fromkeys(state.overlay, state.next_offset),
        )

    def add(self, folded: Folded) -> None:
        for leaf in folded.leaves:
            self.overlay[leaf] = folded.next_offset

    def change(self, state: PartitionState) -> PartitionChange:
        """The cursor as of the state folded so far, carrying every leaf its chunk does not hold yet."""
        return PartitionChange(
            topic=state.topic,
            partition=state.partition,
            cursor_stored=self.cursor is not None,
            cursor_accepted=(*([self.cursor] if self.cursor is not None else []), *self.attempted),
            next_offset=state.next_offset,
            recent=state.recent,
            overlay={leaf: state.counters(leaf) for leaf in sorted(self.overlay)},
        )

    def written(self, change: PartitionChange) -> None:
        self.cursor, self.attempted = change.next_offset, []

    def write_failed(self, change: PartitionChange) -> None:
        self.attempted.append(change.next_offset)

    def carried(self) -> dict[str, int]:
        """The chunks whose leaves the cursor carries, with how many: what compaction would take off it."""
        by_chunk: dict[str, int] = {}
        for leaf in self.overlay:
            key = chunk_of(leaf)
            by_chunk[key] = by_chunk.get(key, 0) + 1
        return by_chunk

    def compaction(self, state: PartitionState, chunk: str) -> ChunkWrite:
        """The chunk whole, as the state holds it now (take it with the state's lock held: one moment). The
        applied offset never goes back: a chunk written ahead of the cursor keeps skipping what it holds."""
        held = state.chunks.get(chunk)
        return ChunkWrite(
            chunk=chunk,
            stored=chunk in self.chunks,
            accepted=(*([self.chunks[chunk]] if chunk in self.chunks else []), *self.chunk_attempts.get(chunk, ())),
            applied_offset=max(state.next_offset, self.chunks.get(chunk, 0)),
            as_of=state.next_offset,
            leaves=dict(held.leaves) if held is not None else {},
        )

    def compacted(self, write: ChunkWrite) -> None:
        """The chunk holds its leaves as of `as_of` now: the next cursor need not carry those not changed since."""
        self.chunks[write.chunk] = write.applied_offset
        self.chunk_attempts.pop(write.chunk, None)
        for leaf in [leaf for leaf in self.overlay if chunk_of(leaf) == write.chunk]:
            if self.overlay[leaf] <= write.as_of:
                del self.overlay[leaf]

    def compaction_failed(self, write: ChunkWrite) -> None:
        self.chunk_attempts.setdefault(write.chunk, []).append(write.applied_offset)


class ConcurrentWriteError(Exception):
    """Another consumer wrote this partition's state since it was read: the partition moved in a rebalance."""


class PartitionStore(Protocol):
    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState:
        """The chunks and the cursor of one moment (`PartitionState.restore`)."""
        ...

    async def commit(self, change: PartitionChange) -> None:
        """The cursor, conditional on what was read, else ConcurrentWriteError."""
        ...

    async def compact(self, topic: str, partition: int, write: ChunkWrite) -> None:
        """One chunk, conditional on what was read, else ConcurrentWriteError."""
        ...

    async def cursors(self, topic: str) -> dict[int, int]:
        """partition -> next offset, for every partition with a stored cursor."""
        ...
