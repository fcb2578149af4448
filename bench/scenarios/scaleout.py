"""Scale-out: registration and reporting with 1, 2 and 4 instances in one consumer group, on this machine.

Each service reads a topic pre-filled as in its own scenario. For each instance count, a run gives the instances
a fresh consumer group, output topics and one database, all shared (as a service's instances share its database in
production), and times them from the first instance's start until the group's committed offsets (and, for
reporting, the national snapshot it published) cover every message. Efficiency is rate(n) / (n x rate(1)), with
rate(1) from the same run: 1 would be linear. No target is judged: the instances share the machine's cores with
Kafka and FerretDB.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bench.follow import Follower, NationalAggregate
from bench.measure import Figure, Rate, ratios, watch
from bench.report import Row, Section, table
from bench.scenarios.registration import create_registration_topics, prefill, registration_env
from bench.scenarios.reporting import create_reporting_topics, folded_and_published, prefill_outcomes, reporting_env
from shared import topics

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bench.harness import Harness, Scale

COUNTS = (1, 2, 4)  # instances in the consumer group
MOST = max(COUNTS)
NO_TARGET = "measured (no target)"


async def group_run(  # noqa: PLR0913 - which service, how many, and what done means
    h: Harness,
    service: str,
    run: str,
    env: dict[str, str],
    *,
    count: int,
    n: int,
    progress: Callable[[], Awaitable[int]],
) -> Rate:
    """`count` instances of `service` sharing `env` (one group, its topics, one database), started one after the
    other and timed from the first one's start until `progress()` reaches `n`."""
    instances = [h.service(service, f"{run}-{i}", env) for i in range(1, count + 1)]
    for proc in instances:
        proc.start()

    def alive() -> None:
        for proc in instances:
            proc.check_alive()

    try:
        return await watch(progress, n, within=h.scale.budget, check=alive, started=instances[0].started_at)
    finally:
        # Together: stopped one by one, each stop would hand its partitions to the others in one more rebalance.
        await asyncio.gather(*(asyncio.to_thread(proc.stop) for proc in instances))


async def registration_group(h: Harness, requests: str, n: int, count: int, run: str) -> Rate:
    env = registration_env(h, requests, run)
    await create_registration_topics(h, env)
    group = env["REGISTRATION_GROUP_ID"]
    # Registration commits a batch's offsets once its outcomes are published (shared/consumer.py).
    rate = await group_run(
        h, "registration", run, env, count=count, n=n, progress=lambda: h.kafka.committed_total(group, requests)
    )
    await h.store.drop(env["REGISTRATION_MONGODB_DATABASE"])
    return rate


async def reporting_group(h: Harness, outcomes: str, n: int, count: int, run: str) -> Rate:
    env = reporting_env(h, outcomes, run)
    await create_reporting_topics(h, env)
    national = NationalAggregate()
    follower = Follower(h.kafka.bootstrap, env["REPORTING_REGION_AGGREGATES_TOPIC"], national)
    await follower.start()
    try:
        progress = folded_and_published(h, env, national)
        rate = await group_run(h, "reporting", run, env, count=count, n=n, progress=progress)
    finally:
        await follower.stop()
    await h.store.drop(env["REPORTING_MONGODB_DATABASE"])
    return rate


@dataclass
class Scaling:
    """One service's figures over the runs, per instance count."""

    unit: str
    rate: dict[int, Figure] = field(default_factory=dict)  # messages / wall time from the first instance's start
    warm: dict[int, Figure] = field(default_factory=dict)  # from the first 1% on (the other scenarios' rate)
    wall: dict[int, Figure] = field(default_factory=dict)

    def add(self, count: int, rate: Rate) -> None:
        self.rate.setdefault(count, Figure(self.unit)).add(rate.done / rate.wall)
        self.warm.setdefault(count, Figure(self.unit)).add(rate.rate)
        self.wall.setdefault(count, Figure("s")).add(rate.wall)

    def efficiency(self, count: int) -> Figure:
        """Run by run: rate(count) / (count x rate(1))."""
        return Figure("", [speedup / count for speedup in ratios(self.rate[count], self.rate[1]).values])


@dataclass(frozen=True)
class Subject:
    """A service under scale-out: what it reads, and how one group of its instances is run."""

    service: str
    unit: str
    messages: str  # what one message is, in the notes' words
    catalogue: topics.Topic  # the topic it reads in production: its partition count bounds the instances
    size: Callable[[Scale], int]
    fill: Callable[[Harness, int, int], Awaitable[str]]  # (h, messages, partitions) -> the pre-filled topic
    group: Callable[[Harness, str, int, int, str], Awaitable[Rate]]  # (h, topic, messages, instances, run)


