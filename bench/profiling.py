"""Where a service's time goes: the service under pyinstrument (bench/profiled.py) on a scenario's data.

The result is a markdown section of docs/benchmarks.md: the main thread's wall time split into waiting (the
event loop idle, awaiting Kafka or MongoDB) and CPU by package, the time awaited per MongoDB operation, and the
heaviest branches of pyinstrument's call tree.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bench.follow import Follower, NationalAggregate
from bench.measure import watch
from bench.report import table
from bench.scenarios import notification
from bench.scenarios.registration import create_registration_topics, prefill, registration_env
from bench.scenarios.reporting import create_reporting_topics, prefill_outcomes, reporting_env

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from pathlib import Path

    from bench.harness import Harness

TREE_LINES = 60
PROFILE_WITHIN = 150.0  # seconds: enough samples for stable shares, whatever the service's speed


async def profile_service(h: Harness, service: str) -> str:
    n = h.scale.profile or 500
    prefix = h.workdir / f"profile-{service}"
    follower: Follower | None = None
    progress: Callable[[], Awaitable[int]]
    if service == "registration":
        requests = await prefill(h, n, "profile_requests")
        env = registration_env(h, requests, "prof")
        await create_registration_topics(h, env)
        outcomes = env["REGISTRATION_OUTCOMES_TOPIC"]

        async def progress() -> int:
            return await h.kafka.records_in(outcomes)

    elif service == "reporting":
        source = await prefill_outcomes(h, n, "profile_outcomes")
        env = reporting_env(h, source, "prof")
        await create_reporting_topics(h, env)
        national = NationalAggregate()
        follower = Follower(h.kafka.bootstrap, env["REPORTING_REGION_AGGREGATES_TOPIC"], national)
        await follower.start()

        async def progress() -> int:
            committed = await h.kafka.committed_total(env["REPORTING_GROUP_ID"], source)
            return min(committed, national.reflected)

    elif service == "notification":
        return await profile_notification(h, prefix)
    else:
        raise SystemExit(f"no profile scenario for {service} (registration, reporting, notification)")
    proc = h.service(service, "profiled", env, module="bench.profiled", args=[service, str(prefix)])
    proc.start()
    try:
        # A slow service is profiled on what it manages within the budget: the shares are what matter.
        rate = await watch(progress, n, within=PROFILE_WITHIN, check=proc.check_alive, started=proc.started_at)
    finally:
        proc.stop(timeout=120)  # writing the profile takes a moment after SIGTERM
        if follower is not None:
            await follower.stop()
    summary = json.loads(prefix.with_suffix(".json").read_text())
    tree = prefix.with_suffix(".txt").read_text().splitlines()
    unit = "requests" if service == "registration" else "outcome events"
    return describe(service=service, n=n, unit=unit, rate=rate.rate, summary=summary, tree=tree)


async def profile_notification(h: Harness, prefix: Path) -> str:
    outcomes, expected = await notification.prefill(h, "profile_notification_outcomes")
    arrived = await notification.service_run(h, outcomes, expected, "profiled", slow=False, profile=prefix)
    kinds = list(expected)
    summary = json.loads(prefix.with_suffix(".json").read_text())
    tree = prefix.with_suffix(".txt").read_text().splitlines()
    return describe(
        service="notification",
        n=h.scale.notification,
        unit="outcome events",
        rate=arrived.rate(kinds),
        summary=summary,
        tree=tree,
        rate_unit="deliveries",
    )


def describe(  # noqa: PLR0913 - the parts of the profile section
    *,
    service: str,
    n: int,
    unit: str,
    rate: float,
    summary: dict[str, Any],
    tree: list[str],
    rate_unit: str | None = None,
) -> str:
    duration = float(summary.get("duration") or 0.0) or 1.0
    cpu: dict[str, float] = summary.get("cpu_by_category", {})
    idle = float(summary.get("idle", 0.0))
    shares = [["waiting: event loop idle (awaiting Kafka, MongoDB, timers)", f"{idle / duration:.0%}"]]
    shares += [
        [f"CPU: {name}", f"{seconds / duration:.0%}"] for name, seconds in cpu.items() if seconds / duration >= 0.01
    ]
    awaited: dict[str, float] = summary.get("awaited", {})
    calls: dict[str, int] = summary.get("calls", {})
    operations = [
        [f"`{name}`", f"{calls.get(name, 0):,}", f"{seconds:.1f} s",
         f"{1000 * seconds / max(1, calls.get(name, 0)):.2f} ms", f"{seconds / duration:.0%}"]
        for name, seconds in awaited.items()
        if seconds / duration >= 0.005
    ]  # fmt: skip
    kept = [line for line in tree if line.strip()][:TREE_LINES]
    return "\n".join(
        [
            (
                f"`{service}` handling {n:,} {unit} under pyinstrument (1 ms sampling, main thread), "
                f"{rate:,.1f} {rate_unit or unit}/s while profiled, {duration:.0f} s of wall time from start "
                "to SIGTERM (start-up and the idle tail included)."
            ),
            "",
            table(["where the main thread's wall time goes", "share"], shares),
            "",
            (
                "Time awaited on MongoDB, by collection and operation (measured around the driver's coroutines; it "
                "overlaps the idle share above, and operations awaited concurrently add up past 100%):"
            ),
            "",
            table(["operation", "calls", "awaited", "per call", "awaited / wall time"], operations),
            "",
            "<details><summary>pyinstrument call tree (heaviest branches)</summary>",
            "",
            "```",
            *kept,
            "```",
            "",
            "</details>",
        ]
    )
