"""Registration throughput: intake topic to persisted participants and published outcomes.

Against, in the same runs: the naive FastStream handler of bench/naive.py on the same topic, and the raw
limits of the two ends, aiokafka reading the same topic with no processing and bulk inserts of the very
documents the service wrote (read back from its database) into the same server.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer

from bench import data
from bench.harness import Harness
from bench.kafka import fill
from bench.measure import Figure, Rate, mib, ratios, watch
from bench.report import Row, Section, table
from shared import topics

COLLECTIONS = ["participants", "history", "requests"]  # everything registration writes per request


async def prefill(h: Harness, n: int, label: str = "requests", *, partitions: int | None = None) -> str:
    """`n` requests on a topic of their own, with the catalogue's partition count unless `partitions` is given."""
    topic = h.name(label)
    await h.kafka.create_topic(topic, partitions or topics.ENROLLMENT_REQUESTS.partitions)
    await asyncio.to_thread(fill, h.kafka.bootstrap, topic, data.request_records(n, h.seed, today=h.today))
    return topic


def registration_env(h: Harness, requests: str, run: str) -> dict[str, str]:
    return {
        "REGISTRATION_REQUESTS_TOPIC": requests,
        "REGISTRATION_OUTCOMES_TOPIC": h.name(run, "outcomes"),
        "REGISTRATION_DEAD_LETTERS_TOPIC": h.name(run, "deadletters"),
        "REGISTRATION_BUDGET_TOPIC": h.name(run, "budget"),
        "REGISTRATION_GROUP_ID": h.name(run, "registration"),
        "REGISTRATION_PARTNER_TOPIC_PREFIX": h.name(run, "partner") + ".",
        "REGISTRATION_MONGODB_DATABASE": h.name(run, "registration"),
        "REGISTRATION_PARTNERS_SEED_FILE": str(h.partners_file()),
    }


async def create_registration_topics(h: Harness, env: dict[str, str]) -> None:
    await h.kafka.create_topic(env["REGISTRATION_OUTCOMES_TOPIC"], topics.ENROLLMENT_OUTCOMES.partitions)
    await h.kafka.create_topic(env["REGISTRATION_DEAD_LETTERS_TOPIC"], topics.DEAD_LETTERS.partitions)


async def service_run(h: Harness, requests: str, n: int, run: str) -> tuple[Rate, int, str]:
    """The service over the whole topic; returns the rate, its peak RSS and its database."""
    env = registration_env(h, requests, run)
    await create_registration_topics(h, env)
    proc = h.service("registration", run, env)
    proc.start()
    try:
        rate = await watch(
            lambda: h.kafka.records_in(env["REGISTRATION_OUTCOMES_TOPIC"]),
            n,
            within=h.scale.budget,
            check=proc.check_alive,
            started=proc.started_at,
        )
        peak = proc.peak_rss()
    finally:
        proc.stop()
    return rate, peak, env["REGISTRATION_MONGODB_DATABASE"]


async def naive_run(h: Harness, requests: str, n: int, run: str) -> Rate:
    outcomes = h.name(run, "naive", "outcomes")
    await h.kafka.create_topic(outcomes, topics.ENROLLMENT_OUTCOMES.partitions)
    database = h.name(run, "naive")
    h.store.remember(database)
    proc = h.process(
        f"naive-{run}",
        "bench.naive",
        {
            "BENCH_NAIVE_REQUESTS_TOPIC": requests,
            "BENCH_NAIVE_OUTCOMES_TOPIC": outcomes,
            "BENCH_NAIVE_GROUP_ID": h.name(run, "naive"),
            "BENCH_NAIVE_DATABASE": database,
            "BENCH_NAIVE_PARTNERS_FILE": str(h.partners_file()),
        },
    )
    proc.start()
    try:
        rate = await watch(lambda: h.kafka.records_in(outcomes), n, within=h.scale.budget, check=proc.check_alive)
    finally:
        proc.stop()
    await h.store.drop(database)
    return rate


async def kafka_limit(h: Harness, topic: str, n: int) -> float:
    """aiokafka reading the whole topic, doing nothing with the records; rate after the first 1%."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=h.kafka.bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        count, warm_count = 0, 0
        began = warm_at = time.perf_counter()
        while count < n:
            batch = await consumer.getmany(timeout_ms=1000)
            count += sum(len(records) for records in batch.values())
            if not warm_count and count >= max(1, n // 100):
                warm_at, warm_count = time.perf_counter(), count
        done = time.perf_counter()
    finally:
        await consumer.stop()
    if count > warm_count and done > warm_at:
        return (count - warm_count) / (done - warm_at)
    return count / (done - began)  # read in one fetch (a smoke run): the whole span


async def bulk_limit(h: Harness, database: str, target: str) -> float:
    """Requests per second the store takes as bulk inserts of the documents the service wrote for them: a
    sample of `bulk_sample` requests' worth, each collection in the proportion the service wrote it."""
    counts = {name: await h.store.count(database, name) for name in COLLECTIONS}
    requests = min(h.scale.bulk_sample, counts["requests"])  # one request-log document per request
    if not requests:
        return float("nan")
    limits = {name: max(1, round(requests * count / counts["requests"])) for name, count in counts.items()}
    return requests / await h.store.copy_timed(database, target, limits)