SUBJECTS = (
    Subject(
        "registration",
        "req/s",
        "requests",
        topics.ENROLLMENT_REQUESTS,
        lambda scale: scale.scaleout_registration,
        lambda h, n, partitions: prefill(h, n, "scaleout_requests", partitions=partitions),
        registration_group,
    ),
    Subject(
        "reporting",
        "events/s",
        "outcome events",
        topics.ENROLLMENT_OUTCOMES,
        lambda scale: scale.scaleout_reporting,
        lambda h, n, partitions: prefill_outcomes(h, n, "scaleout_outcomes", partitions=partitions),
        reporting_group,
    ),
)


async def measure(h: Harness, section: Section, subject: Subject) -> Scaling:
    n = subject.size(h.scale)
    partitions = max(subject.catalogue.partitions, MOST)
    if partitions > subject.catalogue.partitions:
        section.notes.append(
            f"The catalogue gives {subject.catalogue.name} {subject.catalogue.partitions} partitions, fewer than "
            f"{MOST} instances: {subject.service}'s bench topic was created with {partitions}."
        )
    topic = await subject.fill(h, n, partitions)
    scaling = Scaling(subject.unit)
    for index in range(1, h.runs + 1):
        for count in COUNTS:
            rate = await subject.group(h, topic, n, count, f"so{subject.service[:3]}{index}x{count}")
            h.cut_short(section, f"Run {index} of {count} {subject.service} instance(s)", rate, n)
            scaling.add(count, rate)
    return scaling


def rows(subject: Subject, scaling: Scaling) -> list[Row]:
    return [
        Row(
            "scaleout",
            f"{subject.service}, {count} instances in one consumer group: {subject.messages}/s "
            f"(ratio: efficiency, rate ÷ ({count} x 1-instance rate))",
            scaling.rate[count],
            scaling.rate[1],
            "1 instance",
            scaling.efficiency(count),
            NO_TARGET,
            None,
        )
        for count in COUNTS[1:]
    ]


def details(scalings: list[tuple[Subject, Scaling]]) -> str:
    return table(
        ["service", "instances", "rate, from the first start", "rate, after the first 1%", "wall time", "efficiency"],
        [
            [
                subject.service,
                str(count),
                scaling.rate[count].format(),
                scaling.warm[count].format(),
                scaling.wall[count].format(),
                scaling.efficiency(count).format(),
            ]
            for subject, scaling in scalings
            for count in COUNTS
        ],
    )


def method_notes(h: Harness) -> list[str]:
    cores = os.cpu_count() or 1
    sizes = " and ".join(f"{subject.size(h.scale):,} {subject.messages} ({subject.service})" for subject in SUBJECTS)
    partitions = ", ".join(f"{subject.catalogue.partitions} for {subject.service}" for subject in SUBJECTS)
    counts = ", ".join(map(str, COUNTS))
    return [
        (
            f"{sizes} pre-filled as in the registration and reporting scenarios, on topics with the catalogue's "
            f"partition counts ({partitions}). In each of {h.runs} runs, each service runs with {counts} instances "
            "in turn: the instances of one count share a fresh consumer group, its output topics and one fresh "
            "database, and read the topic from its start."
        ),
        (
            "A count is done when the group's committed offsets cover every message (reporting: and its published "
            "national snapshot reflects them all, as in the reporting scenario). Its rate is the messages over the "
            "wall time from the first instance's start, so start-up, joining the group and the rebalances while "
            "the other instances join are in it; the rate from the first 1% on (the other scenarios' measure) is "
            "in the table. Efficiency is rate(n) ÷ (n x rate(1)), rate(1) from the same run: 1 is linear."
        ),
        (
            f"This machine has {cores} cores, shared by the instances, Kafka and FerretDB: efficiency above {cores} "
            "instances measures contention for them, not the design."
        ),
    ]


async def run(h: Harness) -> Section:
    section = Section("scaleout")
    scalings = [(subject, await measure(h, section, subject)) for subject in SUBJECTS]
    # Per service, per instance count: the rates of the runs, for a later scenario or the docs to cite.
    h.shared["scaleout"] = {subject.service: scaling.rate for subject, scaling in scalings}
    section.rows = [row for subject, scaling in scalings for row in rows(subject, scaling)]
    section.details.append(details(scalings))
    section.notes[:0] = method_notes(h)
    return section
