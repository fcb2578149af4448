"""How events travel on Kafka: encoding with CloudEvents headers, topic creation, log context, dead letters.

Adapters only: no service's logic lives here. Every service publishes through `encode` so that the body is
the structured CloudEvent and the `ce_*` headers carry the same attributes (binary-mode routing).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import BaseMiddleware

from shared.events import CloudEvent, DeadLetter, DeadLetterRecorded
from shared.privacy import scrub
from shared.topics import CATALOGUE, Topic

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer, ConsumerRecord
    from faststream._internal.basic_types import AsyncFuncAny
    from faststream.kafka import KafkaBroker
    from faststream.message import StreamMessage
    from pydantic import ValidationError

    from shared.crypto import Sealer

log = structlog.get_logger("messaging")

CONTENT_TYPE = "application/cloudevents+json"


def ce_headers(event: CloudEvent[Any]) -> dict[str, str]:
    """CloudEvents Kafka protocol binding attribute headers (`ce_` prefix)."""
    headers = {
        "content-type": CONTENT_TYPE,
        "ce_specversion": event.specversion,
        "ce_id": event.id,
        "ce_type": event.type,
        "ce_source": event.source,
        "ce_time": event.time.isoformat(),
        "ce_schemaversion": str(event.schemaversion),
    }
    if event.subject is not None:
        headers["ce_subject"] = event.subject
    return headers


def encode(event: CloudEvent[Any]) -> tuple[bytes, dict[str, str]]:
    """The record value (structured CloudEvent JSON) and its headers."""
    return event.model_dump_json().encode(), ce_headers(event)


@dataclasses.dataclass(frozen=True, slots=True)
class Keyed:
    """One record to publish: the key routes it to its partition (one worker's events stay in order)."""

    topic: str
    key: str
    value: bytes
    headers: dict[str, str]

    @classmethod
    def of(cls, topic: str, key: str, event: CloudEvent[Any]) -> Keyed:
        value, headers = encode(event)
        return cls(topic, key, value, headers)


async def publish_all(broker: KafkaBroker, records: Iterable[Keyed]) -> None:
    """Publish keyed records and return once the broker has acknowledged every one.

    Not awaited one by one: per-key routing is kept (FastStream's `publish_batch` would send a whole batch to
    one partition) while the producer batches them on the wire.
    """
    pending = [
        await broker.publish(r.value, r.topic, key=r.key.encode(), headers=r.headers, no_confirm=True) for r in records
    ]
    await asyncio.gather(*pending)


async def send_all(producer: AIOKafkaProducer, records: Iterable[Keyed]) -> None:
    """`publish_all` through a plain aiokafka producer, for a stream too hot for FastStream's publish path
    (reporting's snapshots: its command objects and middlewares cost 175 us of CPU a record against aiokafka's
    70, measured on the development machine). Returns once the broker has acknowledged every record."""
    pending = [
        await producer.send(
            r.topic, r.value, key=r.key.encode(), headers=[(name, text.encode()) for name, text in r.headers.items()]
        )
        for r in records
    ]
    await asyncio.gather(*pending)


def describe(error: ValidationError, limit: int = 2000) -> str:
    """A validation error as one line (`field.path: message; ...`), masked and bounded, for a reason or a letter.

    The input is never echoed: it may hold a NIK.
    """
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
        for e in error.errors(include_url=False, include_input=False)
    )
    return scrub(problems)[:limit]


def record_headers(record: ConsumerRecord[Any, Any]) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}


