"""Backfill: a pre-filled intake topic through registration and reporting running together, from empty.

Wall time until reporting's national snapshot reflects every outcome (start-up included), each service's own
wall time and its peak RSS (VmHWM). Baseline in the same invocation: registration alone (the registration
scenario's rate), so the ratio says what running reporting beside it costs on a shared machine.

Reporting's memory curve is taken here too: every request is a participant of its own, so the state reaches
every kecamatan on every partition, which the reporting scenario's repeated decisions never do.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.follow import Follower, NationalAggregate
from bench.measure import Figure, Rate, mib, ratios, watch
from bench.report import Row, Section, table
from bench.scenarios.registration import create_registration_topics, prefill, registration_env
from bench.scenarios.reporting import MARKS, Curve, Sampler, create_reporting_topics, memory_rows, reporting_env

if TYPE_CHECKING:
    from bench.harness import Harness


@dataclass
class Backfill:
    rate: Rate
    registration_wall: float | None  # None: not every outcome was published within the budget
    registration_peak: int
    reporting_peak: int


CURVE_SAMPLE_EVERY = 15.0  # seconds: the backfill is long, and each sample reads all of reporting's state


async def backfill_run(h: Harness, requests: str, n: int, run: str, curve: Curve) -> Backfill:
    registration = registration_env(h, requests, run)
    await create_registration_topics(h, registration)
    outcomes = registration["REGISTRATION_OUTCOMES_TOPIC"]
    reporting = reporting_env(h, outcomes, run)
    await create_reporting_topics(h, reporting)
    databases = [registration["REGISTRATION_MONGODB_DATABASE"], reporting["REPORTING_MONGODB_DATABASE"]]
    national = NationalAggregate()
    follower = Follower(h.kafka.bootstrap, reporting["REPORTING_REGION_AGGREGATES_TOPIC"], national)
    await follower.start()
    registering = h.service("registration", run, registration)
    folding = h.service("reporting", run, reporting)
    sampler = Sampler(folding, lambda: h.store.size(reporting["REPORTING_MONGODB_DATABASE"]), CURVE_SAMPLE_EVERY)
    started = time.monotonic()
    registering.start()
    folding.start()
    registered: list[float] = []
    registration_peak = 0

    def alive() -> None:
        registering.check_alive()
        folding.check_alive()

    async def progress() -> int:
        nonlocal registration_peak
        produced = await h.kafka.records_in(outcomes)
        if produced >= n and not registered:
            registered.append(time.monotonic() - started)
            registration_peak = registering.peak_rss()
        return min(produced, national.reflected)

    try:
        rate = await watch(progress, n, within=h.scale.budget, check=alive, started=started, observe=sampler)
        await sampler(rate.done, now=True)
        reporting_peak = folding.peak_rss()
        registration_peak = registration_peak or registering.peak_rss()
    finally:
        registering.stop()
        folding.stop()
        await follower.stop()
    curve.add(sampler)
    for database in databases:
        await h.store.drop(database)
    return Backfill(rate, registered[0] if registered else None, registration_peak, reporting_peak)


def method_notes(n: int) -> list[str]:
    """How the runs were made, for the section's notes."""
    return [
        (
            f"{n:,} seeded requests pre-filled on the intake topic; both services start together from empty "
            "databases and read their topics from the start; wall times include start-up."
        ),
        (
            "Reporting's memory curve: RSS and checkpoint size sampled every "
            f"{CURVE_SAMPLE_EVERY:.0f} s; 1x, 2x and 4x are the samples nearest a quarter, half and all of the "
            "outcomes it folded. Unlike the reporting scenario's repeated decisions, every request here is a "
            "participant of its own, so the state grows until it holds every kecamatan on every partition."
        ),
    ]


# The target: a 1,000,000-request backfill through registration and reporting in under 300 s. Judged
# only at that size (`make bench-backfill`); a smaller backfill's wall time says nothing about it.
TARGET_REQUESTS, TARGET_WALL_SECONDS = 1_000_000, 300


def wall_target(h: Harness, n: int, wall: Figure) -> tuple[str, bool | None]:
    if n < TARGET_REQUESTS:
        return f"< {TARGET_WALL_SECONDS} s at {TARGET_REQUESTS:,}: `make bench-backfill`", None
    return f"< {TARGET_WALL_SECONDS} s wall", h.judge(wall.median < TARGET_WALL_SECONDS)


async def run(h: Harness) -> Section:
    n = h.scale.backfill
    requests = await prefill(h, n, "backfill_requests")
    end_to_end, wall = Figure("req/s"), Figure("s")
    registration_wall, registration_peak, reporting_peak = Figure("s"), Figure("MiB"), Figure("MiB")
    curve = Curve()
    section = Section("backfill")
    for index in range(1, h.runs + 1):
        result = await backfill_run(h, requests, n, f"back{index}", curve)
        h.cut_short(section, f"Backfill run {index}", result.rate, n)
        end_to_end.add(result.rate.done / result.rate.wall)
        wall.add(result.rate.wall)
        if result.registration_wall is not None:
            registration_wall.add(result.registration_wall)
        registration_peak.add(mib(result.registration_peak))
        reporting_peak.add(mib(result.reporting_peak))
    alone = h.shared.get("registration")
    comparable = alone is not None and len(alone.values) == len(end_to_end.values)
    section.rows = [
        Row(
            "backfill",
            f"{n:,} requests through registration and reporting, requests/s (wall {wall.format()})",
            end_to_end,
            alone,
            "registration alone (registration rows)" if alone else "registration alone: not run",
            ratios(end_to_end, alone) if alone is not None and comparable else None,
            *wall_target(h, n, wall),
        ),
        *memory_rows(
            h,
            "backfill",
            curve,
            f"reporting RSS at 4x outcomes ({curve.at('events', 4).format()}, a participant each) against 1x",
            "reporting checkpoint size at 4x outcomes against 1x",
        ),
    ]
    section.details.append(
        table(
            ["measure", "median (min–max)"],
            [
                [f"wall time, {n:,} requests until the national aggregate reflects all", wall.format()],
                ["registration: wall time until every outcome is published", registration_wall.format()],
                ["reporting: wall time until every outcome is folded and published", wall.format()],
                ["registration: peak RSS (VmHWM)", registration_peak.format()],
                ["reporting: peak RSS (VmHWM)", reporting_peak.format()],
                *(
                    [
                        f"reporting at {mark}x (outcomes {curve.at('events', mark).format()}): RSS / checkpoint",
                        f"{curve.at('rss', mark).format()} / {curve.at('checkpoint', mark).format()}",
                    ]
                    for mark in MARKS
                ),
            ],
        )
    )
    section.notes[:0] = method_notes(n)
    return section
