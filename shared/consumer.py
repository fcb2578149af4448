"""The batch consumer every service runs: records in, effects made durable, then the offsets committed.

The rule is commit-after-effects. A batch's offsets are committed only once its handler has returned, that is
once everything the batch decided is stored and published. A handler that raises (the store or the broker is
down) commits nothing: the batch is rewound, the consumer backs off, and the same records come again. Every
handler is idempotent, so a batch read twice is applied once: nothing is lost and nothing is doubled.

A record that can never be handled (undecodable, too large, of an unknown kind) is not an exception of the
handler: the handler answers it or dead-letters it (`DeadLetters`, `shared.messaging`) and moves on, so one bad
record cannot stall its partition.

A poison pill is the record the handler did not foresee: decoding passes, then the domain raises (a bug, a
value no rule expected). Retried for ever it would stall its partition, so an exception is read by its kind:
- infrastructure trouble (`PyMongoError`, `KafkaError`, `OSError`, `TimeoutError`, and a bare `RuntimeError`,
  which the services raise to say "not now": not started yet, a store answer that cannot be trusted) is waited
  out however long it lasts, the batch rewound and read again: dead-lettering records because the store is
  down would lose them;
- anything else is retried in place a bounded number of times (`Batches.attempts`); if the batch still fails,
  each record is handled alone, and a record that still fails alone after as many tries is dead-lettered with
  its original bytes (sealed) and the error, so the offset moves on. Records handled alone are handled again
  if the batch is read again later: every handler is idempotent.

Reporting commits differently: its offsets follow the periodic write of its state, not each batch, so it
subscribes with `commit=False` and rewinds to its stored cursors rather than to Kafka's committed offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaMessage
from pymongo.errors import PyMongoError

from shared.messaging import DeadLetters, publish_all, tolerant_parser

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
    from faststream.kafka import KafkaBroker
    from faststream.kafka.subscriber.usecase import BatchSubscriber
    from faststream.message import StreamMessage
    from prometheus_client import Counter

    from shared.settings import ServiceSettings

log = structlog.get_logger("consumer")

Records = Sequence["ConsumerRecord[bytes, bytes]"]
Handle = Callable[[Records], Awaitable[None]]
Rewind = Callable[[Records], None]


async def raw_values(message: StreamMessage[Any]) -> list[bytes]:
    # Every handler decodes each record itself, so that one broken record is dead-lettered alone: FastStream's
    # decoder would parse a body labelled `application/json` and fail the whole batch on the first bad one.
    return [r.value or b"" for r in message.raw_message]


@dataclass(frozen=True)
class Batches:
    """Where and how one subscriber reads: topic (or a regular expression of topics), group, batch size, and
    where a new group starts."""

    topic: str
    group_id: str
    max_records: int
    timeout_ms: int = 100
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    #: Subscribe to every topic matching this regular expression instead of `topic` (which then only names
    #: the subscription in logs): a topic created later is joined at the next metadata refresh.
    pattern: str | None = None
    #: Where a poison pill goes (a record the handler keeps raising on); None: retried for ever.
    dead_letters: DeadLetters | None = None
    #: Tries of a failing batch, then of each of its records alone, before a record is a poison pill.
    attempts: int = 3

    @classmethod
    def of(
        cls,
        settings: ServiceSettings,
        topic: str,
        *,
        group_id: str | None = None,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        pattern: str | None = None,
    ) -> Batches:
        """The service's batch settings for `topic`, in its own group unless another is named; poison pills
        go to the service's dead-letter topic."""
        service = str(settings.model_config.get("env_prefix", "")).rstrip("_").lower() or "service"
        return cls(
            topic,
            group_id or settings.group_id,
            settings.batch_max_records,
            settings.batch_timeout_ms,
            auto_offset_reset,
            pattern,
            DeadLetters(service, settings.dead_letters_topic, settings.sealer()),
        )


def infrastructure_trouble(error: BaseException) -> bool:
    """An error to wait out rather than to blame a record for (module docstring). A handler's task group wraps
    what its tasks raised: a full disk under two concurrent writes arrives as a group of store errors, and is
    waited out like one (the reliability soak lost requests to exactly that)."""
    if isinstance(error, BaseExceptionGroup):
        return any(infrastructure_trouble(inner) for inner in error.exceptions)
    return isinstance(error, PyMongoError | KafkaError | OSError | TimeoutError) or type(error) is RuntimeError


