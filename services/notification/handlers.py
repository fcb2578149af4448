"""The consumers: records in, decoded events to the notifier, unreadable records to the dead-letter topic.

A batch is handled as a whole: the notifier records every intent of the batch in the ledger (one bulk insert),
then the caller commits the offsets. A record that cannot be read is dead-lettered and skipped, never retried
in place, so one bad record cannot stall its partition.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from services.notification.domain import CoverageSnapshot, UnreadableAggregateError, read_coverage
from shared.events import CloudEvent, DeadLetterRecorded, Outcome, outcome_adapter
from shared.logging import get_logger
from shared.messaging import dead_letter

if TYPE_CHECKING:
    from services.notification.service import Notifier
    from shared.crypto import Sealer

log = get_logger(__name__)

SERVICE = "notification"

Publish = Callable[[CloudEvent[Any], str], Awaitable[None]]


class RecordTooLargeError(ValueError):
    pass


class ConsumerRecord(Protocol):
    """The parts of an aiokafka record the inbox reads (aiokafka ships no type information)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]


@dataclass
class Inbox:
    notifier: Notifier
    publish_dead_letter: Publish
    sealer: Sealer
    max_message_bytes: int

    async def outcomes(self, records: Sequence[ConsumerRecord]) -> None:
        events: list[Outcome] = []
        dead: list[DeadLetterRecorded] = []
        for record in records:
            try:
                events.append(outcome_adapter.validate_json(self._value(record)))
            except (ValidationError, RecordTooLargeError) as exc:
                dead.append(self._dead_letter(record, exc))
        await self.notifier.on_outcomes(events)
        await self._bury(dead)

    async def aggregates(self, records: Sequence[ConsumerRecord]) -> None:
        snapshots: list[CoverageSnapshot] = []
        dead: list[DeadLetterRecorded] = []
        for record in records:
            if record.value is None:
                continue  # a tombstone on the compacted topic: a region removed, nothing to announce
            try:
                snapshots.append(read_coverage(self._value(record)))
            except (UnreadableAggregateError, RecordTooLargeError) as exc:
                dead.append(self._dead_letter(record, exc))
        await self.notifier.on_coverage(snapshots)
        await self._bury(dead)

    def _value(self, record: ConsumerRecord) -> bytes:
        value: bytes = record.value or b""
        if len(value) > self.max_message_bytes:
            raise RecordTooLargeError(f"{len(value)} bytes, the limit is {self.max_message_bytes}")
        return value

    def _dead_letter(self, record: ConsumerRecord, error: Exception) -> DeadLetterRecorded:
        letter = dead_letter(
            record, error_type=type(error).__name__, error=str(error), service=SERVICE, sealer=self.sealer
        )
        log.warning("unreadable record dead-lettered", error_type=letter.data.error_type, dead_letter=letter.subject)
        return letter

    async def _bury(self, letters: list[DeadLetterRecorded]) -> None:
        for letter in letters:
            await self.publish_dead_letter(letter, letter.subject or letter.id)
