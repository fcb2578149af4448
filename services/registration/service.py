"""Registration's application layer: a batch of partners' requests in, one outcome per request out.

For throughput the batch is handled as a whole: one read of the participants and the partners together;
decisions taken in order in memory (so an enrollment and an update of one worker in the same batch see each
other), the request log written chunk by chunk as they are taken (the log is read only where a write found
an entry there already); then one bulk write per collection and one keyed publish per outcome, awaited
together. The steps are ordered for crash safety (see store.py): log, then apply and publish, and the
consumer commits the offsets only after both (`shared.consumer`).

The store is reached through the small protocols below (`RequestLog`, `Participations`, `PartnerDirectory`);
`MongoRegistrationStore` is all three.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import structlog

from services.registration.budgeting import Entries
from services.registration.domain.decisions import decide
from services.registration.domain.holds import approved, decide_allocation, decide_verdict, refused
from services.registration.domain.participation import (
    Context,
    Decision,
    ParticipantRecord,
    Partner,
    Reconsidered,
    RequestEvent,
    nik_of,
    participant_id,
    partner_id_of,
    request_key,
)
from shared.events import (
    AllocationRecordedEvent,
    AllocationRequested,
    BudgetCommand,
    HoldDecisionRequested,
    HoldResolution,
    RequestHeld,
)
from shared.messaging import Keyed, ce_headers
from shared.topics import BUDGET_POSITIONS, PARTNER_TOPIC_PREFIX, partner_outcomes_topic

if TYPE_CHECKING:
    from services.registration.budgeting import Budgeting
    from shared.regions import Regions

log = structlog.get_logger("registration")

WIB = ZoneInfo("Asia/Jakarta")  # "today" for a rule is the date in Indonesia's western time zone

# Requests decided per request-log write within a round: small enough that deciding the next chunk overlaps
# the store's work on this one, large enough that the store's cost per round trip stays small.
LOG_CHUNK = 500


class RequestLog(Protocol):
    """The idempotency record and outbox: one entry per (partner, request id), first writer wins."""

    async def record(self, decisions: Sequence[Decision]) -> set[str]:
        """Write entries for new decisions; returns the keys whose entry was there already."""
        ...

    async def recorded(self, keys: Iterable[str]) -> dict[str, Decision]:
        """The decisions the log holds for these keys."""
        ...


class Participations(Protocol):
    async def participations(self, participant_ids: Iterable[str]) -> dict[str, ParticipantRecord]: ...

    async def apply(self, decisions: Sequence[Decision]) -> None:
        """Replay decisions onto the participations and their history; safe to repeat."""
        ...


class PartnerDirectory(Protocol):
    async def load_partners(self) -> dict[str, Partner]: ...


#: Publishes keyed records and returns once the broker has acknowledged them all (`shared.messaging`).
Publish = Callable[[Sequence[Keyed]], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Batch:
    """A batch of records as the handler read them: valid requests (and held ones back with a verdict),
    requests answered without the domain (readable enough to name partner and request, but invalid), the
    budget side's commands (allocations, verdicts), and dead letters for the rest."""

    size: int
    requests: list[RequestEvent | Reconsidered]
    answered: list[Decision]
    dead_letters: list[Keyed]
    commands: list[BudgetCommand] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Answer:
    """A request's decision, and whether it was taken now (True) or replayed from the request log."""

    decision: Decision
    new: bool


@dataclass(frozen=True, slots=True)
class Pending:
    """A request waiting for its round: its key, and the participation it is about."""

    key: str
    participant_id: str
    request: RequestEvent | Reconsidered

    @property
    def event(self) -> RequestEvent:
        return self.request.event if isinstance(self.request, Reconsidered) else self.request


@dataclass(frozen=True)
class Schedule:
    """A batch's requests in rounds: round n holds the n-th request of every worker in the batch.

    `order` is every request key once, in the order the batch is answered; `answered` (the requests decided
    without the domain) goes with the first round's log write, so round 0 exists even when it is empty.
    """

    order: list[str]
    answered: list[Decision]
    rounds: list[list[Pending]]
    participant_ids: list[str]