async def ensure_topics(
    bootstrap_servers: str, topics: Iterable[Topic] = CATALOGUE, **client_options: Any
) -> list[str]:
    """Create the catalogue's topics that do not exist yet, with their partitions and configs.

    Safe to call from every service at start-up and from several instances at once. `client_options` carry
    authentication (`ServiceSettings.kafka_client_options()`).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="lindungi-topics", **client_options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=t.name, num_partitions=t.partitions, replication_factor=1, topic_configs=t.config)
            for t in topics
            if t.name not in existing
        ]
        created: list[str] = []
        for topic in missing:
            # Metadata lags creation, so "missing" may already exist: another instance (or a moment ago)
            # won the race. The broker answers with an error code rather than an exception.
            response = await admin.create_topics([topic])
            for _name, code, message in response.topic_errors:
                if code == TopicAlreadyExistsError.errno:
                    continue
                if code != 0:
                    raise RuntimeError(f"creating topic {topic.name} failed: {code} {message}")
                created.append(topic.name)
        return created
    finally:
        await admin.close()


def _records(msg: StreamMessage[Any]) -> list[ConsumerRecord[Any, Any]]:
    raw = msg.raw_message
    return list(raw) if isinstance(raw, tuple | list) else [raw]


class LogContextMiddleware(BaseMiddleware):
    """Binds event id, topic, partition and offset(s) to every log line written while a message is handled."""

    async def consume_scope(self, call_next: AsyncFuncAny, msg: StreamMessage[Any]) -> Any:
        records = _records(msg)
        first = records[0]
        context: dict[str, Any] = {"topic": first.topic, "partition": first.partition}
        if len(records) == 1:
            context["offset"] = first.offset
            event_id = dict(first.headers or ()).get("ce_id")
            if event_id is not None:
                context["event_id"] = event_id.decode("utf-8", "replace")
        else:
            context["offsets"] = f"{first.offset}..{records[-1].offset}"
            context["batch_size"] = len(records)
        with structlog.contextvars.bound_contextvars(**context):
            return await call_next(msg)


def dead_letter(
    record: ConsumerRecord[Any, Any],
    *,
    error_type: str,
    error: str,
    service: str,
    sealer: Sealer,
) -> DeadLetterRecorded:
    """A dead letter for a record: the original bytes sealed (they may hold a NIK), the error masked."""
    value: bytes = record.value or b""
    key: bytes | None = record.key
    return DeadLetterRecorded(
        # Deterministic id: dead-lettering the same record again after a crash is recognisably the same letter.
        id=f"deadletter:{record.topic}:{record.partition}:{record.offset}",
        source=f"lindungi/{service}",
        subject=f"{record.topic}:{record.partition}:{record.offset}",
        data=DeadLetter(
            service=service,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key_sealed=sealer.seal(key) if key is not None else None,
            value_sealed=sealer.seal(value),
            value_size=len(value),
            headers={k: scrub(v) for k, v in record_headers(record).items()},
            error_type=error_type,
            error=scrub(error)[:2000],
        ),
    )


@dataclasses.dataclass(frozen=True)
class DeadLetters:
    """A service's dead-letter topic: letters made from records it cannot handle, logged and published."""

    service: str
    topic: str
    sealer: Sealer

    def letter(self, record: ConsumerRecord[Any, Any], error_type: str, error: str) -> DeadLetterRecorded:
        letter = dead_letter(record, error_type=error_type, error=error, service=self.service, sealer=self.sealer)
        log.warning("dead-lettered", error_type=error_type, error=letter.data.error, dead_letter=letter.subject)
        return letter

    def records(self, letters: Iterable[DeadLetterRecorded]) -> list[Keyed]:
        return [Keyed.of(self.topic, letter.subject or letter.id, letter) for letter in letters]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _readable_headers(record: ConsumerRecord[Any, Any]) -> ConsumerRecord[Any, Any]:
    try:
        for _, value in record.headers:
            value.decode("utf-8")
    except UnicodeDecodeError:
        headers = tuple((k, v.decode("utf-8", "replace").encode()) for k, v in record.headers)
        return dataclasses.replace(record, headers=headers)
    return record


async def tolerant_parser(
    records: tuple[ConsumerRecord[Any, Any], ...],
    parse: Callable[[tuple[ConsumerRecord[Any, Any], ...]], Awaitable[StreamMessage[Any]]],
) -> StreamMessage[Any]:
    # FastStream decodes every header as UTF-8 before the handler runs: one bad header would fail the whole
    # batch where the handler cannot dead-letter it, and the consumer would move past the batch unprocessed.
    return await parse(tuple(_readable_headers(r) for r in records))
