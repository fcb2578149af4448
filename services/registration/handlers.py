"""Intake: a batch of partner requests in, one outcome per request out, offsets committed last.

For throughput the batch is handled as a whole: one read of the participants and the partners together;
decisions taken in order in memory (so an enrollment and an update of one worker in the same batch see each
other), the request log written chunk by chunk as they are taken (the log is read only where a write found
an entry there already); then one bulk write per collection and one keyed publish per outcome, awaited
together. The steps are ordered for crash safety (see store.py): log, then apply and publish, then commit.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from pydantic import ValidationError

from services.registration.domain.decisions import (
    Context,
    Decision,
    ParticipantRecord,
    Partner,
    RequestEvent,
    decide,
    nik_of,
    participant_id,
    partner_id_of,
    request_key,
    schema_rejection,
)
from shared.events import DeadLetterRecorded, RequestAction, partner_request_adapter
from shared.messaging import ce_headers, dead_letter, encode
from shared.privacy import scrub
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from aiokafka import ConsumerRecord
    from faststream.kafka import KafkaBroker

    from services.registration.settings import RegistrationSettings
    from services.registration.store import MongoRegistrationStore
    from shared.crypto import Sealer

log = structlog.get_logger("registration")

# Requests decided per request-log write within a round: small enough that deciding the next chunk overlaps
# the store's work on this one, large enough that the store's cost per round trip stays small.
LOG_CHUNK = 500

KNOWN_TYPES = {
    "id.lindungi.enrollment.requested": RequestAction.ENROLL,
    "id.lindungi.update.requested": RequestAction.UPDATE,
    "id.lindungi.termination.requested": RequestAction.TERMINATE,
    "id.lindungi.reactivation.requested": RequestAction.REACTIVATE,
}


@dataclass
class Intake:
    """Everything a batch needs, created once in the app's lifespan."""

    settings: RegistrationSettings
    store: MongoRegistrationStore
    broker: KafkaBroker
    sealer: Sealer
    context: Callable[[], Context]
    _known_partners: set[str] = field(default_factory=set)

    async def handle(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> None:
        ctx = self.context()
        events: list[tuple[ConsumerRecord[bytes, bytes], RequestEvent]] = []
        answered: list[Decision] = []  # readable enough to reject without the domain
        dead: list[DeadLetterRecorded] = []
        for record in records:
            outcome = self._read(record, ctx)
            if isinstance(outcome, DeadLetterRecorded):
                dead.append(outcome)
            elif isinstance(outcome, Decision):
                answered.append(outcome)
            else:
                events.append((record, outcome))

        decisions = await self._decide_and_record([e for _, e in events], answered, ctx)
        # Once the request log holds the decisions, the participant writes and the publishing replay it and
        # need not wait for each other: after a failure of either the batch is retried, the log answers it
        # again and the same events (same ids) go out again. The offsets are committed after both.
        async with asyncio.TaskGroup() as replay:
            replay.create_task(self.store.apply([d for d, _ in decisions]))
            replay.create_task(self._publish([d for d, _ in decisions], dead))
        new_count = sum(new for _, new in decisions)
        log.info(
            "batch handled",
            requests=len(records),
            decided=new_count,
            replayed=len(decisions) - new_count,
            dead_lettered=len(dead),
        )
        for decision, new in decisions:
            if new:
                log.debug(
                    "request decided",
                    request_key=decision.key,
                    outcome=decision.outcome.type,
                    event_id=decision.outcome.id,
                    warnings=list(decision.warnings),
                )

    async def _decide_and_record(  # noqa: C901, PLR0912 - the rounds, in order; one idea
        self, events: list[RequestEvent], answered: list[Decision], ctx: Context
    ) -> list[tuple[Decision, bool]]:
        """Decisions in input order, each flagged new (True) or replayed from the request log (False).

        The request log is first-writer-wins and never rewritten: once an entry is there, another instance
        may already have adopted and published it, so withdrawing it would let one request be answered twice
        with two event ids (the full reliability run caught exactly that). So an entry is written only once
        it is decided on the right state. A worker's requests in a batch are taken in rounds: the first
        request of every worker, then the second, and so on. Each round is decided on the state the rounds
        before it left and written with one insert, optimistically: the common batch (every worker once,
        nothing seen before) costs one insert and no lookup. Where a round meets entries already recorded
        (a redelivery after a crash, a partner's re-send, a consumer that lost its partitions in a
        rebalance), those decisions stand: they are replayed onto the participants, and those workers'
        state is read again before the next round.
        """
        final: dict[str, tuple[Decision, bool]] = {}
        first_round: list[Decision] = []
        for decision in answered:
            if decision.key not in final:
                final[decision.key] = (decision, True)
                first_round.append(decision)
        order = list(final)
        rounds: list[list[tuple[str, str, RequestEvent]]] = []  # (key, participant id, request) per round
        depth: dict[str, int] = {}
        for event in events:
            key = request_key(partner_id_of(event.source), event.data.request_id)
            if key in final or key in order:
                continue  # the same request twice in one batch: answered once
            pid = participant_id(nik_of(event), event.data.segment, ctx.nik_secret)
            level = depth.get(pid, 0)
            depth[pid] = level + 1
            if level == len(rounds):
                rounds.append([])
            rounds[level].append((key, pid, event))
            order.append(key)
        # Neither read needs the other: one round trip for both.
        partners, current = await asyncio.gather(self.store.load_partners(), self.store.participations(depth))
        self._known_partners = set(partners)
        for index, round_ in enumerate(rounds or [[]]):
            fresh = list(first_round) if index == 0 else []
            pid_of = {key: pid for key, pid, _ in round_}
            seen = await self._decide_and_log(fresh, round_, partners, current, ctx)
            recorded = await self.store.recorded(seen) if seen else {}
            if len(recorded) != len(seen):
                raise RuntimeError("a request-log entry reported present cannot be read; the batch is retried")
            if recorded:
                await self.store.apply(
                    sorted(recorded.values(), key=lambda d: d.participant.version if d.participant else 0)
                )
            for decision in fresh:
                kept = recorded.get(decision.key)
                final[decision.key] = (kept, False) if kept is not None else (decision, True)
                owner = pid_of.get(decision.key)
                if owner is not None and kept is None and decision.participant is not None:
                    current[owner] = decision.participant
            replayed = {pid_of[key] for key in recorded if key in pid_of}
            if replayed:
                # The store now holds what the recorded decisions did, or something newer; what this batch
                # decided in earlier rounds is not applied yet, so the newer of the two versions stands.
                for pid, stored in (await self.store.participations(replayed)).items():
                    if pid not in current or stored.version > current[pid].version:
                        current[pid] = stored
        return [final[key] for key in order]

    async def _decide_and_log(
        self,
        fresh: list[Decision],
        round_: list[tuple[str, str, RequestEvent]],
        partners: Mapping[str, Partner],
        current: Mapping[str, ParticipantRecord],
        ctx: Context,
    ) -> set[str]:
        """Decide one round into `fresh` and write its request-log entries; returns the keys recorded before.

        Chunk by chunk, each chunk decided while the one before it is being written: the domain's CPU and the
        store's work overlap instead of taking turns (a round holds each worker once, so no decision in it
        waits for another's write). Splitting one `insert_many` into several changes nothing else: the log's
        writes are unordered and first-writer-wins either way.
        """
        async with asyncio.TaskGroup() as writes:
            logged: list[asyncio.Task[set[str]]] = []
            for start in range(0, max(len(round_), 1), LOG_CHUNK):
                chunk = fresh if start == 0 else []  # answered without the domain: with the first chunk
                for _, pid, event in round_[start : start + LOG_CHUNK]:
                    chunk.append(decide(event, partners.get(partner_id_of(event.source)), current.get(pid), ctx))
                if chunk is not fresh:
                    fresh.extend(chunk)
                logged.append(writes.create_task(self.store.record(list(chunk))))
                await asyncio.sleep(0)  # the write goes out before the next chunk is decided
        return set().union(*(task.result() for task in logged))

    def _read(self, record: ConsumerRecord[bytes, bytes], ctx: Context) -> RequestEvent | Decision | DeadLetterRecorded:
        """Decode a record; what cannot be decoded is answered (if the partner can be told) or dead-lettered."""
        value = record.value or b""
        if len(value) > self.settings.max_message_bytes:
            return self._dead(record, "MessageTooLarge", f"{len(value)} bytes > {self.settings.max_message_bytes}")
        try:
            return partner_request_adapter.validate_json(value)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                for e in error.errors(include_url=False, include_input=False)
            )
            return self._salvage(record, value, scrub(problems)[:1000], ctx)

    def _salvage(
        self, record: ConsumerRecord[bytes, bytes], value: bytes, problems: str, ctx: Context
    ) -> Decision | DeadLetterRecorded:
        """Answer a partner when the envelope names it and its request; otherwise dead-letter the bytes."""
        try:
            raw = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            # RecursionError: nesting deeper than the parser's stack (pydantic reported it as invalid).
            return self._dead(record, "NotJson", str(error)[:500] or type(error).__name__)
        data = raw.get("data") if isinstance(raw, dict) else None
        source, request_id = (raw.get("source"), data.get("request_id")) if isinstance(data, dict) else (None, None)
        if not (isinstance(source, str) and source and isinstance(request_id, str) and request_id):
            return self._dead(record, "SchemaInvalid", problems)
        event_type = raw.get("type")
        if event_type not in KNOWN_TYPES:
            code, detail = ReasonCode.EVENT_TYPE_UNKNOWN, str(event_type)[:200]
        elif raw.get("schemaversion", 1) != 1:
            code, detail = ReasonCode.SCHEMA_VERSION_UNSUPPORTED, str(raw.get("schemaversion"))[:50]
        else:
            code, detail = ReasonCode.SCHEMA_INVALID, problems
        event_id = (
            raw.get("id") if isinstance(raw.get("id"), str) else f"{record.topic}:{record.partition}:{record.offset}"
        )
        return schema_rejection(
            event_id=event_id,
            partner_id=partner_id_of(source)[:128],
            request_id=request_id[:128],
            code=code,
            detail=detail,
            ctx=ctx,
            action=KNOWN_TYPES.get(event_type) if isinstance(event_type, str) else None,
        )

    def _dead(self, record: ConsumerRecord[bytes, bytes], error_type: str, error: str) -> DeadLetterRecorded:
        log.warning("dead-lettered", error_type=error_type, error=error)
        return dead_letter(record, error_type=error_type, error=error, service="registration", sealer=self.sealer)

    async def _publish(self, decisions: Sequence[Decision], dead: Sequence[DeadLetterRecorded]) -> None:
        """Keyed publishes, not awaited one by one: per-key routing is kept and the producer batches them."""
        pending: list[asyncio.Future[Any]] = []

        async def send(value: bytes, headers: dict[str, str], topic: str, key: str) -> None:
            pending.append(await self.broker.publish(value, topic, key=key.encode(), headers=headers, no_confirm=True))

        for decision in decisions:
            value, headers = decision.outcome_json.encode(), ce_headers(decision.outcome)
            await send(value, headers, self.settings.outcomes_topic, decision.outcome_key)
            # Only registered partners have an outcome topic (created with their ACLs); an unknown source
            # is answered on the shared topic alone rather than stalling on a topic that does not exist.
            if self.settings.partner_outcome_topics and decision.partner_id in self._known_partners:
                await send(value, headers, f"lindungi.partner.{decision.partner_id}.outcomes.v1", decision.outcome_key)
        for letter in dead:
            await send(*encode(letter), self.settings.dead_letters_topic, letter.subject or "")
        await asyncio.gather(*pending)
