"""What every scenario shares: the servers, the scale, names of its own, service processes, and clean-up."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench import data
from bench.processes import Proc

if TYPE_CHECKING:
    from datetime import date
    from pathlib import Path

    from bench.kafka import Kafka
    from bench.measure import Rate
    from bench.report import Section
    from bench.stack import Infrastructure
    from bench.store import Store


@dataclass(frozen=True)
class Scale:
    """How much data each scenario uses, and the time one measured process may take."""

    name: str
    intake: int  # requests pre-filled on the registration scenario's intake topic
    registration: int  # of them, the requests each service run is timed over (from the topic's start)
    naive: int  # of them, the requests the naive handler is timed over
    bulk_sample: int  # requests whose documents the bulk-insert limit re-inserts
    reporting: int  # outcome events folded per run (the 4x point of the memory curve)
    notification: int  # outcome events per notification run (rejections -> webhooks, registrations -> e-mail)
    slow_seconds: float  # how long the slow webhook endpoint takes per request
    latency_rates: tuple[int, ...]  # offered requests per second
    latency_seconds: float  # how long each load is offered
    latency_drain: float  # how long answers are waited for after the load stops
    backfill: int  # requests through registration and reporting together
    profile: int  # requests the profiled registration handles
    templates: int  # decided outcome events the reporting and notification data repeat
    budget: float  # seconds one measured process may take; past it, the rate of what was done counts
    # Messages per run of the scale-out scenario (each run: 1, 2 and 4 instances of one service). Defaults are
    # the full scale's, so a Scale made without them still runs the scenario.
    scaleout_registration: int = 20_000  # requests through registration instances in one consumer group
    scaleout_reporting: int = 200_000  # outcome events through reporting instances in one consumer group
    thresholds: bool = True  # a smoke run only proves the harness works: no target is judged


SCALES = {
    # About an hour on a 2-core machine: the sizes where they fit, smaller where they cannot (the
    # table notes say which and why).
    "full": Scale(
        name="full",
        intake=200_000,
        registration=100_000,
        naive=5_000,
        bulk_sample=20_000,
        reporting=1_000_000,
        notification=600,
        slow_seconds=2.0,
        latency_rates=(200, 1000),
        latency_seconds=60,
        latency_drain=20,
        backfill=100_000,
        profile=30_000,
        templates=5_000,
        budget=400,
        scaleout_registration=20_000,
        scaleout_reporting=200_000,
    ),
    # The sizes throughout: several hours here.
    "issue": Scale(
        name="issue",
        intake=200_000,
        registration=200_000,
        naive=5_000,
        bulk_sample=200_000,
        reporting=1_000_000,
        notification=6_000,
        slow_seconds=2.0,
        latency_rates=(200, 1000),
        latency_seconds=60,
        latency_drain=20,
        backfill=1_000_000,
        profile=30_000,
        templates=5_000,
        budget=6 * 3600,
        scaleout_registration=200_000,
        scaleout_reporting=1_000_000,
    ),
    # Seconds: proves the harness and every service still work together (tests/e2e/test_bench_smoke.py).
    "smoke": Scale(
        name="smoke",
        intake=400,
        registration=400,
        naive=100,
        bulk_sample=400,
        reporting=1_000,
        notification=60,
        slow_seconds=0.2,
        latency_rates=(50,),
        latency_seconds=2,
        latency_drain=5,
        backfill=200,
        profile=0,
        templates=200,
        budget=60,
        scaleout_registration=200,
        scaleout_reporting=400,
        thresholds=False,
    ),
}


@dataclass
class Harness:
    infrastructure: Infrastructure
    kafka: Kafka
    store: Store
    env: dict[str, str]
    scale: Scale
    runs: int
    seed: int
    today: date
    workdir: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: list[Proc] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)  # figures a later scenario compares against

    def cut_short(self, section: Section, what: str, rate: Rate, target: int) -> None:
        """Say so when a run hit the time budget: its rate covers only what was done."""
        if not rate.complete:
            section.notes.append(
                f"{what} reached the {self.scale.budget:.0f} s budget after {rate.done:,} of {target:,}: "
                "its rate is that of the part done."
            )

    def judge(self, met: bool) -> bool | None:  # noqa: FBT001 - a verdict in, a verdict (or none) out
        return met if self.scale.thresholds else None

    def name(self, *parts: str | int) -> str:
        """A topic, group or database name no other run (or test) uses."""
        return "bench_" + "_".join([self.tag, *(str(p) for p in parts)])

    @property
    def nik_secret(self) -> bytes:
        return self.env["LINDUNGI_NIK_HASH_SECRET"].encode()

    def write(self, name: str, content: Any) -> Path:
        path = self.workdir / name
        path.write_text(json.dumps(content) if not isinstance(content, str) else content)
        return path

    def partners_file(self, count: int = 4) -> Path:
        return self.write(f"partners-{count}.json", data.partners(count))

    def process(self, name: str, module: str, env: dict[str, str], args: list[str] | None = None) -> Proc:
        proc = Proc(name, module, {**self.env, **env}, self.workdir / f"{name}.log", args or [])
        self.processes.append(proc)
        return proc

    def service(
        self, service: str, run: str, env: dict[str, str], *, module: str | None = None, args: list[str] | None = None
    ) -> Proc:
        """`python -m services.<service>` with its HTTP port and no topic creation of its own (the harness
        creates every topic it names, with the catalogue's partition counts)."""
        prefix = service.upper()
        proc = self.process(f"{service}-{run}", module or f"services.{service}", {}, args)
        proc.env.update({f"{prefix}_HTTP_PORT": str(proc.port), f"{prefix}_CREATE_TOPICS": "false", **env})
        self.store.remember(proc.env[f"{prefix}_MONGODB_DATABASE"])
        return proc

    def stop_all(self) -> None:
        for proc in self.processes:
            proc.stop()
