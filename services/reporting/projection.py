"""The projection: folds batches of outcome records into the partitions this instance owns, writes them every
commit interval (each partition's cursor, then, within a time budget, the chunks behind it: domain/partitions.py),
and keeps the read model over every partition current.

The read model changes only when a cursor write succeeded, so what is shown is what is stored. One instance owns the
partitions the consumer group gave it; its memory of them is authoritative because it is their only writer (the
store's compare-and-set turns a second writer into ConcurrentWriteError). Partitions owned by other instances
are re-read from the store when their cursor moves (`refresh`), so the HTTP API and the published snapshots of
any instance cover all partitions.

The live service (through service.py, which steers the consumer around it) and the rebuild command (which
reads the topic itself) use the same projection, so they produce the same figures; that is why it is a module
of its own and not part of the service.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from services.reporting.domain.counters import add_into
from services.reporting.domain.partitions import Checkpoint, ConcurrentWriteError, Pending, fold
from services.reporting.domain.read_model import ReadModel

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from services.reporting.domain.counters import Counters
    from services.reporting.domain.partitions import (
        ChunkWrite,
        PartitionChange,
        PartitionState,
        PartitionStore,
    )
    from shared.events import Outcome


log = structlog.get_logger("reporting")


@dataclass(frozen=True)
class Progress:
    records: int = 0
    applied: int = 0
    duplicates: int = 0

    def __add__(self, other: Progress) -> Progress:
        return Progress(self.records + other.records, self.applied + other.applied, self.duplicates + other.duplicates)


class Projection:
    def __init__(  # noqa: PLR0913 - the options after `*` are keyword-only with defaults
        self,
        store: PartitionStore,
        topic: str,
        window: int,
        commit_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        compaction_seconds: float = math.inf,
        overlay_limit: int = 500,
    ) -> None:
        """`compaction_seconds`: how long each write may spend rewriting chunks after the cursors (inf: every
        chunk behind them); a partition whose cursor carries more than `overlay_limit` leaves has all of its
        chunks rewritten regardless, so that its cursor stays small."""
        self.store = store
        self.topic = topic
        self.window = window
        self.commit_interval = commit_interval
        self.clock = clock
        self.compaction_seconds = compaction_seconds
        self.overlay_limit = overlay_limit
        self.model = ReadModel()
        # Owned partitions: the state folded so far (ahead of the store by `pending`). Others: as last read.
        self.partitions: dict[int, PartitionState] = {}
        self.pending: dict[int, Pending] = {}
        self.checkpoints: dict[int, Checkpoint] = {}  # owned partitions: what the store holds
        self.owned: set[int] = set()
        self.known: set[int] = set()  # every partition of the topic, from the broker's metadata
        # Lost partitions only: what was folded into their cached state but never reached the read model. A
        # partition's share of the model is its state less what is pending or in flight (for lost ones, less
        # this), so the model needs no copy of each partition's counters (half the state's memory).
        self._unshown: dict[int, dict[str, Counters]] = {}
        self._reread: set[int] = set()  # lost partitions whose cached state is not what is stored
        self._last_commit = clock()
        self.lock = asyncio.Lock()  # the state in memory; held briefly, never while writing it
        self._writing = asyncio.Lock()  # one write of the state at a time

    @property
    def is_leader(self) -> bool:
        """The owner of partition 0 publishes snapshots: several instances do not publish the same region."""
        return 0 in self.owned

    async def assign(self, partitions: Iterable[int]) -> dict[int, int]:
        """Take ownership: load each partition's state. Returns where to resume reading each one.

        A partition owned already is not loaded again (the assignment's load and a batch's adoption may
        both ask): its state in memory is ahead of the store."""
        resume: dict[int, int] = {}
        async with self._writing, self.lock:
            for partition in partitions:
                if partition not in self.owned:
                    await self._reload(partition)
                    self.owned.add(partition)
                    self.pending[partition] = Pending()
                    self.checkpoints[partition] = Checkpoint.of(self.partitions[partition])
                resume[partition] = self.partitions[partition].next_offset
        return resume

    async def revoke(self, partitions: Iterable[int]) -> dict[int, int]:
        """Write what is pending for these partitions, then let them go. Returns what was written."""
        async with self._writing:
            leaving = sorted(set(partitions) & self.owned)
            try:
                written = await self._write(leaving)
            except Exception:  # the new owner reads from the last written cursor anyway
                log.warning("writing revoked partitions failed", partitions=leaving, exc_info=True)
                written = {}
            async with self.lock:
                for partition in leaving:
                    self._lose(partition)
            return written

    def next_offset(self, partition: int) -> int | None:
        """Where the state of an owned partition has got to (None when not owned)."""
        state = self.partitions.get(partition)
        return state.next_offset if state is not None and partition in self.owned else None

    async def apply(self, batches: Mapping[int, Sequence[tuple[int, Outcome | None]]]) -> Progress:
        """Fold each owned partition's records into its state in memory; `commit` writes them."""
        progress = Progress()
        async with self.lock:
            for partition, records in batches.items():
                if partition not in self.owned:
                    continue  # revoked after the fetch: its new owner reads these records
                state = self.partitions[partition]
                folded = fold(state, records)
                if folded is None:
                    continue
                state.apply(folded)
                self.pending[partition].add(folded)
                self.checkpoints[partition].add(folded)
                progress += Progress(len(records), folded.applied, folded.duplicates)
        return progress

    def commit_due(self) -> bool:
        pending = any(self.pending[p].moved for p in self.owned)
        return pending and self.clock() - self._last_commit >= self.commit_interval

    async def commit(self) -> dict[int, int]:
        """Write every owned partition's cursor; only then do their changes reach the read model (`compact`
        rewrites the chunks behind them afterwards).

        Batches go on being folded while the cursors are written. Returns the partitions written and their
        next offsets. A failed write stays pending and is written again next time (writes are absolute, so
        one that landed after all is simply overwritten); the first failure is raised once every partition
        was tried.
        """
        async with self._writing:
            return await self._write(sorted(self.owned))

    async def _write(self, partitions: Iterable[int]) -> dict[int, int]:
        self._last_commit = self.clock()
        flights: list[tuple[int, Pending, PartitionChange]] = []
        async with self.lock:
            for partition in partitions:
                pending = self.pending[partition]
                if pending.moved:
                    flights.append((partition, pending, self.checkpoints[partition].change(self.partitions[partition])))
                    self.pending[partition] = Pending()
        # One partition after another, not all at once: FerretDB v1 holds a SQLite connection for every update
        # of a bulk write until the whole command ends, so twelve partitions' bulk writes at once can exhaust
        # its pool of 100, and then every one of them waits for the others (seen in the bench: no reply, ever).
        written: dict[int, int] = {}
        failure: Exception | None = None
        for index, (partition, before, change) in enumerate(flights):
            try:
                await self.store.commit(change)
            except asyncio.CancelledError:
                # Stopped mid-write (shutdown): whether this write landed is unknown, so it and those not
                # started are pending again; the final write on revocation covers both cases.
                for lost_partition, lost_before, lost_change in flights[index:]:
                    if lost_partition in self.pending:
                        self.pending[lost_partition] = lost_before.merged(self.pending[lost_partition])
                        self.checkpoints[lost_partition].write_failed(lost_change)
                raise
            except ConcurrentWriteError:
                log.warning("partition written by another consumer; letting it go", partition=partition)
                async with self.lock:
                    self._lose(partition, in_flight=before.deltas)
                continue
            except Exception as error:  # noqa: BLE001 - kept pending, written again next time; raised below
                async with self.lock:
                    self.pending[partition] = before.merged(self.pending[partition])
                    self.checkpoints[partition].write_failed(change)
                failure = failure or error
                continue
            async with self.lock:
                self.checkpoints[partition].written(change)
                self.model.add(before.deltas)
                self.model.set_offset(self.topic, partition, change.next_offset)
            written[partition] = change.next_offset
        if failure is not None:
            raise failure
        return written

    async def compact(self) -> int:
        """Rewrite the chunks whose leaves the cursors carry, those of partitions whose cursor carries too many
        leaves first, then the chunks that take the most leaves off a cursor, until `compaction_seconds` are
        spent. Returns how many chunks were written. What the figures show does not change: only where it is kept.
        """
        async with self._writing:
            started = self.clock()
            done, failure = 0, None
            for forced, partition, chunk in await self._compactions_due():
                if not forced and self.clock() - started >= self.compaction_seconds:
                    break
                async with self.lock:  # the chunk as the state holds it now, taken whole in one moment
                    checkpoint = self.checkpoints.get(partition)
                    if partition not in self.owned or checkpoint is None:
                        continue  # let go meanwhile
                    write = checkpoint.compaction(self.partitions[partition], chunk)
                try:
                    error = await self._compact(partition, write)
                except asyncio.CancelledError:
                    if (left := self.checkpoints.get(partition)) is not None:
                        left.compaction_failed(write)  # it may have landed
                    raise
                failure, done = failure or error, done + 1
            if failure is not None:
                raise failure
            return done

    async def _compactions_due(self) -> list[tuple[bool, int, str]]:
        """(forced, partition, chunk), in the order `compact` writes them."""
        due: list[tuple[bool, int, int, str]] = []
        async with self.lock:
            for partition in sorted(self.owned):
                checkpoint = self.checkpoints[partition]
                forced = len(checkpoint.overlay) > self.overlay_limit
                for chunk, leaves in checkpoint.carried().items():
                    due.append((forced, partition, leaves, chunk))
        due.sort(key=lambda item: (not item[0], -item[2], item[1], item[3]))
        return [(forced, partition, chunk) for forced, partition, _, chunk in due]

    async def _compact(self, partition: int, write: ChunkWrite) -> Exception | None:
        try:
            await self.store.compact(self.topic, partition, write)
        except ConcurrentWriteError:
            log.warning("partition written by another consumer; letting it go", partition=partition)
            async with self.lock:
                self._lose(partition)
            return None
        except Exception as error:  # noqa: BLE001 - the cursor keeps carrying the leaves; raised by `compact`
            async with self.lock:
                if (checkpoint := self.checkpoints.get(partition)) is not None:
                    checkpoint.compaction_failed(write)
            return error
        async with self.lock:
            if (checkpoint := self.checkpoints.get(partition)) is not None:
                checkpoint.compacted(write)
        return None

    async def refresh(self) -> None:
        """Re-read the partitions other instances own whose cursor moved (nothing to do if we own all)."""
        if self.known and self.known <= self.owned and not self._reread:
            return
        cursors = await self.store.cursors(self.topic)
        async with self.lock:
            for partition, next_offset in sorted(cursors.items()):
                if partition in self.owned:
                    continue
                cached = self.partitions.get(partition)
                if partition in self._reread or cached is None or cached.next_offset != next_offset:
                    await self._reload(partition)
                    self._reread.discard(partition)
            for partition in self.known - self.owned - cursors.keys():
                self.model.offsets.setdefault(f"{self.topic}:{partition}", 0)  # nothing stored yet

    def _lose(self, partition: int, in_flight: Mapping[str, Counters] | None = None) -> None:
        """No longer the writer: what was folded but not written is dropped; the store is read again."""
        self.owned.discard(partition)
        self.checkpoints.pop(partition, None)
        pending = self.pending.pop(partition, None)
        unshown = self._unshown.setdefault(partition, {})
        for deltas in (in_flight or {}, pending.deltas if pending is not None else {}):
            for leaf, delta in deltas.items():
                add_into(unshown.setdefault(leaf, {}), delta)
        self._reread.add(partition)

    async def _reload(self, partition: int) -> None:
        state = await self.store.load_partition(self.topic, partition, self.window)
        cached = self.partitions.get(partition)
        if cached is not None:  # take its share out of the model: the cached state less what was never shown
            self.model.add(dict(cached.leaves()), -1)
            self.model.add(self._unshown.pop(partition, {}))
        self.model.add(dict(state.leaves()))
        self.partitions[partition] = state
        self.model.set_offset(self.topic, partition, state.next_offset)
