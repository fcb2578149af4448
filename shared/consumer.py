"""The batch consumer every service runs: records in, effects made durable, then the offsets committed.

The rule is commit-after-effects. A batch's offsets are committed only once its handler has returned, that is
once everything the batch decided is stored and published. A handler that raises (the store or the broker is
down) commits nothing: the batch is rewound, the consumer backs off, and the same records come again. Every
handler is idempotent, so a batch read twice is applied once: nothing is lost and nothing is doubled.

A record that can never be handled (undecodable, too large, of an unknown kind) is not an exception of the
handler: the handler answers it or dead-letters it (`DeadLetters`, `shared.messaging`) and moves on, so one bad
record cannot stall its partition.

Reporting commits differently: its offsets follow the periodic write of its state, not each batch, so it
subscribes with `commit=False` and rewinds to its stored cursors rather than to Kafka's committed offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaMessage

from shared.messaging import tolerant_parser

if TYPE_CHECKING:
    from aiokafka import ConsumerRebalanceListener, ConsumerRecord
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
        """The service's batch settings for `topic`, in its own group unless another is named."""
        return cls(
            topic,
            group_id or settings.group_id,
            settings.batch_max_records,
            settings.batch_timeout_ms,
            auto_offset_reset,
            pattern,
        )


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

    @subscriber
    async def consume(message: KafkaMessage) -> None:
        raw = message.raw_message
        records: Records = raw if isinstance(raw, tuple) else (raw,)
        try:
            await handle(records)
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
