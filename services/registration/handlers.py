"""Intake: Kafka records of partners' requests decoded for the application layer (`service.py`).

Each record is read on its own, so that one bad record cannot fail its batch. A valid request goes to the
domain. A record readable enough to name its partner and request id, but not a valid request (a wrong field,
an unknown type, an unsupported schema version), is answered with a rejection the partner can act on. Anything
else (too large, not JSON, no partner or request id) is dead-lettered with its bytes sealed.

Who sent a request: the partner its channel proves (the `lindungi-partner` header that registration stamps when
it forwards a record from the partner's own topic, `channels.py`), and only without that header (a trusted
producer writing the intake topic directly, which the broker's ACLs allow no partner) the payload's `source`.
A payload claiming another partner than its channel is rejected with `PARTNER_SOURCE_MISMATCH`, answered to
the channel's partner, and logged as a security event; it is never decided.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import ValidationError

from services.registration.budgets import verdict_from_document
from services.registration.domain.decisions import schema_rejection
from services.registration.domain.participation import (
    Decision,
    Reconsidered,
    RequestEvent,
    Verdict,
    partner_id_of,
)
from services.registration.service import Batch
from shared.events import (
    AllocationRequested,
    BudgetCommand,
    DeadLetterRecorded,
    HoldDecisionRequested,
    RequestAction,
    TerminationRequested,
    budget_command_adapter,
    partner_request_adapter,
)
from shared.logging import get_logger
from shared.messaging import describe
from shared.reasons import ReasonCode
from shared.topics import CHANNEL_HEADER, VERDICT_HEADER

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from services.registration.domain.participation import Context
    from services.registration.service import Registration
    from shared.consumer import Records
    from shared.messaging import DeadLetters

log = get_logger("registration.intake")

Read = RequestEvent | Reconsidered | BudgetCommand | Decision | DeadLetterRecorded

KNOWN_TYPES: dict[str, RequestAction | None] = {
    "id.lindungi.enrollment.requested": RequestAction.ENROLL,
    "id.lindungi.update.requested": RequestAction.UPDATE,
    "id.lindungi.termination.requested": RequestAction.TERMINATE,
    "id.lindungi.reactivation.requested": RequestAction.REACTIVATE,
    # The budget side's commands (shared/events/budget.py): no participation action.
    "id.lindungi.budget.allocation.requested": None,
    "id.lindungi.hold.decision.requested": None,
}


@dataclass(frozen=True)
class Intake:
    """The subscriber's handler: decode a batch, then hand it to registration."""

    registration: Registration
    dead_letters: DeadLetters
    max_message_bytes: int

    async def handle(self, records: Records) -> None:
        ctx = self.registration.context()
        requests: list[RequestEvent | Reconsidered] = []
        answered: list[Decision] = []  # readable enough to reject without the domain
        commands: list[BudgetCommand] = []
        letters: list[DeadLetterRecorded] = []
        for record in records:
            read = self._read(record, ctx)
            if isinstance(read, DeadLetterRecorded):
                letters.append(read)
            elif isinstance(read, Decision):
                answered.append(read)
            elif isinstance(read, AllocationRequested | HoldDecisionRequested):
                commands.append(read)
            else:
                requests.append(read)
        batch = Batch(len(records), requests, answered, self.dead_letters.records(letters), commands)
        await self.registration.handle(batch, ctx)

    def _read(self, record: ConsumerRecord[bytes, bytes], ctx: Context) -> Read:
        """Decode a record; what cannot be decoded is answered (if the partner can be told) or dead-lettered."""
        value = record.value or b""
        if len(value) > self.max_message_bytes:
            return self.dead_letters.letter(record, "MessageTooLarge", f"{len(value)} bytes > {self.max_message_bytes}")
        if unpaired_surrogate(value):
            # Valid JSON, but not text: an answer repeating any of it back could not be written or published.
            return self.dead_letters.letter(record, "SchemaInvalid", "a string holds an unpaired UTF-16 surrogate")
        channel = channel_of(record)
        event: RequestEvent | BudgetCommand
        try:
            event = partner_request_adapter.validate_json(value)
        except ValidationError as error:
            try:
                event = budget_command_adapter.validate_json(value)
            except ValidationError:
                return self._salvage(record, value, describe(error, 1000), ctx, channel)
        claimed = partner_id_of(event.source)
        if channel is None and not isinstance(event, AllocationRequested | HoldDecisionRequested):
            verdict = verdict_of(record)
            if verdict is not None and not isinstance(event, TerminationRequested):
                return Reconsidered(event, verdict)
        if channel is None or claimed == channel:
            return event
        # The one attack that matters most: acting with another partner's regions, segments and funding.
        log.warning(
            "security: a partner's request claims another partner; rejected",
            channel_partner=channel,
            claimed_partner=claimed[:128],
            request_id=event.data.request_id,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        return schema_rejection(
            event_id=event.id,
            partner_id=channel,
            request_id=event.data.request_id,
            code=ReasonCode.PARTNER_SOURCE_MISMATCH,
            subject=claimed[:128],
            ctx=ctx,
            action=getattr(event.data, "action", None),
            field="source",
        )

    def _salvage(
        self,
        record: ConsumerRecord[bytes, bytes],
        value: bytes,
        problems: str,
        ctx: Context,
        channel: str | None,
    ) -> Decision | DeadLetterRecorded:
        """Answer a partner when the envelope names it and its request; otherwise dead-letter the bytes."""
        try:
            raw = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            # RecursionError: nesting deeper than the parser's stack (pydantic reported it as invalid).
            return self.dead_letters.letter(record, "NotJson", str(error)[:500] or type(error).__name__)
        data = raw.get("data") if isinstance(raw, dict) else None
        source, request_id = (raw.get("source"), data.get("request_id")) if isinstance(data, dict) else (None, None)
        if not (isinstance(source, str) and source and isinstance(request_id, str) and request_id):
            return self.dead_letters.letter(record, "SchemaInvalid", problems)
        event_type = raw.get("type")
        limit = None
        if not isinstance(event_type, str) or event_type not in KNOWN_TYPES:
            code, subject = ReasonCode.EVENT_TYPE_UNKNOWN, str(event_type)[:200]
        elif raw.get("schemaversion", 1) != 1:
            code, subject, limit = ReasonCode.SCHEMA_VERSION_UNSUPPORTED, str(raw.get("schemaversion"))[:50], "1"
        else:
            code, subject = ReasonCode.SCHEMA_INVALID, problems
        event_id = (
            raw.get("id") if isinstance(raw.get("id"), str) else f"{record.topic}:{record.partition}:{record.offset}"
        )
        return schema_rejection(
            event_id=event_id,
            partner_id=channel or partner_id_of(source)[:128],
            request_id=request_id[:128],
            code=code,
            subject=subject,
            limit=limit,
            ctx=ctx,
            action=KNOWN_TYPES.get(event_type) if isinstance(event_type, str) else None,
        )


def unpaired_surrogate(value: bytes) -> bool:
    """Whether the record holds a lone UTF-16 surrogate, escaped (`"\\ud800"`) or as raw bytes (which Python's
    JSON parser lets through): no answer repeating it could be written. Checked only when one may be there."""
    if b"\\ud" not in value and b"\\uD" not in value and b"\xed" not in value:
        return False
    try:
        json.dumps(json.loads(value), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    except (ValueError, RecursionError):
        return False  # not JSON at all: the usual path dead-letters it
    return False


def verdict_of(record: ConsumerRecord[bytes, bytes]) -> Verdict | None:
    """The verdict registration attached to a held request it sent back to intake (never a partner: a partner's
    records reach intake through their channel, whose header makes this one ignored)."""
    for key, value in record.headers or ():
        if key == VERDICT_HEADER:
            return verdict_from_document(json.loads(bytes(value)))
    return None


def channel_of(record: ConsumerRecord[bytes, bytes]) -> str | None:
    """The partner the record's channel proves, if it came through a partner's own topic."""
    for key, value in record.headers or ():
        if key == CHANNEL_HEADER:
            return bytes(value).decode("utf-8", "replace")
    return None
