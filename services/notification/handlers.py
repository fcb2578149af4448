"""The consumers: records in, decoded events to the notifier, unreadable records to the dead-letter topic.

A batch is handled as a whole: the notifier records every intent of the batch in the ledger (one bulk insert),
the batch's dead letters are published and acknowledged, then the caller (`shared.consumer`) commits the
offsets. A record that cannot be read is dead-lettered and skipped, never retried in place, so one bad record
cannot stall its partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from services.notification.domain.coverage import CoverageSnapshot, UnreadableAggregateError, read_coverage
from shared.events import (
    BudgetPosition,
    BudgetPositionChanged,
    DeadLetterRecorded,
    Outcome,
    budget_event_adapter,
    outcome_adapter,
)
from shared.messaging import describe, publish_all

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord
    from faststream.kafka import KafkaBroker

    from services.notification.budget_alerts import BudgetAlerts
    from services.notification.service import Notifier
    from shared.consumer import Records
    from shared.messaging import DeadLetters

SERVICE = "notification"


class RecordTooLargeError(ValueError):
    pass


@dataclass(frozen=True)
class Inbox:
    notifier: Notifier
    budget_alerts: BudgetAlerts
    broker: KafkaBroker
    dead_letters: DeadLetters
    max_message_bytes: int

    async def outcomes(self, records: Records) -> None:
        events: list[Outcome] = []
        dead: list[DeadLetterRecorded] = []
        for record in records:
            try:
                events.append(outcome_adapter.validate_json(self._value(record)))
            except (ValidationError, RecordTooLargeError) as exc:
                dead.append(self._letter(record, exc))
        await self.notifier.on_outcomes(events)
        await self.budget_alerts.on_outcomes(events)
        await publish_all(self.broker, self.dead_letters.records(dead))

    async def aggregates(self, records: Records) -> None:
        snapshots: list[CoverageSnapshot] = []
        dead: list[DeadLetterRecorded] = []
        for record in records:
            if record.value is None:
                continue  # a tombstone on the compacted topic: a region removed, nothing to announce
            try:
                snapshots.append(read_coverage(self._value(record)))
            except (UnreadableAggregateError, RecordTooLargeError) as exc:
                dead.append(self._letter(record, exc))
        await self.notifier.on_coverage(snapshots)
        await publish_all(self.broker, self.dead_letters.records(dead))

    async def budget(self, records: Records) -> None:
        positions: list[BudgetPosition] = []
        dead: list[DeadLetterRecorded] = []
        for record in records:
            if record.value is None:
                continue  # a tombstone on the compacted topic: nothing to announce
            try:
                event = budget_event_adapter.validate_json(self._value(record))
            except (ValidationError, RecordTooLargeError) as exc:
                dead.append(self._letter(record, exc))
                continue
            # An allocation recorded is followed by the budget's position under it: the position is the news.
            if isinstance(event, BudgetPositionChanged):
                positions.append(event.data)
        await self.budget_alerts.on_positions(positions)
        await publish_all(self.broker, self.dead_letters.records(dead))

    def _value(self, record: ConsumerRecord[Any, Any]) -> bytes:
        value: bytes = record.value or b""
        if len(value) > self.max_message_bytes:
            raise RecordTooLargeError(f"{len(value)} bytes, the limit is {self.max_message_bytes}")
        return value

    def _letter(self, record: ConsumerRecord[Any, Any], error: Exception) -> DeadLetterRecorded:
        # A validation error is described without its input: the input may hold a NIK.
        why = describe(error) if isinstance(error, ValidationError) else str(error)
        return self.dead_letters.letter(record, type(error).__name__, why)
