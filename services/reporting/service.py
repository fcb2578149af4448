"""The application layer: decoded outcomes folded into the partitions this instance owns, the state written
every commit interval with Kafka told what is stored, and the consumer sent back to the stored cursors.

Where to resume reading comes from the store, not from Kafka's committed offsets: each partition's state and
its next offset are stored together (domain/partitions.py), and on assignment the consumer seeks there. Kafka
offsets are still committed after each write, for lag monitoring and as a safe lower bound. So batches are
not committed one by one (the subscriber runs with `commit=False`): folding goes on in memory while
`keep_writing` writes the state every commit interval, and only then commits.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog
from prometheus_client import Counter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from prometheus_client import CollectorRegistry

    from services.reporting.projection import Progress, Projection
    from shared.events import Outcome

log = structlog.get_logger("reporting")


class Positions(Protocol):
    """The consumer's side of the outcome topic, by partition number: what it was given, where it reads."""

    def assigned(self) -> set[int]: ...

    def seek(self, partition: int, offset: int) -> None: ...

    async def commit(self, written: Mapping[int, int]) -> None:
        """Tell Kafka what is stored (monitoring only: the store's cursors are what counts)."""
        ...


@dataclass(frozen=True)
class Metrics:
    applied: Counter
    duplicates: Counter
    failures: Counter
    budget_positions: Counter
    budget_positions_stale: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            Counter("reporting_outcomes_applied", "outcome events counted", registry=registry),
            Counter("reporting_outcomes_duplicate", "outcome events seen before (same event id)", registry=registry),
            Counter("reporting_batch_failures", "batches that failed and were read again", registry=registry),
            Counter("reporting_budget_positions_applied", "budget positions kept (newest so far)", registry=registry),
            Counter(
                "reporting_budget_positions_stale",
                "budget positions ignored: a newer or equal sequence is kept (redelivered, late)",
                registry=registry,
            ),
        )


@dataclass
class Reporting:
    projection: Projection
    positions: Positions
    metrics: Metrics
    catching_up: bool = False  # the last batch came full: more is waiting (the publisher spaces out kecamatan)

    async def adopt(self, partitions: Iterable[int]) -> set[int]:
        """Partitions the consumer reads but the projection does not own (the assignment listener failed, e.g.
        the store was down during the rebalance, or another writer took the partition over): load them now and
        seek to their stored offset. Returns them: this batch's records of them are read again after the seek.
        """
        assigned = self.positions.assigned()
        orphans = [p for p in partitions if self.projection.next_offset(p) is None and p in assigned]
        if not orphans:
            return set()
        for partition, offset in (await self.projection.assign(orphans)).items():
            self.positions.seek(partition, offset)
        return set(orphans)

    def unread(self, partition: int, offset: int) -> bool:
        """Whether the state of an owned partition has not passed this record yet (a record of a partition not
        owned is its new owner's)."""
        resume = self.projection.next_offset(partition)
        return resume is not None and offset >= resume

    async def fold(
        self, batches: Mapping[int, Sequence[tuple[int, Outcome | None]]], *, full: bool = False
    ) -> Progress:
        """Fold each owned partition's records (None: dead-lettered) into its state in memory. `full`: the
        consumer's batch had as many records as it may hold, so more are waiting."""
        self.catching_up = full
        progress = await self.projection.apply(batches)
        if progress.duplicates:
            log.info("duplicate outcomes ignored", duplicates=progress.duplicates)
        self.metrics.applied.inc(progress.applied)
        self.metrics.duplicates.inc(progress.duplicates)
        return progress

    def rewind(self, partitions: Iterable[int]) -> None:
        """After a failed batch, read its partitions again from where the state has got to, so nothing is
        skipped. A partition not owned stays where it is: its next batch adopts it (`adopt`) and seeks to its
        stored offset, which Kafka's committed one is never ahead of."""
        assigned = self.positions.assigned()
        for partition in set(partitions) & assigned:
            resume = self.projection.next_offset(partition)
            if resume is not None:
                self.positions.seek(partition, resume)

    async def write_state(self, written: Callable[[], None] | None = None) -> None:
        """Write the cursors of what was folded since the last write, commit their offsets to Kafka, say so
        (`written`: the snapshot publisher need not wait for its next round), then compact the chunks behind."""
        started = time.monotonic()
        offsets = await self.projection.commit()
        await self.positions.commit(offsets)
        checkpointed = time.monotonic()
        if written is not None:
            written()
        chunks = await self.projection.compact()
        if offsets or chunks:
            log.debug(
                "state written",
                partitions=len(offsets),
                cursors_seconds=round(checkpointed - started, 3),
                chunks=chunks,
                chunks_seconds=round(time.monotonic() - checkpointed, 3),
            )

    async def keep_writing(self, interval: float, written: Callable[[], None] | None = None) -> None:
        """Every commit interval (from the start of one write to the next), write what was folded since the
        last write, while folding goes on."""
        while True:
            started = time.monotonic()
            try:
                await self.write_state(written)
            except Exception:
                self.metrics.failures.inc()
                log.exception("writing the state failed; it stays pending and is written again")
            await asyncio.sleep(max(0.0, started + interval - time.monotonic()))

    async def close(self) -> None:
        """The last write, at shutdown: what is not written now is read again at the next start."""
        try:
            await self.write_state()
        except Exception:  # shutting down either way
            log.warning("writing the state at shutdown failed", exc_info=True)
