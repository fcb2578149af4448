"""Back-pressure: registration and reporting over a store that answers every call 500 ms late.

A proxy the test runs (tests/support_proxy.py) sits between both services and the MongoDB-protocol server
and holds every call back half a second. A steady stream of requests then goes to registration's intake. The
services must slow down, not fall over: every request is answered, reporting folds every outcome (its
consumer group's lag comes back to 0), both processes are still running, and their memory stays bounded:
each consumer takes a batch at a time and does not read the next before the last one's effects are stored,
so what waits is left in Kafka, not in the service. RSS is sampled every half second; the bound asserted is
a memory bound with a wide margin over what was measured, not a timing.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from services.reporting.app import service_topics
from services.reporting.settings import ReportingSettings
from shared import events as ev
from shared.messaging import encode, ensure_topics
from synthetic import generate
from tests.e2e.bad_input_corpus import MAIN, PARTNERS
from tests.e2e.fuzz.intake import start_registration
from tests.e2e.reliability import lag
from tests.support import ServiceProcess, consume_until, publish
from tests.support_proxy import SlowProxy

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

REQUESTS = 1500
RATE = 100  # requests per second offered: more than a store answering in 500 ms lets through (about 20/s)
DELAY = 0.5
# Measured on a 2-core machine: each service peaks near 90 MB (2,000 requests: 87 and 88 MB), a few MB over
# its idle size. The bound leaves room for other machines and versions, not for a backlog held in memory.
RSS_BOUND_MB = 300


@dataclass
class Peaks:
    """The largest resident set seen per process, sampled from /proc."""

    processes: dict[str, ServiceProcess]
    peak_mb: dict[str, float] = field(default_factory=dict)

    async def sample(self, every: float = 0.5) -> None:
        while True:
            for name, service in self.processes.items():
                if service.process is not None:
                    self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss_mb(service.process.pid))
            await asyncio.sleep(every)


def rss_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
    return int(kb) / 1024


def requests(unique: str) -> Iterator[tuple[bytes | None, bytes, dict[str, str]]]:
    for n, item in enumerate(generate(REQUESTS, 77, today=date.today(), invalid_share=0.1, region_codes=["32.71"])):
        request = item.request.model_copy(update={"request_id": f"{unique}-{n}"})
        value, headers = encode(
            ev.EnrollmentRequested(source=f"partner/{MAIN}", subject=request.request_id, data=request)
        )
        yield request.worker.nik.encode(), value, headers


async def steady(bootstrap: str, topic: str, unique: str) -> None:
    """The stream: `RATE` requests a second, in one-second slices."""
    items = list(requests(unique))
    for start in range(0, len(items), RATE):
        began = time.monotonic()
        await publish(bootstrap, topic, items[start : start + RATE])
        await asyncio.sleep(max(0.0, 1 - (time.monotonic() - began)))


def reporting_env(service_env: dict[str, str], unique: str, store: str) -> dict[str, str]:
    return {
        **service_env,
        "REPORTING_MONGODB_URL": store,
        "REPORTING_OUTCOMES_TOPIC": f"outcomes.{unique}",
        "REPORTING_REGION_AGGREGATES_TOPIC": f"aggregates.{unique}",
        "REPORTING_DEAD_LETTERS_TOPIC": f"deadletters.{unique}",
        "REPORTING_BUDGET_TOPIC": f"budget.{unique}",
        "REPORTING_GROUP_ID": f"reporting-{unique}",
        "REPORTING_MONGODB_DATABASE": f"reporting_{unique}",
    }


async def test_a_slow_store_slows_the_services_down_without_growing_their_memory(
    tmp_path: Path, service_env: dict[str, str], kafka_bootstrap: str, mongo: Any, unique: str
) -> None:
    # Quick while the services start (indexes, partners, state): the store turns slow when the stream begins.
    async with SlowProxy(service_env["LINDUNGI_MONGODB_URL"], delay=0) as proxy:
        registration = start_registration(
            tmp_path, service_env, kafka_bootstrap, unique, PARTNERS, extra_env={"REGISTRATION_MONGODB_URL": proxy.url}
        )
        env = reporting_env(service_env, unique, proxy.url)
        settings = ReportingSettings.model_validate(
            {k.removeprefix("REPORTING_").lower(): v for k, v in env.items() if k.startswith("REPORTING_")}
        )
        await ensure_topics(kafka_bootstrap, service_topics(settings))
        reporting = ServiceProcess("reporting", env, tmp_path / "reporting.log")
        reporting.start()
        peaks = Peaks({"registration": registration.service, "reporting": reporting})
        sampler = asyncio.create_task(peaks.sample())
        try:
            await registration.service.wait_ready(120)
            await reporting.wait_ready(120)
            idle_mb = {name: rss_mb(s.process.pid) for name, s in peaks.processes.items() if s.process is not None}
            proxy.delay = DELAY
            started = time.monotonic()
            await steady(kafka_bootstrap, registration.requests, unique)
            answered = await consume_until(
                kafka_bootstrap, registration.outcomes, lambda records: len(_answered(records)) >= REQUESTS, timeout=900
            )
            took = time.monotonic() - started
            group = env["REPORTING_GROUP_ID"]
            deadline = time.monotonic() + 300
            while await lag(kafka_bootstrap, group, registration.outcomes):
                assert time.monotonic() < deadline, "reporting did not fold every outcome"
                await asyncio.sleep(1)
            alive = {name: s.process is not None and s.process.poll() is None for name, s in peaks.processes.items()}
        finally:
            sampler.cancel()
            registration.service.stop()
            reporting.stop()
            await mongo.drop_database(registration.database)
            await mongo.drop_database(env["REPORTING_MONGODB_DATABASE"])

    print(  # noqa: T201 - the measured figures, in the test's output
        f"{REQUESTS} requests answered in {took:.0f} s through a store {DELAY * 1000:.0f} ms slow "
        f"({proxy.calls} store calls); RSS when the stream began {_mb(idle_mb)}, at its peak {_mb(peaks.peak_mb)}"
    )
    assert len(_answered(answered)) == REQUESTS
    assert alive == {"registration": True, "reporting": True}
    assert peaks.peak_mb["registration"] < RSS_BOUND_MB, peaks.peak_mb
    assert peaks.peak_mb["reporting"] < RSS_BOUND_MB, peaks.peak_mb


def _mb(figures: dict[str, float]) -> str:
    return json.dumps({name: f"{mb:.0f} MB" for name, mb in figures.items()})


def _answered(records: list[Any]) -> set[str]:
    return {ev.outcome_adapter.validate_json(r.value).data.request_id for r in records}