@dataclass(frozen=True)
class Round:
    """A round decided and logged: its decisions in order, and those the log held already (these stand)."""

    decided: list[Decision]
    recorded: dict[str, Decision]

    def answers(self) -> dict[str, Answer]:
        found: dict[str, Answer] = {}
        for decision in self.decided:
            kept = self.recorded.get(decision.key)
            found[decision.key] = Answer(decision, new=True) if kept is None else Answer(kept, new=False)
        return found

    def states(self, owners: Mapping[str, str]) -> dict[str, ParticipantRecord]:
        """The participations this round changed, by participant id (decisions that stand only)."""
        return {
            owners[d.key]: d.participant
            for d in self.decided
            if d.key in owners and d.key not in self.recorded and d.participant is not None
        }


@dataclass(frozen=True)
class Recorded:
    """Every request of a batch answered, in order, and the partners known when it was decided."""

    answers: list[Answer]
    known_partners: frozenset[str]
    entered: Entries = field(default_factory=Entries)  # what the budget step entered, to settle


def schedule(
    requests: Iterable[RequestEvent | Reconsidered], answered: Iterable[Decision], nik_secret: bytes
) -> Schedule:
    """Rounds of one request per worker, in input order; a request seen twice in the batch is answered once."""
    order: list[str] = []
    seen: set[str] = set()
    first: list[Decision] = []
    for decision in answered:
        if decision.key not in seen:
            seen.add(decision.key)
            order.append(decision.key)
            first.append(decision)
    rounds: list[list[Pending]] = [[]]
    depth: dict[str, int] = {}
    for request in requests:
        event = request.event if isinstance(request, Reconsidered) else request
        key = (
            request.key
            if isinstance(request, Reconsidered)
            else request_key(partner_id_of(event.source), event.data.request_id)
        )
        if key in seen:
            continue
        seen.add(key)
        order.append(key)
        pid = participant_id(nik_of(event), event.data.segment, nik_secret)
        level = depth.get(pid, 0)
        depth[pid] = level + 1
        if level == len(rounds):
            rounds.append([])
        rounds[level].append(Pending(key, pid, request))
    return Schedule(order, first, rounds, list(depth))


def newer(
    current: Mapping[str, ParticipantRecord], stored: Mapping[str, ParticipantRecord]
) -> dict[str, ParticipantRecord]:
    """The stored participations that are newer than what the batch holds (or that it does not hold)."""
    return {pid: s for pid, s in stored.items() if pid not in current or s.version > current[pid].version}


def outcome_records(  # noqa: PLR0913 - the records' routing, all but two keyword-only
    decisions: Iterable[Decision],
    known_partners: frozenset[str],
    outcomes_topic: str,
    *,
    per_partner: bool,
    prefix: str = PARTNER_TOPIC_PREFIX,
    budget_topic: str = BUDGET_POSITIONS.name,
) -> list[Keyed]:
    """Each outcome on the shared topic (an allocation on the budget topic), and with `per_partner` a copy on
    the submitting partner's topic."""
    records: list[Keyed] = []
    for decision in decisions:
        value, headers = decision.outcome_json.encode(), ce_headers(decision.outcome)
        topic = budget_topic if isinstance(decision.outcome, AllocationRecordedEvent) else outcomes_topic
        records.append(Keyed(topic, decision.outcome_key, value, headers))
        # Only registered partners have an outcome topic (created with their ACLs); an unknown source is
        # answered on the shared topic alone rather than stalling on a topic that does not exist.
        if per_partner and decision.partner_id in known_partners:
            topic = partner_outcomes_topic(decision.partner_id, prefix)
            records.append(Keyed(topic, decision.outcome_key, value, headers))
    return records


