"""End-to-end latency at a fixed offered load: a partner's publish to its outcome event, and to the updated
aggregate of the worker's regency/city, with registration and reporting running as in production.

The harness publishes seeded requests at a steady rate (every 10 ms, the requests due by then) and follows the
outcome and aggregate topics. An outcome answers a request by its request id; an aggregate reflects an
outcome once a snapshot of its region carries a source offset past the outcome's offset. Requests of the
first 10% of the window are warm-up and left out. A request still unanswered when the drain time is over
counts as infinitely late (shown as ∞ when a percentile falls on it). Baseline in the same run: Kafka alone,
the same requests at the same rate published to a topic and read back, no processing.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from bench import data
from bench.follow import Follower
from bench.measure import Figure, percentile, ratios
from bench.report import Row, Section, table
from bench.scenarios.registration import create_registration_topics, registration_env
from bench.scenarios.reporting import create_reporting_topics, reporting_env
from shared import topics

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from bench.harness import Harness
    from bench.kafka import Record

WARMUP = 0.1
TICK = 0.01
KAFKA_ALONE_SECONDS = 10.0
SHARES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


async def offer(bootstrap: str, topic: str, requests: list[tuple[str, Record]], rate: int) -> dict[str, float]:
    """Publish the requests at `rate` per second; returns each request id's publish time (monotonic)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    sent: dict[str, float] = {}
    pending: list[asyncio.Future[Any]] = []
    try:
        start = time.monotonic()
        index = 0
        while index < len(requests):
            due = min(len(requests), int((time.monotonic() - start) * rate) + 1)
            while index < due:
                request_id, (key, value, headers) = requests[index]
                sent[request_id] = time.monotonic()
                pending.append(await producer.send(topic, value, key=key, headers=headers))
                index += 1
            await asyncio.sleep(TICK)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


