"""One fuzz run: generated inputs through registration's real intake topic, every one accounted for.

Each input is sent to the intake topic of a registration of its own, and what the contract promises for it is
worked out from its bytes and headers (`intake.fate`). Then the outcome and dead-letter topics are read as a
stream until every input is accounted for, or nothing has moved for `STALL` seconds:
- an input the contract answers has an outcome for its `partner:request_id` and no dead letter;
- any other input has exactly one dead letter, at its own partition and offset;
- nothing is answered that no input asked for, no key has more outcome events than inputs naming it;
- registration is still running and its consumer group's lag is back to 0.
Each input's class (the outcome's kind, a rejection with its first reason code, or the dead letter's error
type) is counted; the summary is a table of classes by family.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from shared import events as ev
from tests.e2e.fuzz.inputs import inputs
from tests.e2e.fuzz.intake import Fate, fate
from tests.e2e.reliability import lag

if TYPE_CHECKING:
    from tests.e2e.fuzz.intake import Registration

STALL = 60.0  # seconds without a new answer while inputs are pending: the intake has stalled
IN_FLIGHT = 2000  # inputs sent before their acknowledgements are awaited
# shared/consumer.py logs a failed batch or a raising handler at error level.
_RAISED = ('"logger": "consumer"', '"level": "error"')


@dataclass(frozen=True)
class Sent:
    family: str
    partition: int
    offset: int
    fate: Fate


@dataclass
class Answers:
    """The outcome and dead-letter topics read so far."""

    outcomes: dict[str, set[str]] = field(default_factory=dict)  # partner:request_id -> outcome event ids
    classes: dict[str, str] = field(default_factory=dict)  # partner:request_id -> its first outcome's class
    codes: Counter[str] = field(default_factory=Counter)  # every reason code of every rejection
    letters: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # (partition, offset) -> error types

    def take(self, topic: str, outcomes_topic: str, value: bytes) -> None:
        if topic == outcomes_topic:
            event = ev.outcome_adapter.validate_json(value)
            key = f"{event.data.partner_id}:{event.data.request_id}"
            ids = self.outcomes.setdefault(key, set())
            if not ids:
                kind = event.type.rsplit(".", 1)[1]
                if isinstance(event, ev.RequestRejected):
                    reasons = [r.code for r in event.data.reasons]
                    self.codes.update(reasons)
                    kind = f"rejected {reasons[0] if reasons else '(no reason)'}"
                self.classes[key] = f"outcome: {kind}"
            ids.add(event.id)
        else:
            letter = ev.DeadLetterRecorded.model_validate_json(value)
            self.letters.setdefault((letter.data.partition, letter.data.offset), []).append(letter.data.error_type)

    def settled(self, sent: Sent) -> bool:
        kind, target = sent.fate
        if kind == "answer":
            return target in self.outcomes
        return (sent.partition, sent.offset) in self.letters


@dataclass
class Report:
    inputs: int
    seconds: float  # until every input was settled (or the stall)
    sending: float  # generating and sending
    classes: Counter[tuple[str, str]]  # (family, class) -> inputs
    codes: Counter[str]
    problems: list[str]

    def table(self) -> str:
        """Classes by family, the totals, and the rejections' reason codes."""
        families = sorted({f for f, _ in self.classes})
        names = sorted({c for _, c in self.classes})
        width = max(len(n) for n in [*names, "class"])
        columns = [f[:12] for f in families]
        lines = [f"{'class':<{width}} " + " ".join(f"{c:>12}" for c in columns) + f" {'total':>8}"]
        for name in names:
            cells = [self.classes[f, name] for f in families]
            lines.append(f"{name:<{width}} " + " ".join(f"{n:>12}" for n in cells) + f" {sum(cells):>8}")
        totals = [sum(n for (f, _), n in self.classes.items() if f == family) for family in families]
        lines.append(f"{'total':<{width}} " + " ".join(f"{n:>12}" for n in totals) + f" {sum(totals):>8}")
        lines.append("reason codes of rejections: " + ", ".join(f"{c} {n}" for c, n in self.codes.most_common()))
        verdict = "every input accounted for" if not self.problems else f"{len(self.problems)} problems"
        lines.append(f"{self.inputs} inputs, sent in {self.sending:.0f} s, settled in {self.seconds:.0f} s: {verdict}")
        return "\n".join(lines)