@dataclass(frozen=True)
class Registration:
    """Everything a batch needs, created once in the app's lifespan."""

    request_log: RequestLog
    participations: Participations
    partners: PartnerDirectory
    publish: Publish
    regions: Regions
    nik_secret: bytes
    outcomes_topic: str
    partner_outcome_topics: bool = False
    partner_topic_prefix: str = PARTNER_TOPIC_PREFIX
    budgeting: Budgeting | None = None

    def context(self) -> Context:
        now = datetime.now(UTC)
        return Context(today=now.astimezone(WIB).date(), regions=self.regions, nik_secret=self.nik_secret, now=now)

    async def handle(self, batch: Batch, ctx: Context) -> None:
        """Decide and log every request, then apply and publish; the consumer commits after this returns."""
        budgeting = self.budgeting
        if budgeting is not None:
            ctx = replace(ctx, budgets=await budgeting.store.declared())
        commands = await self._decide_commands(batch.commands, ctx) if batch.commands else []
        planned = schedule(batch.requests, [*batch.answered, *commands], ctx.nik_secret)
        recorded = await self.decide_and_record(planned, ctx)
        decisions = [answer.decision for answer in recorded.answers]
        outcomes = outcome_records(
            decisions,
            recorded.known_partners,
            self.outcomes_topic,
            per_partner=self.partner_outcome_topics,
            prefix=self.partner_topic_prefix,
            budget_topic=budgeting.budget_topic if budgeting is not None else BUDGET_POSITIONS.name,
        )
        # Once the request log holds the decisions, the participant writes and the publishing replay it and
        # need not wait for each other: after a failure of either the batch is retried, the log answers it
        # again and the same events (same ids) go out again. The offsets are committed after both.
        async with asyncio.TaskGroup() as replay:
            replay.create_task(self.participations.apply(decisions))
            replay.create_task(self.publish([*outcomes, *batch.dead_letters]))
            if budgeting is not None:
                replay.create_task(budgeting.store.keep_held(decisions, _held_events(decisions, planned)))
        if budgeting is not None:
            # After the participations: a budget's pending entries are settled only once what they paid for
            # is written (see domain.ledger).
            positions = await budgeting.settle(decisions, recorded.entered, ctx)
            await self.publish([*positions, *await budgeting.forwards(decisions)])
        _log_batch(batch, recorded.answers)

    async def _decide_commands(self, commands: Sequence[BudgetCommand], ctx: Context) -> list[Decision]:
        """Allocations and verdicts: they touch no participation, so they go with the batch's first round."""
        budgeting = self.budgeting
        waiting_keys = [
            request_key(c.data.held_partner_id, c.data.held_request_id)
            for c in commands
            if isinstance(c, HoldDecisionRequested)
        ]
        if budgeting is None:
            raise RuntimeError("budget commands need the budget store")
        partners, waiting = await asyncio.gather(self.partners.load_partners(), budgeting.store.waiting(waiting_keys))
        decided: list[Decision] = []
        for command in commands:
            partner = partners.get(partner_id_of(command.source))
            if isinstance(command, AllocationRequested):
                decided.append(decide_allocation(command, partner, ctx))
            else:
                held_key = request_key(command.data.held_partner_id, command.data.held_request_id)
                decided.append(decide_verdict(command, partner, waiting.get(held_key), ctx))
        return decided

    async def decide_and_record(self, planned: Schedule, ctx: Context) -> Recorded:
        """Decisions in input order, each flagged new or replayed from the request log.

        The request log is first-writer-wins and never rewritten: once an entry is there, another instance
        may already have adopted and published it, so withdrawing it would let one request be answered twice
        with two event ids (the full reliability run caught exactly that). So an entry is written only once
        it is decided on the right state. A worker's requests in a batch are taken in rounds (`schedule`): the
        first request of every worker, then the second, and so on. Each round is decided on the state the
        rounds before it left and written with one insert, optimistically: the common batch (every worker
        once, nothing seen before) costs one insert and no lookup. Where a round meets entries already
        recorded (a redelivery after a crash, a partner's re-send, a consumer that lost its partitions in a
        rebalance), those decisions stand: they are replayed onto the participants, and those workers' state
        is read again before the next round.
        """
        # Neither read needs the other: one round trip for both.
        partners, current = await asyncio.gather(
            self.partners.load_partners(), self.participations.participations(planned.participant_ids)
        )
        answers: dict[str, Answer] = {}
        entered = Entries()
        for index, pending in enumerate(planned.rounds):
            owners = {p.key: p.participant_id for p in pending}
            answered = planned.answered if index == 0 else []
            taken = await self._take_round(answered, pending, partners, current, ctx, entered=entered)
            answers.update(taken.answers())
            current.update(taken.states(owners))
            replayed = {owners[key] for key in taken.recorded if key in owners}
            if replayed:
                # The store now holds what the recorded decisions did, or something newer; what this batch
                # decided in earlier rounds is not applied yet, so the newer of the two versions stands.
                current.update(newer(current, await self.participations.participations(replayed)))
        return Recorded([answers[key] for key in planned.order], frozenset(partners), entered)

    async def _take_round(  # noqa: PLR0913 - a round, the state it is decided on, and the budget entries
        self,
        answered: Sequence[Decision],
        pending: Sequence[Pending],
        partners: Mapping[str, Partner],
        current: Mapping[str, ParticipantRecord],
        ctx: Context,
        *,
        entered: Entries,
    ) -> Round:
        """Decide and log one round; entries the log held already are read back and replayed onto the
        participations before the next round is decided on them."""
        decided, seen = await self._decide_and_log(answered, pending, partners, current, ctx, entered=entered)
        recorded = await self.request_log.recorded(seen) if seen else {}
        if len(recorded) != len(seen):
            raise RuntimeError("a request-log entry reported present cannot be read; the batch is retried")
        if recorded:
            await self.participations.apply(
                sorted(recorded.values(), key=lambda d: d.participant.version if d.participant else 0)
            )
        return Round(decided, recorded)

    async def _decide_and_log(  # noqa: PLR0913 - a round, the state it is decided on, and the budget entries
        self,
        answered: Sequence[Decision],
        pending: Sequence[Pending],
        partners: Mapping[str, Partner],
        current: Mapping[str, ParticipantRecord],
        ctx: Context,
        *,
        entered: Entries,
    ) -> tuple[list[Decision], set[str]]:
        """Decide one round and write its request-log entries; returns the decisions in order (the answered
        ones first) and the keys recorded before. What the budget step enters goes into `entered`.

        Chunk by chunk, each chunk decided while the one before it is being written: the domain's CPU and the
        store's work overlap instead of taking turns (a round holds each worker once, so no decision in it
        waits for another's write). Splitting one `insert_many` into several changes nothing else: the log's
        writes are unordered and first-writer-wins either way.
        """
        decided: list[Decision] = []
        async with asyncio.TaskGroup() as writes:
            logged: list[asyncio.Task[set[str]]] = []
            for start in range(0, max(len(pending), 1), LOG_CHUNK):
                chunk = list(answered) if start == 0 else []  # answered without the domain: with the first chunk
                chunk.extend(
                    _decide(p, partners.get(partner_id_of(p.event.source)), current.get(p.participant_id), ctx)
                    for p in pending[start : start + LOG_CHUNK]
                )
                if self.budgeting is not None:
                    # Before the log: a decision is logged only as its budget lets it stand (domain.ledger).
                    chunk, _ = await self.budgeting.admit(chunk, ctx, entered)
                decided.extend(chunk)
                logged.append(writes.create_task(self.request_log.record(chunk)))
                await asyncio.sleep(0)  # the write goes out before the next chunk is decided
        return decided, set[str]().union(*(task.result() for task in logged))