def batch_subscriber(  # noqa: PLR0913 - one consumer's whole description, all keyword-only
    broker: KafkaBroker,
    batches: Batches,
    handle: Handle,
    *,
    failures: Counter,
    title: str,
    description: str,
    commit: bool = True,
    rewind: Rewind | None = None,
    listener: ConsumerRebalanceListener | None = None,
    back_off: float = 1.0,
) -> BatchSubscriber:
    """Subscribe `handle` to batches of raw records under the commit-after-effects rule.

    `commit=False` leaves committing to the handler's own state writes (reporting). `rewind` replaces the
    default rewind (each partition back to the batch's first record, Kafka's committed position) for a
    service that keeps its own cursors. `failures` counts the batches that failed and were read again.
    """
    topics: tuple[str, ...] = () if batches.pattern else (batches.topic,)
    subscriber = broker.subscriber(
        *topics,
        pattern=batches.pattern,
        group_id=batches.group_id,
        batch=True,
        max_records=batches.max_records,
        batch_timeout_ms=batches.timeout_ms,
        auto_offset_reset=batches.auto_offset_reset,
        ack_policy=AckPolicy.MANUAL,
        listener=listener,
        parser=tolerant_parser,
        decoder=raw_values,
        title=title,
        description=description,
    )

    _top_up_batches(subscriber, TOP_UP_MS)

    poison = batches.dead_letters
    guarded = handle
    if poison is not None and rewind is None:
        # A service that rewinds to its own cursors (reporting) folds records into state it writes later: a
        # record skipped there would be skipped in that state's cursors too, so it keeps waiting instead.
        guarded = PoisonGuard(handle, broker, poison, batches.attempts, back_off, failures)

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records: Records = raw if isinstance(raw, tuple) else (raw,)
        try:
            await guarded(records)
        except Exception:
            # Infrastructure trouble: nothing of this batch is committed; read it again after a pause.
            failures.inc()
            log.exception("batch failed; reading it again", topic=batches.topic, batch_size=len(records))
            if rewind is None:
                await message.nack()
            else:
                rewind(records)
            await asyncio.sleep(back_off)
            return
        if commit:
            await message.ack()

    return subscriber


#: How long a batch waits for the fetch its own read set off (a local broker answers in a few milliseconds).
TOP_UP_MS = 20


def _top_up_batches(subscriber: BatchSubscriber, top_up_ms: int) -> None:
    """Top each batch up with what the fetch set off by reading it brings back within `top_up_ms`.

    aiokafka fetches a partition again only once the records it holds of it are all read. Records that reach
    the broker while a batch is handled are therefore fetched only when the next batch is read, and handled in
    the batch after that: at a steady rate a record waited two and a half batch cycles on average. Reading a
    batch empties the buffer and sets off a fetch at once; taking its answer into the same batch makes the
    wait about one and a half cycles. Per partition the records stay in offset order (both reads are of the
    partition's next records, one after the other).

    FastStream reads a batch subscriber's records in `get_msg` and offers no hook for it, so that method is
    wrapped on this subscriber (tests/integration/test_consumer.py notices if it goes away).
    """
    read = subscriber.get_msg
    most = subscriber.max_records

    async def get_msg(consumer: AIOKafkaConsumer) -> tuple[ConsumerRecord[bytes, bytes], ...]:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = await read(consumer)
        if records and (most is None or len(records) < most):
            more = await consumer.getmany(
                timeout_ms=top_up_ms, max_records=None if most is None else most - len(records)
            )
            records += tuple(record for batch in more.values() for record in batch)
        return records

    subscriber.get_msg = get_msg  # type: ignore[method-assign]


@dataclass(frozen=True)
class PoisonGuard:
    """A handler that cannot be stalled by one record: a batch failing for a reason other than infrastructure
    trouble is tried `attempts` times, then record by record; a record failing alone is dead-lettered."""

    handle: Handle
    broker: KafkaBroker
    dead_letters: DeadLetters
    attempts: int
    back_off: float
    failures: Counter

    async def __call__(self, records: Records) -> None:
        if await self._tries(records, self.back_off) is None:
            return
        log.warning("batch keeps failing; handling its records one by one", batch_size=len(records))
        for record in records:
            # No pause between a single record's tries: the batch's tries already gave a passing cause time.
            error = await self._tries((record,), 0)
            if error is not None:
                why = f"{type(error).__name__}: {error} (raised {self.attempts} times)"
                letter = self.dead_letters.letter(record, "HandlerFailed", why)
                await publish_all(self.broker, self.dead_letters.records([letter]))

    async def _tries(self, records: Records, pause: float) -> Exception | None:
        """None once `records` are handled; the last error if every try raised. Infrastructure trouble is
        raised at once, for the subscriber to rewind and wait."""
        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(pause)
            try:
                await self.handle(records)
            except Exception as error:
                if infrastructure_trouble(error):
                    raise
                self.failures.inc()
                log.exception("handler raised", attempt=attempt + 1, batch_size=len(records))
                last = error
            else:
                return None
        return last