async def send(registration: Registration, unique: str, count: int, seed: int) -> list[Sent]:
    """Send `count` inputs in order; note each one's partition, offset and fate (not its bytes)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=registration.bootstrap, enable_idempotence=True, linger_ms=20, max_request_size=1_048_576
    )
    await producer.start()
    sent: list[Sent] = []
    try:
        pending: list[tuple[str, Fate, asyncio.Future[object]]] = []
        for item in inputs(unique, count, seed):
            future = await producer.send(registration.requests, item.value, key=item.key, headers=list(item.headers))
            pending.append((item.family, fate(item.value, item.headers), future))
            if len(pending) >= IN_FLIGHT:
                sent += await _acknowledged(pending)
        sent += await _acknowledged(pending)
    finally:
        await producer.stop()
    return sent


async def _acknowledged(pending: list[tuple[str, Fate, asyncio.Future[object]]]) -> list[Sent]:
    metadata = await asyncio.gather(*(future for _, _, future in pending))
    done = [Sent(family, m.partition, m.offset, f) for (family, f, _), m in zip(pending, metadata, strict=True)]  # type: ignore[attr-defined]
    pending.clear()
    return done


async def collect(registration: Registration, sent: list[Sent]) -> tuple[Answers, list[Sent]]:
    """Read both topics until every input is settled or the intake stalls; returns what is still pending."""
    answers = Answers()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=registration.bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4_194_304,
    )
    await consumer.start()
    try:
        await _assign_when_created(consumer, [registration.outcomes, registration.dead_letters])
        pending = list(sent)
        last_move = time.monotonic()
        while pending and time.monotonic() - last_move < STALL:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for tp, records in batch.items():
                for record in records:
                    answers.take(tp.topic, registration.outcomes, record.value or b"")
            still = [s for s in pending if not answers.settled(s)]
            if len(still) < len(pending):
                last_move = time.monotonic()
            pending = still
    finally:
        await consumer.stop()
    return answers, pending


async def _assign_when_created(consumer: AIOKafkaConsumer, topics: list[str], within: float = 60) -> None:
    """Assign every partition of `topics` (the dead-letter topic appears with the first letter, so it may be
    created late: assigned again when it is)."""
    deadline = time.monotonic() + within
    while True:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if {tp.topic for tp in tps} == set(topics) or time.monotonic() > deadline:
            consumer.assign(tps)
            return
        await asyncio.sleep(0.5)


def verdict(sent: list[Sent], answers: Answers, pending: list[Sent]) -> tuple[Counter[tuple[str, str]], list[str]]:
    """Each input's class, and every way the run broke the contract."""
    classes: Counter[tuple[str, str]] = Counter()
    problems: list[str] = []
    naming: Counter[str] = Counter(s.fate[1] for s in sent if s.fate[0] == "answer")
    for s in sent:
        letters = answers.letters.get((s.partition, s.offset), [])
        if s.fate[0] == "answer":
            instead = f"dead letter: {letters[0]} (an answer was due)" if letters else "unaccounted"
            classes[s.family, answers.classes.get(s.fate[1], instead)] += 1
            if letters:
                problems.append(f"{s.family} at {s.partition}:{s.offset}: dead-lettered ({letters[0]}), not answered")
        else:
            classes[s.family, f"dead letter: {letters[0]}" if letters else "unaccounted"] += 1
            if len(letters) > 1:
                problems.append(f"{s.family} at {s.partition}:{s.offset}: {len(letters)} dead letters")
            elif letters and letters[0] != s.fate[1]:
                problems.append(f"{s.family} at {s.partition}:{s.offset}: {letters[0]}, expected {s.fate[1]}")
    problems += [
        f"{s.family} at {s.partition}:{s.offset}: no {s.fate[0]} ({s.fate[1][:80]!r})"
        for s in pending
        if (s.partition, s.offset) not in answers.letters  # else reported above
    ]
    problems += [
        f"an outcome for {k[:80]!r}, which no input asked for" for k in answers.outcomes.keys() - naming.keys()
    ]
    problems += [
        f"{len(ids)} outcome events for {k[:80]!r}, named by {naming[k]} inputs"
        for k, ids in answers.outcomes.items()
        if k in naming and len(ids) > naming[k]
    ]
    offsets = {(s.partition, s.offset) for s in sent}
    problems += [f"a dead letter for {p}:{o}, which is no input sent" for p, o in answers.letters.keys() - offsets]
    return classes, problems


async def fuzz(registration: Registration, count: int, seed: int) -> Report:
    """Send `count` inputs drawn under `seed`, account for every one, and check the intake is healthy after."""
    started = time.monotonic()
    sent = await send(registration, registration.unique, count, seed)
    sending = time.monotonic() - started
    answers, pending = await collect(registration, sent)
    settling = time.monotonic() - started
    classes, problems = verdict(sent, answers, pending)
    process = registration.service.process
    if process is None or process.poll() is not None:
        problems.append("registration is not running")
    for _ in range(120):  # a minute: the last batch's commit follows its answers closely
        left = await lag(registration.bootstrap, registration.group, registration.requests)
        if not left:
            break
        await asyncio.sleep(0.5)
    else:
        problems.append(f"the consumer group's lag is {left}, not 0")
    # A handler that raised is a crash the consumer survived (read again, or dead-lettered as a poison pill).
    raised = [line[:600] for line in registration.service.logs().splitlines() if all(m in line for m in _RAISED)]
    problems += [f"registration's handler raised: {line}" for line in raised[:5]]
    return Report(len(sent), settling, sending, classes, answers.codes, problems)