def _decide(pending: Pending, partner: Partner | None, current: ParticipantRecord | None, ctx: Context) -> Decision:
    """A request's decision; a held one back with a verdict is refused, or decided again and marked approved."""
    request = pending.request
    if not isinstance(request, Reconsidered):
        return decide(request, partner, current, ctx)
    if request.verdict.resolution is HoldResolution.REFUSED:
        return refused(request, ctx)
    return approved(decide(request.event, partner, current, ctx), request)


def _held_events(decisions: Iterable[Decision], planned: Schedule) -> dict[str, bytes]:
    """The request events of the requests held in this batch, to keep (sealed) until their verdict."""
    held = {d.key for d in decisions if isinstance(d.outcome, RequestHeld) and d.verdict is None}
    if not held:
        return {}
    return {p.key: p.event.model_dump_json().encode() for r in planned.rounds for p in r if p.key in held}


def _log_batch(batch: Batch, answers: Sequence[Answer]) -> None:
    new_count = sum(answer.new for answer in answers)
    log.info(
        "batch handled",
        requests=batch.size,
        decided=new_count,
        replayed=len(answers) - new_count,
        dead_lettered=len(batch.dead_letters),
    )
    for answer in answers:
        if answer.new:
            decision = answer.decision
            log.debug(
                "request decided",
                request_key=decision.key,
                outcome=decision.outcome.type,
                event_id=decision.outcome.id,
                warnings=list(decision.warnings),
            )
