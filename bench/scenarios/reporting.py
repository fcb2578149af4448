"""Reporting throughput: outcome events folded into region aggregates, checkpointed and published.

Against Quix Streams (bench/quix_peer.py) computing the same per-region counts from the same topic in the same run
(and, for context, only the headline counts).
Memory: both processes' RSS, reporting's checkpoint (the BSON of its state documents) and Quix's state
directory, sampled every 3 s; 1x, 2x and 4x events are the samples nearest a quarter, half and all of the
events a run did (all of them, or what it did within the time budget).
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench import data
from bench.follow import Follower, NationalAggregate
from bench.kafka import fill
from bench.measure import Figure, Rate, mib, ratios, watch
from bench.quix_peer import leaf_changes
from bench.report import Row, Section, table
from shared import topics

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bench.harness import Harness
    from bench.processes import Proc

MARKS = (1, 2, 4)  # the memory curve at 1x, 2x and 4x events: a quarter, half and all of what a run did
SAMPLE_EVERY = 3.0  # seconds between samples of RSS and checkpoint size during a run


@dataclass
class Sampler:
    """RSS and checkpoint size every few seconds of one run, with the events done at the time."""

    proc: Proc
    checkpoint_size: Callable[[], Awaitable[int]]
    every: float = SAMPLE_EVERY  # seconds; reading the checkpoint's size reads every state document
    samples: list[tuple[int, float, float]] = field(default_factory=list)  # events, RSS MiB, checkpoint MiB
    last: float = -math.inf

    async def __call__(self, count: int, *, now: bool = False) -> None:
        if count and (now or time.monotonic() - self.last >= self.every):
            self.last = time.monotonic()
            self.samples.append((count, mib(self.proc.rss()), mib(await self.checkpoint_size())))

    def points(self) -> dict[int, tuple[int, float, float]]:
        """The samples nearest to a quarter, half and all of the events the run did."""
        if not self.samples:
            return {}
        done = self.samples[-1][0]
        return {mark: min(self.samples, key=lambda sample: abs(sample[0] - done * mark / max(MARKS))) for mark in MARKS}


@dataclass
class Curve:
    """The memory curve of every run: (events, RSS, checkpoint) at 1x, 2x and 4x."""

    runs: list[dict[int, tuple[int, float, float]]] = field(default_factory=list)

    def add(self, sampler: Sampler) -> None:
        points = sampler.points()
        if len(points) == len(MARKS) and points[min(MARKS)][0] < points[max(MARKS)][0]:
            self.runs.append(points)

    def at(self, what: str, mark: int) -> Figure:
        index = {"events": 0, "rss": 1, "checkpoint": 2}[what]
        return Figure("" if what == "events" else "MiB", [run[mark][index] for run in self.runs])

    def growth(self, what: str) -> Figure:
        low, high = self.at(what, min(MARKS)), self.at(what, max(MARKS))
        return Figure("x", [b / a if a else math.inf for a, b in zip(low.values, high.values, strict=True)])


def memory_rows(h: Harness, scenario: str, curve: Curve, rss_measure: str, checkpoint_measure: str) -> list[Row]:
    """The two "flat memory" rows of a curve: RSS and checkpoint size at 4x against 1x."""
    rows = []
    for what, measure, baseline in (
        ("rss", rss_measure, "RSS at 1x"),
        ("checkpoint", checkpoint_measure, "checkpoint at 1x"),
    ):
        growth = curve.growth(what)
        flat = h.judge(bool(growth.values) and growth.median <= 1.2)
        rows.append(
            Row(scenario, measure, curve.at(what, 4), curve.at(what, 1), baseline, growth, "flat (≤ 1.2x)", flat)
        )
    return rows


async def prefill_outcomes(h: Harness, n: int, label: str, *, partitions: int | None = None) -> str:
    topic, _ = await prefill_outcome_templates(h, n, label, partitions=partitions)
    return topic


async def prefill_outcome_templates(
    h: Harness, n: int, label: str, *, partitions: int | None = None
) -> tuple[str, list[data.OutcomeTemplate]]:
    """`n` outcome events on a topic of their own, with the catalogue's partition count unless `partitions` is
    given."""
    templates = await asyncio.to_thread(
        data.outcome_templates, h.scale.templates, h.seed + 1, today=h.today, nik_secret=h.nik_secret
    )
    topic = h.name(label)
    await h.kafka.create_topic(topic, partitions or topics.ENROLLMENT_OUTCOMES.partitions)
    await asyncio.to_thread(fill, h.kafka.bootstrap, topic, data.outcome_records(n, h.seed + 1, templates))
    return topic, templates


def leaf_messages(n: int, templates: list[data.OutcomeTemplate]) -> int:
    """How many records the `same` peer puts on its repartition topic for the first `n` events: one per
    leaf region an event changes (bench/quix_peer.py)."""
    per_template = [len(leaf_changes(template.record("count")[1])) for template in templates]
    rounds, rest = divmod(n, len(templates))
    return rounds * sum(per_template) + sum(per_template[:rest])


def reporting_env(h: Harness, outcomes: str, run: str) -> dict[str, str]:
    return {
        "REPORTING_OUTCOMES_TOPIC": outcomes,
        "REPORTING_REGION_AGGREGATES_TOPIC": h.name(run, "aggregates"),
        "REPORTING_DEAD_LETTERS_TOPIC": h.name(run, "reporting", "deadletters"),
        "REPORTING_BUDGET_TOPIC": h.name(run, "budget"),
        "REPORTING_GROUP_ID": h.name(run, "reporting"),
        "REPORTING_MONGODB_DATABASE": h.name(run, "reporting"),
    }


async def create_reporting_topics(h: Harness, env: dict[str, str]) -> None:
    aggregates = topics.REGION_AGGREGATES
    await h.kafka.create_topic(env["REPORTING_REGION_AGGREGATES_TOPIC"], aggregates.partitions, aggregates.config)
    await h.kafka.create_topic(env["REPORTING_DEAD_LETTERS_TOPIC"], topics.DEAD_LETTERS.partitions)


def folded_and_published(h: Harness, env: dict[str, str], national: NationalAggregate) -> Callable[[], Awaitable[int]]:
    """Reporting's progress, whatever its instances: events folded and checkpointed (the group's committed offsets
    follow the stored state) and published (the national snapshot's source offsets)."""

    async def progress() -> int:
        committed = await h.kafka.committed_total(env["REPORTING_GROUP_ID"], env["REPORTING_OUTCOMES_TOPIC"])
        return min(committed, national.reflected)

    return progress


async def reporting_run(h: Harness, outcomes: str, n: int, run: str, curve: Curve) -> tuple[Rate, int]:
    """Returns the rate, the wall time and the peak RSS."""
    env = reporting_env(h, outcomes, run)
    await create_reporting_topics(h, env)
    database = env["REPORTING_MONGODB_DATABASE"]
    national = NationalAggregate()
    follower = Follower(h.kafka.bootstrap, env["REPORTING_REGION_AGGREGATES_TOPIC"], national)
    await follower.start()
    proc = h.service("reporting", run, env)
    sampler = Sampler(proc, lambda: h.store.size(database))
    proc.start()
    try:
        rate = await watch(
            folded_and_published(h, env, national),
            n,
            within=h.scale.budget,
            check=proc.check_alive,
            started=proc.started_at,
            observe=sampler,
        )
        await sampler(rate.done, now=True)
        peak = proc.peak_rss()
    finally:
        proc.stop()
        await follower.stop()
    curve.add(sampler)
    await h.store.drop(database)
    return rate, peak


def _directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


async def quix_run(  # noqa: PLR0913 - which peer, and what its repartition topic gets
    h: Harness, outcomes: str, n: int, run: str, curve: Curve, *, counts: str, regrouped_total: int
) -> tuple[Rate, int]:
    """One run of the Quix peer with `counts` "same" or "headline"; `regrouped_total` is how many records its
    repartition topic gets for the `n` events."""
    group = h.name(run, "quix", counts)
    state_dir = h.workdir / f"quix-{run}-{counts}"
    proc = h.process(
        f"quix-{run}-{counts}",
        "bench.quix_peer",
        {
            "BENCH_QUIX_BOOTSTRAP": h.kafka.bootstrap,
            "BENCH_QUIX_GROUP": group,
            "BENCH_QUIX_TOPIC": outcomes,
            "BENCH_QUIX_STATE_DIR": str(state_dir),
            "BENCH_QUIX_COUNTS": counts,
        },
    )
    proc.start()

    async def progress() -> int:
        # Each event passes the source topic and then the repartition topic (grouped by region): done when
        # the group has committed both, i.e. counted and checkpointed. The repartition topic's records are
        # counted in events (an event changing two leaves puts two records there).
        committed = await h.kafka.committed(group)
        source = sum(offset for (topic, _), offset in committed.items() if topic == outcomes)
        regrouped = sum(offset for (topic, _), offset in committed.items() if topic.startswith("repartition"))
        return min(source, n if regrouped >= regrouped_total else regrouped * n // regrouped_total)

    async def state_size() -> int:
        return await asyncio.to_thread(_directory_size, state_dir)

    sampler = Sampler(proc, state_size)

    try:
        rate = await watch(
            progress,
            n,
            within=h.scale.budget,
            check=proc.check_alive,
            started=proc.started_at,
            observe=sampler,
        )
        await sampler(rate.done, now=True)
        peak = proc.peak_rss()
    finally:
        proc.stop()
    curve.add(sampler)
    # Quix's own topics (repartition, changelog) carry the group's name.
    await h.kafka.delete_topics([t for t in await h.kafka.topics() if group in t])
    shutil.rmtree(state_dir, ignore_errors=True)
    return rate, peak


@dataclass
class Contender:
    """One process's figures over the runs: rate, wall time, peak RSS and memory curve."""

    rate: Figure = field(default_factory=lambda: Figure("events/s"))
    wall: Figure = field(default_factory=lambda: Figure("s"))
    peak: Figure = field(default_factory=lambda: Figure("MiB"))
    curve: Curve = field(default_factory=Curve)

    def add(self, rate: Rate, peak: int) -> None:
        self.rate.add(rate.rate)
        self.wall.add(rate.wall)
        self.peak.add(mib(peak))


async def measure_contenders(
    h: Harness, section: Section, outcomes: str, n: int, regrouped_same: int
) -> tuple[Contender, Contender, Contender]:
    """Each run: reporting, then the Quix peer with the same counts, then with the headline counts."""
    us, same, headline = Contender(), Contender(), Contender()
    for index in range(1, h.runs + 1):
        run_name = f"rep{index}"
        rate, peak = await reporting_run(h, outcomes, n, run_name, us.curve)
        h.cut_short(section, f"Run {index} of the reporting service", rate, n)
        us.add(rate, peak)
        rate, peak = await quix_run(h, outcomes, n, run_name, same.curve, counts="same", regrouped_total=regrouped_same)
        h.cut_short(section, f"Run {index} of the Quix Streams peer (same counts)", rate, n)
        same.add(rate, peak)
        rate, peak = await quix_run(h, outcomes, n, run_name, headline.curve, counts="headline", regrouped_total=n)
        h.cut_short(section, f"Run {index} of the Quix Streams peer (headline counts)", rate, n)
        headline.add(rate, peak)
    return us, same, headline


def contenders_table(n: int, us: Contender, same: Contender, headline: Contender) -> str:
    """The three processes side by side: rate, wall time, peak RSS and the memory curve."""
    ours_curve, peer_curve = us.curve, same.curve
    contenders = (us, same, headline)
    rows = [
        ["events/s", *(c.rate.format() for c in contenders)],
        [f"wall time for {n:,} events, start-up included", *(c.wall.format() for c in contenders)],
        ["peak RSS (VmHWM)", *(c.peak.format() for c in contenders)],
    ]
    rows += [
        [(f"RSS at {mark}x (events: ours {ours_curve.at('events', mark).format()}, "
         f"Quix {peer_curve.at('events', mark).format()})"),
         *(c.curve.at("rss", mark).format() for c in contenders)]
        for mark in MARKS
    ]  # fmt: skip
    rows += [
        [f"checkpoint at {mark}x: state documents (ours) / state directory (Quix)",
         *(c.curve.at("checkpoint", mark).format() for c in contenders)]
        for mark in MARKS
    ]  # fmt: skip
    return table(["measure", "reporting service", "Quix Streams, same counts", "Quix Streams, headline counts"], rows)


def method_notes(h: Harness, n: int) -> list[str]:
    """How the runs were made and what each peer computes, for the section's notes."""
    return [
        (
            f"{n:,} outcome events (registrations, rejections, terminations: {h.scale.templates:,} decisions of the "
            "registration domain repeated under fresh event ids) pre-filled on a 12-partition topic; both consumers "
            "read it from the start in each run with a consumer group and a state of their own."
        ),
        (
            "Reporting is done when its committed offsets (committed after each durable batch) and the national "
            "snapshot it published (its `source_offsets`) both cover every event; Quix when its group has committed "
            "every event on the source and every record on its repartition topic (commit interval 1 s)."
        ),
        (
            "Memory: RSS (VmRSS) and checkpoint size are sampled every 3 s; 1x, 2x and 4x are the samples "
            "nearest a quarter, half and all of the events the run folded, so a run the budget cut short still "
            "gives a curve, over fewer events."
        ),
        (
            "The target's peer computes the same per-region counts: each event checked against the outcome "
            "contract and turned into its change per kecamatan by reporting's own `effects` (every breakdown of "
            "the published aggregate: segment, category, programs, funding, sex, age band, contributions by "
            "payer, flows by day and month, rejection reasons and partners), grouped by kecamatan through a "
            "repartition topic into Quix's RocksDB state: the same arithmetic, Quix's engine. Reporting does "
            "more still: it deduplicates event ids, rolls kecamatan up to regency/city, province and nation, and "
            "publishes coalesced snapshots every second. The headline peer keeps only events per outcome type "
            "and active participants per regency/city, from the parsed JSON: it shows what the breakdowns and "
            "the contract check cost."
        ),
    ]


async def run(h: Harness) -> Section:
    n = h.scale.reporting
    outcomes, templates = await prefill_outcome_templates(h, n, "reporting_outcomes")
    regrouped_same = leaf_messages(n, templates)
    section = Section("reporting")
    us, same, headline = await measure_contenders(h, section, outcomes, n, regrouped_same)
    ours, peer, light = us.rate, same.rate, headline.rate
    ours_curve = us.curve
    versus = ratios(ours, peer)
    versus_light = ratios(ours, light)
    section.rows = [
        Row(
            "reporting",
            "outcome events/s folded into aggregates, checkpointed and published",
            ours,
            peer,
            "Quix Streams, the same per-region counts",
            versus,
            "≥ 1.5x",
            h.judge(versus.median >= 1.5),
        ),
        Row(
            "reporting",
            "the same, against a peer keeping only the headline counts",
            ours,
            light,
            "Quix Streams, events and active per regency/city",
            versus_light,
            "–",
            None,
        ),
        *memory_rows(
            h,
            "reporting",
            ours_curve,
            f"RSS at 4x events ({ours_curve.at('events', 4).format()}) against 1x",
            "checkpoint size at 4x events against 1x",
        ),
    ]
    section.details.append(contenders_table(n, us, same, headline))
    section.notes[:0] = method_notes(h, n)
    return section
