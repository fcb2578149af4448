"""The budget topic's side of reporting: positions decoded (what is not a budget event dead-lettered), the
newest kept per budget in reporting's own store, and the positions other instances stored read back.

A second stream beside the outcomes, read by a consumer group of its own (`<group>-budgets`) so a rebalance
of one does not pause the other. Unlike the outcomes it is small (one record per budget change, a few
thousand budgets) and idempotent by nature (the highest `sequence` per budget wins), so it commits after each
batch like the other services do, and every instance keeps every budget in memory for its figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiokafka import ConsumerRebalanceListener
from pydantic import ValidationError

from services.reporting.domain.budgets import BudgetBook, BudgetRecord, CoverageCost
from services.reporting.handlers import Unreadable
from shared.events import BudgetPositionChanged, budget_event_adapter
from shared.messaging import describe, publish_all

if TYPE_CHECKING:
    from collections.abc import Callable, Container, Iterable, Sequence

    from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
    from faststream.kafka import KafkaBroker

    from services.reporting.service import Metrics
    from shared.consumer import Records
    from shared.events import BudgetEvent, BudgetPosition, DeadLetterRecorded
    from shared.messaging import DeadLetters

log = structlog.get_logger("reporting")


class BudgetStore(Protocol):
    async def save_budgets(self, records: Sequence[BudgetRecord], known: Container[str]) -> set[str]: ...

    async def budget_sequences(self) -> dict[str, int]: ...

    async def load_budgets(self, keys: Iterable[str] | None = None) -> list[BudgetRecord]: ...


@dataclass
class BudgetLedger:
    """Every budget's latest record: in memory for the figures, in the store for a restart and the other
    instances."""

    store: BudgetStore
    cost: CoverageCost
    metrics: Metrics
    book: BudgetBook = field(default_factory=BudgetBook)
    # Who reads the budget topic (None: nobody tells, so another instance may store positions at any time).
    readers: BudgetReaders | None = None
    _refreshed: int | None = None  # the readers' generation the last full read began in

    async def record(self, positions: Iterable[BudgetPosition]) -> None:
        """Keep each position newer than the kept one; stored first, so what is shown is what is stored.

        A batch's positions of one budget are folded in memory and only the last record is stored: the same
        record as storing each in turn, one write instead of several (registration sends a position per
        budget per batch of its own, and one write per position kept reporting's store busy). The batch's
        records are stored together (`save_budgets`); those it cannot say were stored are read back, which
        keeps whatever is stored: ours, or a newer one another instance stored meanwhile (a rebalance)."""
        newest: dict[str, BudgetRecord] = {}
        for position in positions:  # in the partition's order: a budget's positions follow one another
            record = self.book.apply(position, after=newest.get(position.key))
            if record is None:
                self.metrics.budget_positions_stale.inc()
                continue
            newest[position.key] = record
            self.metrics.budget_positions.inc()
        records = list(newest.values())
        known: Container[str] = self.book.records
        for _ in range(2):
            unsure = await self.store.save_budgets(records, known)
            for record in records:
                if record.key not in unsure:
                    self.book.keep(record)
            if not unsure:
                return
            await self._read(unsure)
            kept = self.book.sequences()
            self.metrics.budget_positions_stale.inc(
                sum(kept.get(r.key, 0) > r.position.sequence for r in records if r.key in unsure)
            )
            # Neither ours nor a newer one stored: the document is gone (deleted by hand); insert it again.
            records = [r for r in records if r.key in unsure and kept.get(r.key, 0) < r.position.sequence]
            if not records:
                return
            known = ()
        raise RuntimeError(f"budget positions not stored: {sorted(r.key for r in records)}; the batch is read again")

    async def refresh(self) -> None:
        """Read back the budgets whose stored sequence is ahead of memory (another instance consumed them).
        Nothing to read while this instance is the budget topic's only reader and has read the store since it
        became so: the read is a scan of every budget on FerretDB, and it came before every round of snapshots
        (150 ms of each at 200 requests/s)."""
        readers = self.readers
        generation = readers.generation if readers is not None else 0
        if readers is not None and readers.sole_reader and self._refreshed == generation:
            return
        stored = await self.store.budget_sequences()
        kept = self.book.sequences()
        await self._read(key for key, sequence in stored.items() if sequence > kept.get(key, 0))
        self._refreshed = generation  # a rebalance during the read moved the generation on: read again next round

    async def _read(self, keys: Iterable[str]) -> None:
        wanted = list(keys)
        if wanted:
            for record in await self.store.load_budgets(wanted):
                self.book.keep(record)


class BudgetReaders(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    """The budget consumer's assignments as the ledger needs them: whether this instance reads every
    partition of the topic, and a generation that moves on each rebalance (after one, the store is read once
    more: another instance may have stored positions while it held some of the partitions)."""

    def __init__(self, topic: str, consumer: Callable[[], AIOKafkaConsumer | None]) -> None:
        self.topic = topic
        self.consumer = consumer
        self.sole_reader = False
        self.generation = 0

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:  # noqa: ARG002 - aiokafka's
        self.sole_reader = False
        self.generation += 1

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self.consumer()
        every = set(consumer.partitions_for_topic(self.topic) or ()) if consumer is not None else set()
        mine = {tp.partition for tp in assigned if tp.topic == self.topic}
        self.generation += 1
        self.sole_reader = bool(every) and mine == every


def read_budget_event(record: ConsumerRecord[Any, Any], max_bytes: int) -> BudgetEvent | Unreadable:
    value: bytes = record.value or b""
    if len(value) > max_bytes:
        return Unreadable("MessageTooLarge", f"{len(value)} bytes > {max_bytes}")
    try:
        return budget_event_adapter.validate_json(value)
    except ValidationError as error:
        return Unreadable("SchemaInvalid", describe(error))


@dataclass(frozen=True)
class BudgetHandler:
    """Batches of the budget topic: positions kept, allocation records skipped (every position carries the
    allocation in force), unreadable records dead-lettered. `ledger` is None before the lifespan started."""

    max_bytes: int
    ledger: Callable[[], BudgetLedger | None]
    broker: KafkaBroker
    dead_letters: DeadLetters

    async def handle(self, records: Records) -> None:
        ledger = self.ledger()
        if ledger is None:
            raise RuntimeError("reporting is not started")
        positions: list[BudgetPosition] = []
        letters: list[DeadLetterRecorded] = []
        for record in records:
            event = read_budget_event(record, self.max_bytes)
            if isinstance(event, Unreadable):
                letters.append(self.dead_letters.letter(record, event.error_type, event.error))
            elif isinstance(event, BudgetPositionChanged):
                positions.append(event.data)
        # Dead letters first: a batch that fails after them is read again and may letter a record twice
        # (at least once), never lose one.
        await publish_all(self.broker, self.dead_letters.records(letters))
        await ledger.record(positions)
