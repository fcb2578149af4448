"""The Kafka side of reporting: outcome records decoded for the application layer (service.py), what is not an
outcome dead-lettered, and the consumer's partitions (the rebalance listener, seeks and offset commits).

The rebalance listener lives here rather than in a module of its own: like the handler, it is an adapter
that turns what Kafka says (partitions assigned, revoked) into the projection's terms, and it shares the
offset commit with `KafkaPositions`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from shared.events import outcome_adapter
from shared.messaging import describe, publish_all

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from aiokafka import AIOKafkaConsumer, ConsumerRecord
    from faststream.kafka import KafkaBroker

    from services.reporting.projection import Projection
    from services.reporting.service import Reporting
    from shared.consumer import Records
    from shared.events import DeadLetterRecorded, Outcome
    from shared.messaging import DeadLetters

log = structlog.get_logger("reporting")


@dataclass(frozen=True)
class Unreadable:
    """Why a record is not an outcome event this service knows; it goes to the dead-letter topic."""

    error_type: str
    error: str


def read_outcome(record: ConsumerRecord[Any, Any], max_bytes: int) -> Outcome | Unreadable:
    """An outcome, or why the record is not one (the rebuild command reads records the same way)."""
    value: bytes = record.value or b""
    if len(value) > max_bytes:
        return Unreadable("MessageTooLarge", f"{len(value)} bytes > {max_bytes}")
    try:
        return outcome_adapter.validate_json(value)
    except ValidationError as error:
        return Unreadable("SchemaInvalid", describe(error))


@dataclass(frozen=True)
class OutcomeHandler:
    """Batches of the outcome topic: decoded, unreadable records dead-lettered, the rest folded.

    `reporting` gives the application layer once the lifespan has created it (None before).
    """

    topic: str
    max_bytes: int
    reporting: Callable[[], Reporting | None]
    broker: KafkaBroker
    dead_letters: DeadLetters
    batch_max_records: int

    async def handle(self, records: Records) -> None:
        reporting = self.reporting()
        if reporting is None:
            raise RuntimeError("reporting is not started")
        mine = [r for r in records if r.topic == self.topic]
        again = await reporting.adopt({r.partition for r in mine})
        batches: dict[int, list[tuple[int, Outcome | None]]] = {}
        letters: list[DeadLetterRecorded] = []
        for record in mine:
            if record.partition in again:
                continue  # adopted just now: read again from its stored offset
            outcome = read_outcome(record, self.max_bytes)
            # Only what the state has not passed yet: a redelivered bad record is not dead-lettered twice.
            if isinstance(outcome, Unreadable) and reporting.unread(record.partition, record.offset):
                letters.append(self.dead_letters.letter(record, outcome.error_type, outcome.error))
            batches.setdefault(record.partition, []).append(
                (record.offset, None if isinstance(outcome, Unreadable) else outcome)
            )
        # Dead letters go out before the state moves past them: at least once, never lost.
        await publish_all(self.broker, self.dead_letters.records(letters))
        await reporting.fold(batches, full=len(records) >= self.batch_max_records)

    def rewind(self, records: Records) -> None:
        reporting = self.reporting()
        if reporting is not None:
            reporting.rewind({r.partition for r in records if r.topic == self.topic})


async def commit_offsets(consumer: AIOKafkaConsumer | None, topic: str, written: Mapping[int, int]) -> None:
    """Tell Kafka what is stored (monitoring only: the store's cursors are what counts)."""
    if consumer is None or not written:
        return
    assigned = consumer.assignment()
    offsets = {tp: n for p, n in written.items() if (tp := TopicPartition(topic, p)) in assigned}
    try:
        if offsets:
            await consumer.commit(offsets)
    except KafkaError:
        log.warning("offset commit failed", exc_info=True)


@dataclass(frozen=True)
class KafkaPositions:
    """The consumer's partitions of one topic by number (`service.Positions`); none before it has started."""

    topic: str
    consumer: Callable[[], AIOKafkaConsumer | None]

    def assigned(self) -> set[int]:
        consumer = self.consumer()
        if consumer is None:
            return set()
        return {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}

    def seek(self, partition: int, offset: int) -> None:
        consumer = self.consumer()
        if consumer is not None:
            consumer.seek(TopicPartition(self.topic, partition), offset)

    async def commit(self, written: Mapping[int, int]) -> None:
        await commit_offsets(self.consumer(), self.topic, written)


class PartitionAssignments(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    """Loads an assigned partition's state and seeks to the offset stored with it; writes what is pending for
    a revoked one before letting it go.

    The state is loaded in a task of its own, not in the callback: aiokafka sends no heartbeat while
    `on_partitions_assigned` runs, so a load that outlasts the session timeout (a busy or recovering store)
    gets the member expelled, its partitions move to the other instance, whose load expels it in turn: a
    rebalance storm that stopped reporting for minutes in the reliability run. A batch that arrives before
    the load is done adopts its partitions itself (`Reporting.adopt`); records before a partition's stored
    offset are skipped by the fold, so whichever comes first, nothing is counted twice or skipped.
    """

    def __init__(
        self,
        projection: Callable[[], Projection | None],
        topic: str,
        consumer: Callable[[], AIOKafkaConsumer | None],
    ) -> None:
        self.projection = projection
        self.topic = topic
        self.consumer = consumer
        self._loading: asyncio.Task[None] | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._stop_loading()
        projection = self.projection()
        if projection is not None:
            written = await projection.revoke(tp.partition for tp in revoked if tp.topic == self.topic)
            await commit_offsets(self.consumer(), self.topic, written)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        projection, consumer = self.projection(), self.consumer()
        if projection is None or consumer is None:
            return
        projection.known = set(consumer.partitions_for_topic(self.topic) or ())
        mine = sorted(tp.partition for tp in assigned if tp.topic == self.topic)
        await self._stop_loading()
        self._loading = asyncio.create_task(self._load(projection, consumer, mine), name="reporting-assign")

    async def _load(self, projection: Projection, consumer: AIOKafkaConsumer, partitions: list[int]) -> None:
        try:
            resume = await projection.assign(partitions)
        except Exception:
            # The handler adopts these partitions on their first batch (Reporting.adopt).
            log.exception("loading assigned partitions failed", partitions=partitions)
            return
        assigned = consumer.assignment()
        for partition, offset in resume.items():
            tp = TopicPartition(self.topic, partition)
            if tp in assigned:
                consumer.seek(tp, offset)
        log.info("partitions assigned", resume=resume)
        # Kafka is told at every write, after the cursors are stored: an instance that stopped between the two
        # (kill -9) left Kafka's offsets behind the stored cursors, and with nothing more to read on those
        # partitions no write came to correct them (the reliability run saw a lag of 15 that never cleared).
        await commit_offsets(consumer, self.topic, {p: n for p, n in resume.items() if n > 0})

    async def _stop_loading(self) -> None:
        """A load still running belongs to the assignment that is now ending: it must not finish after it."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        self._loading = None