@dataclass
class Answers:
    """Outcomes as they arrive, and when the aggregate of each outcome's region first reflects it."""

    outcomes_topic: str
    outcome_at: dict[str, float] = field(default_factory=dict)
    aggregate_at: dict[str, float] = field(default_factory=dict)
    waiting: dict[str, list[tuple[int, int, str]]] = field(default_factory=lambda: defaultdict(list))

    def on_outcome(self, record: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        event = json.loads(record.value or b"{}")
        outcome = event["data"]
        request_id = outcome["request_id"]
        self.outcome_at.setdefault(request_id, arrived)
        participant = outcome.get("participant")
        region = (participant or {}).get("region_code") or outcome.get("region_code") or "ID"
        self.waiting[region].append((record.partition, record.offset, request_id))

    def on_aggregate(self, record: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        region = (record.key or b"").decode()
        pending = self.waiting.get(region)
        if not pending or record.value is None:
            return
        offsets: dict[str, int] = json.loads(record.value)["data"]["source_offsets"]
        still = []
        for partition, offset, request_id in pending:
            if offsets.get(f"{self.outcomes_topic}:{partition}", 0) > offset:
                self.aggregate_at.setdefault(request_id, arrived)
            else:
                still.append((partition, offset, request_id))
        self.waiting[region] = still


def latencies(sent: dict[str, float], answered: dict[str, float]) -> list[float]:
    """Milliseconds per request after warm-up; infinity for a request not answered."""
    ordered = sorted(sent.items(), key=lambda item: item[1])
    kept = ordered[int(len(ordered) * WARMUP) :]
    return [1000 * (answered[rid] - at) if rid in answered else math.inf for rid, at in kept]


@dataclass
class Percentiles:
    figures: dict[str, Figure] = field(default_factory=lambda: {name: Figure("ms") for name in SHARES})
    unanswered: int = 0

    def add(self, values: list[float]) -> None:
        for name, share in SHARES.items():
            self.figures[name].add(percentile(values, share))
        self.unanswered += sum(math.isinf(v) for v in values)

    def cells(self) -> list[str]:
        return [self.figures[name].format() for name in SHARES]


async def kafka_alone(h: Harness, run: str, rate: int, requests: list[tuple[str, Record]]) -> list[float]:
    topic = h.name(run, rate, "passthrough")
    await h.kafka.create_topic(topic, topics.ENROLLMENT_REQUESTS.partitions)
    by_key = {record[0]: request_id for request_id, record in requests}
    seen: dict[str, float] = {}

    def on_record(record: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        seen.setdefault(by_key.get(record.key or b"", ""), arrived)

    follower = Follower(h.kafka.bootstrap, topic, on_record)
    await follower.start()
    try:
        count = int(rate * min(KAFKA_ALONE_SECONDS, h.scale.latency_seconds))
        sent = await offer(h.kafka.bootstrap, topic, requests[: max(count, 10)], rate)
        deadline = time.monotonic() + 10
        # The follower's task fills `seen`: poll it.
        while len(seen) < len(sent) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    finally:
        await follower.stop()
    return latencies(sent, seen)


@dataclass(frozen=True)
class Phase:
    """One offered rate: when each request was published, its outcome arrived, its aggregate moved."""

    sent: dict[str, float]
    outcome_at: dict[str, float]
    aggregate_at: dict[str, float]


async def loaded(h: Harness, run: str, requests: dict[int, list[tuple[str, Record]]]) -> dict[int, Phase]:
    """Registration and reporting running; each rate offered in turn, answers awaited up to the drain time."""
    intake = h.name(run, "requests")
    await h.kafka.create_topic(intake, topics.ENROLLMENT_REQUESTS.partitions)
    registration = registration_env(h, intake, run)
    await create_registration_topics(h, registration)
    outcomes = registration["REGISTRATION_OUTCOMES_TOPIC"]
    reporting = reporting_env(h, outcomes, run)
    await create_reporting_topics(h, reporting)
    services = [h.service("registration", run, registration), h.service("reporting", run, reporting)]
    answers = Answers(outcomes)
    followers = [
        Follower(h.kafka.bootstrap, outcomes, answers.on_outcome),
        Follower(h.kafka.bootstrap, reporting["REPORTING_REGION_AGGREGATES_TOPIC"], answers.on_aggregate),
    ]
    results: dict[int, Phase] = {}
    for service in services:
        service.start()
    try:
        for service in services:
            await service.wait_ready()
        for follower in followers:
            await follower.start()
        for rate, offered in requests.items():
            sent = await offer(h.kafka.bootstrap, intake, offered, rate)
            deadline = time.monotonic() + h.scale.latency_drain
            while time.monotonic() < deadline and not all(rid in answers.aggregate_at for rid in sent):
                for service in services:
                    service.check_alive()
                await asyncio.sleep(0.2)
            results[rate] = Phase(sent, dict(answers.outcome_at), dict(answers.aggregate_at))
    finally:
        for service in services:
            service.stop()
        for follower in followers:
            await follower.stop()
    for database in (registration["REGISTRATION_MONGODB_DATABASE"], reporting["REPORTING_MONGODB_DATABASE"]):
        await h.store.drop(database)
    return results


def method_notes(h: Harness) -> list[str]:
    """How the runs were made and what each path includes, for the section's notes."""
    return [
        (
            f"Each rate is offered for {h.scale.latency_seconds:g} s (seeded requests, a new set per rate) to a "
            f"fresh registration and reporting pair; answers are awaited up to {h.scale.latency_drain:g} s after "
            "the load stops; the first 10% of requests are warm-up and left out."
        ),
        (
            "Reporting publishes each changed region at most once per `REPORTING_PUBLISH_INTERVAL_SECONDS` (1 s by "
            "default, coalescing): the aggregate path includes up to that interval by design."
        ),
        (
            "Outcome event → aggregate: from the outcome's arrival at the harness to the aggregate's, the part of the "
            "aggregate path after registration (reporting's read, fold, checkpoint and snapshot round)."
        ),
        (
            "An offered rate above registration's throughput (see the registration rows) builds a backlog: its "
            "latency grows with the run's length and measures the backlog, not the path."
        ),
        (
            f"Kafka alone: {KAFKA_ALONE_SECONDS:g} s of the same requests at the same rate through a topic of the "
            "same partitions, read back by the same harness (its own clock on both ends)."
        ),
    ]


# The targets per offered rate: p99 to the outcome event, p99 to the regency/city aggregate (ms), and
# the share of the offered rate answered (at 200/s the share is not a target: it is far below the throughput).
TARGETS: dict[int, tuple[float, float, float | None]] = {200: (500, 2000, None), 1000: (500, 3000, 0.99)}


def latency_rows(  # noqa: PLR0913 - one rate's figures
    h: Harness,
    rate: int,
    *,
    to_outcome: Percentiles,
    to_aggregate: Percentiles,
    alone: Percentiles,
    answered: Figure,
) -> list[Row]:
    """One offered rate's headlines, judged against the issue's targets for that rate (none for other rates)."""
    p99_outcome, p99_aggregate, baseline = to_outcome.figures["p99"], to_aggregate.figures["p99"], alone.figures["p99"]
    outcome_ms, aggregate_ms, share = TARGETS.get(rate, (None, None, None))
    rows = [
        Row("latency", f"p99 partner publish → outcome event at {rate:,} requests/s", p99_outcome,
            baseline, "Kafka alone, same rate", ratios(p99_outcome, baseline),
            f"< {outcome_ms:,.0f} ms" if outcome_ms else "–",
            h.judge(p99_outcome.median < outcome_ms) if outcome_ms else None),
        Row("latency", f"p99 partner publish → updated regency/city aggregate at {rate:,} requests/s",
            p99_aggregate, baseline, "Kafka alone, same rate", ratios(p99_aggregate, baseline),
            f"< {aggregate_ms / 1000:g} s" if aggregate_ms else "–",
            h.judge(p99_aggregate.median < aggregate_ms) if aggregate_ms else None),
    ]  # fmt: skip
    if share is not None:
        offered = Figure("req/s", [float(rate)] * len(answered.values))
        answered_share = ratios(answered, offered, "")
        rows.append(
            Row("latency", f"outcomes answered per second while {rate:,} requests/s are offered (ratio: share)",
                answered, offered, "offered", answered_share, f"≥ {share:g}",
                h.judge(answered_share.median >= share))
        )  # fmt: skip
    return rows


async def run(h: Harness) -> Section:
    rates = h.scale.latency_rates
    requests = {
        rate: list(data.identified_requests(int(rate * h.scale.latency_seconds), h.seed + 10 + i, today=h.today))
        for i, rate in enumerate(rates)
    }
    to_outcome = {rate: Percentiles() for rate in rates}
    to_aggregate = {rate: Percentiles() for rate in rates}
    # The breakdown of the aggregate path: from the outcome event (registration done) to the aggregate.
    outcome_to_aggregate = {rate: Percentiles() for rate in rates}
    alone = {rate: Percentiles() for rate in rates}
    answered_rate = {rate: Figure("req/s") for rate in rates}
    for index in range(1, h.runs + 1):
        run_name = f"lat{index}"
        for rate in rates:
            alone[rate].add(await kafka_alone(h, run_name, rate, requests[rate]))
        results = await loaded(h, run_name, requests)
        for rate in rates:
            phase = results[rate]
            to_outcome[rate].add(latencies(phase.sent, phase.outcome_at))
            to_aggregate[rate].add(latencies(phase.sent, phase.aggregate_at))
            outcomes = {rid: phase.outcome_at[rid] for rid in phase.sent if rid in phase.outcome_at}
            outcome_to_aggregate[rate].add(latencies(outcomes, phase.aggregate_at))
            answered = [phase.outcome_at[rid] for rid in phase.sent if rid in phase.outcome_at]
            span = (max(answered) - min(phase.sent.values())) if answered else math.inf
            answered_rate[rate].add(len(answered) / span if span > 0 else math.nan)
    section = Section("latency")
    for rate in rates:
        section.rows += latency_rows(
            h,
            rate,
            to_outcome=to_outcome[rate],
            to_aggregate=to_aggregate[rate],
            alone=alone[rate],
            answered=answered_rate[rate],
        )
    rows = []
    for rate in rates:
        rows += [
            [f"{rate:,}/s", "publish → outcome event", *to_outcome[rate].cells(), str(to_outcome[rate].unanswered)],
            [f"{rate:,}/s", "publish → regency/city aggregate", *to_aggregate[rate].cells(),
             str(to_aggregate[rate].unanswered)],
            [f"{rate:,}/s", "outcome event → regency/city aggregate (reporting's part)",
             *outcome_to_aggregate[rate].cells(), str(outcome_to_aggregate[rate].unanswered)],
            [f"{rate:,}/s", "Kafka alone: publish → consume", *alone[rate].cells(), str(alone[rate].unanswered)],
            [f"{rate:,}/s", "outcomes answered per second", answered_rate[rate].format(), "", "", ""],
        ]  # fmt: skip
    section.details.append(table(["offered", "path", "p50", "p95", "p99", "unanswered (all runs)"], rows))
    section.notes = method_notes(h)
    return section
