"""How much memory reporting's projection takes for N distinct participants, without Kafka or a store.

    python -m bench.state_memory 200000

Decides N seeded synthetic requests with the registration domain (`bench.data.outcome_templates`: each one a
participant of its own, as in the backfill), spreads the outcomes over 12 partitions by key, folds them into a
`Projection` in batches of 2,000 with a write after each, and prints the memory allocated during the fold and
still held at its end (tracemalloc: RSS would hide it, reusing what the decided templates freed). The store
keeps nothing, so the figure is the projection's own memory: its partitions' state and the read model. Run it
from a checkout of another revision (`cd <worktree> && python -m bench.state_memory N`) to compare revisions;
the findings in `bench/template.md` quote it.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
import zlib
from datetime import date
from typing import Any

from bench.data import outcome_templates
from services.reporting.domain.partitions import PartitionState, RecentEvents
from services.reporting.projection import Projection
from shared.events import outcome_adapter

PARTITIONS = 12
BATCH = 2_000


class NullStore:
    """Loads empty partitions and forgets every write."""

    async def load_partition(self, topic: str, partition: int, window: int) -> PartitionState:
        return PartitionState(topic, partition, RecentEvents(window))

    async def commit(self, change: Any) -> None:  # noqa: ARG002 - PartitionStore's signature
        return None

    async def cursors(self, topic: str) -> dict[int, int]:  # noqa: ARG002 - PartitionStore's signature
        return {}


async def fold_all(events: list[tuple[int, Any]]) -> tuple[Projection, float]:
    projection = Projection(NullStore(), "outcomes", window=10_000)  # type: ignore[arg-type]
    await projection.assign(range(PARTITIONS))
    gc.collect()
    tracemalloc.start()
    offsets = [0] * PARTITIONS
    for start in range(0, len(events), BATCH):
        batches: dict[int, list[tuple[int, Any]]] = {}
        for partition, event in events[start : start + BATCH]:
            batches.setdefault(partition, []).append((offsets[partition], event))
            offsets[partition] += 1
        await projection.apply(batches)
        await projection.commit()
    gc.collect()
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return projection, held / 2**20


def main(count: int) -> None:
    templates = outcome_templates(count, 7, today=date(2026, 11, 30), nik_secret=b"bench-state-memory".ljust(32))
    events = [
        (zlib.crc32(t.key) % PARTITIONS, outcome_adapter.validate_json(t.record(f"state-memory-{i}")[1]))
        for i, t in enumerate(templates)
    ]
    del templates
    projection, growth = asyncio.run(fold_all(events))
    leaves = [counters for state in projection.partitions.values() for _, counters in state.leaves()]
    print(
        f"{count:,} participants: {len(leaves):,} (partition, leaf) pairs, "
        f"{sum(len(c) for c in leaves):,} counters, held by the projection {growth:.1f} MiB"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
