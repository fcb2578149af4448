"""Outcome intake: batches of outcome records folded into the owned partitions (written every commit interval
by a task of their own, see app.py).

Where to resume reading comes from the store, not from Kafka's committed offsets: each partition's state and
its next offset are stored together (domain.py), and on assignment the consumer seeks there. Kafka offsets are
still committed after each write, for lag monitoring and as a safe lower bound (see `rewind`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.reporting.projection import Progress, Unreadable, read_outcome
from shared.messaging import dead_letter, encode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from aiokafka import AIOKafkaConsumer, ConsumerRecord
    from faststream.kafka import KafkaBroker

    from services.reporting.projection import Projection
    from services.reporting.settings import ReportingSettings
    from shared.crypto import Sealer
    from shared.events import DeadLetterRecorded, Outcome

log = structlog.get_logger("reporting")


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


@dataclass
class OutcomeIntake:
    settings: ReportingSettings
    projection: Projection
    broker: KafkaBroker
    sealer: Sealer

    async def handle(self, records: Sequence[ConsumerRecord[Any, Any]], consumer: AIOKafkaConsumer) -> Progress:
        mine = [r for r in records if r.topic == self.settings.outcomes_topic]
        skipped = await self._adopt({r.partition for r in mine}, consumer)
        batches: dict[int, list[tuple[int, Outcome | None]]] = {}
        dead: list[DeadLetterRecorded] = []
        for record in mine:
            if record.partition in skipped:
                continue
            outcome = read_outcome(record, self.settings.max_message_bytes)
            if isinstance(outcome, Unreadable):
                resume = self.projection.next_offset(record.partition)
                # Only what the state has not passed yet: a redelivered bad record is not dead-lettered twice.
                if resume is not None and record.offset >= resume:
                    log.warning("dead-lettered", error_type=outcome.error_type, error=outcome.error)
                    dead.append(self._dead(record, outcome))
            batches.setdefault(record.partition, []).append(
                (record.offset, None if isinstance(outcome, Unreadable) else outcome)
            )
        # Dead letters go out before the state moves past them: at least once, never lost.
        await self._publish_dead(dead)
        progress = await self.projection.apply(batches)
        if progress.duplicates:
            log.info("duplicate outcomes ignored", duplicates=progress.duplicates)
        return progress

    def rewind(self, records: Sequence[ConsumerRecord[Any, Any]], consumer: AIOKafkaConsumer) -> None:
        """After a failed batch, read its partitions again from where the state has got to, so nothing is
        skipped: an owned partition from its state's offset, any other from Kafka's committed offset (which
        is never ahead of what is stored)."""
        assigned = consumer.assignment()
        for partition in {r.partition for r in records if r.topic == self.settings.outcomes_topic}:
            tp = TopicPartition(self.settings.outcomes_topic, partition)
            if tp not in assigned:
                continue
            resume = self.projection.next_offset(partition)
            if resume is not None:
                consumer.seek(tp, resume)
            else:
                consumer.seek_to_committed(tp)

    async def _adopt(self, partitions: set[int], consumer: AIOKafkaConsumer) -> set[int]:
        """Partitions the consumer reads but the projection does not own (the assignment listener failed, e.g.
        the store was down during the rebalance, or another writer took the partition over): load them now and
        seek to their stored offset; this batch's records of them are read again. Returns the partitions whose
        records to skip.
        """
        assigned = consumer.assignment()
        orphans = [
            p
            for p in partitions
            if self.projection.next_offset(p) is None and TopicPartition(self.settings.outcomes_topic, p) in assigned
        ]
        if not orphans:
            return set()
        for partition, offset in (await self.projection.assign(orphans)).items():
            consumer.seek(TopicPartition(self.settings.outcomes_topic, partition), offset)
        return set(orphans)

    def _dead(self, record: ConsumerRecord[Any, Any], why: Unreadable) -> DeadLetterRecorded:
        return dead_letter(record, error_type=why.error_type, error=why.error, service="reporting", sealer=self.sealer)

    async def _publish_dead(self, letters: Sequence[DeadLetterRecorded]) -> None:
        pending: list[asyncio.Future[Any]] = []
        for letter in letters:
            value, headers = encode(letter)
            pending.append(
                await self.broker.publish(
                    value,
                    self.settings.dead_letters_topic,
                    key=(letter.subject or "").encode(),
                    headers=headers,
                    no_confirm=True,
                )
            )
        await asyncio.gather(*pending)


class PartitionAssignments(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka's base is untyped
    """Loads an assigned partition's state and seeks to the offset stored with it; writes what is pending for
    a revoked one before letting it go.

    The state is loaded in a task of its own, not in the callback: aiokafka sends no heartbeat while
    `on_partitions_assigned` runs, so a load that outlasts the session timeout (a busy or recovering store)
    gets the member expelled, its partitions move to the other instance, whose load expels it in turn: a
    rebalance storm that stopped reporting for minutes in the reliability run. A batch that arrives before
    the load is done adopts its partitions itself (`OutcomeIntake._adopt`); records before a partition's
    stored offset are skipped by the fold, so whichever comes first, nothing is counted twice or skipped.
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
            # The handler adopts these partitions on their first batch (OutcomeIntake._adopt).
            log.exception("loading assigned partitions failed", partitions=partitions)
            return
        assigned = consumer.assignment()
        for partition, offset in resume.items():
            tp = TopicPartition(self.topic, partition)
            if tp in assigned:
                consumer.seek(tp, offset)
        log.info("partitions assigned", resume=resume)

    async def _stop_loading(self) -> None:
        """A load still running belongs to the assignment that is now ending: it must not finish after it."""
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loading
        self._loading = None