def headline_rows(h: Harness, service: Figure, naive: Figure, slower: Figure) -> list[Row]:
    """The service against the naive handler, and against the slower of its two raw limits."""
    versus_naive, versus_limit = ratios(service, naive), ratios(service, slower)
    return [
        Row(
            "registration",
            "requests/s from intake to persisted participants and published outcomes",
            service,
            naive,
            "naive FastStream handler",
            versus_naive,
            "≥ 10x",
            h.judge(versus_naive.median >= 10),
        ),
        Row(
            "registration",
            "share of the slower raw limit reached",
            service,
            slower,
            "min(aiokafka read, bulk insert)",
            versus_limit,
            "≥ 0.8",
            h.judge(versus_limit.median >= 0.8),
        ),
    ]


def method_notes(h: Harness, n: int, naive_n: int, service: Figure) -> list[str]:
    """How the runs were made and the limits measured, for the section's notes (`service`: its rates, which
    say how long the whole intake topic would take)."""
    timed = (
        f"each run is timed over the first {n:,} of them (the whole topic at ~{service.median:,.0f} requests/s "
        f"would take {h.runs} x {h.scale.intake / max(service.median, 1) / 60:.0f} min, beyond this scale's "
        "time budget)"
        if n < h.scale.intake
        else "each run is timed over all of them"
    )
    return [
        (
            f"{h.scale.intake:,} seeded synthetic requests (5% breaking a rule) pre-filled on a 12-partition "
            f"intake topic; {timed}. Each of {h.runs} runs gives the service a fresh consumer group, database and "
            "outcome topic, and counts from the first 1% of outcomes until the outcome topic holds one outcome "
            "per timed request."
        ),
        (
            f"The naive handler is timed on the first {naive_n:,} requests only (it would take too long over "
            "more): its rate is comparable, its total is not."
        ),
        (
            "The bulk-insert limit re-inserts participants, history and request-log documents the service wrote "
            f"in that run (read back from its database; {h.scale.bulk_sample:,} requests' worth, in the "
            "proportions written) with `insert_many` of up to 5,000 documents (16 MB) into a fresh database, in "
            "requests per second. The aiokafka limit reads the whole intake topic with no processing."
        ),
    ]


async def run(h: Harness) -> Section:
    n, naive_n = min(h.scale.registration, h.scale.intake), h.scale.naive
    requests = await prefill(h, h.scale.intake)
    service, naive = Figure("req/s"), Figure("req/s")
    from_kafka, into_store, slower = Figure("req/s"), Figure("req/s"), Figure("req/s")
    peak, wall = Figure("MiB"), Figure("s")
    section = Section("registration")
    for index in range(1, h.runs + 1):
        run_name = f"reg{index}"
        rate, peak_rss, database = await service_run(h, requests, n, run_name)
        h.cut_short(section, f"Run {index} of the service", rate, n)
        service.add(rate.rate)
        wall.add(rate.wall)
        peak.add(mib(peak_rss))
        baseline = await naive_run(h, requests, naive_n, run_name)
        h.cut_short(section, f"Run {index} of the naive handler", baseline, naive_n)
        naive.add(baseline.rate)
        from_kafka.add(await kafka_limit(h, requests, h.scale.intake))
        into_store.add(await bulk_limit(h, database, h.name(run_name, "bulk")))
        slower.add(min(from_kafka.values[-1], into_store.values[-1]))
        await h.store.drop(database)
        await h.store.drop(h.name(run_name, "bulk"))
    h.shared["registration"] = service
    section.rows = headline_rows(h, service, naive, slower)
    section.details.append(
        table(
            ["measure", "median (min–max)"],
            [
                ["registration service, requests/s", service.format()],
                [f"naive handler, requests/s (first {naive_n:,} requests)", naive.format()],
                ["raw limit: aiokafka reads the topic, requests/s", from_kafka.format()],
                ["raw limit: bulk insert of the documents written, requests/s", into_store.format()],
                [f"registration wall time for {n:,} requests, start-up included", wall.format()],
                ["registration peak RSS (VmHWM)", peak.format()],
            ],
        )
    )
    section.notes[:0] = method_notes(h, n, naive_n, service)
    return section
