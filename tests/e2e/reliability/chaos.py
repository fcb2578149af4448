"""Faults: the plan's faults injected at random moments while the stream is published."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from shared.topics import (
    ENROLLMENT_OUTCOMES,
    ENROLLMENT_REQUESTS,
)
from tests.e2e.reliability.fleet import Fleet
from tests.e2e.reliability.plan import Plan
from tests.e2e.reliability.probes import eventually, group_assignment, health_of
from tests.e2e.reliability.stack import PrivateStack
from tests.e2e.reliability.stream import Progress, Publisher

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


log = logging.getLogger("reliability")


@dataclass
class Fault:
    kind: str
    target: str
    at_seconds: float  # since the stream started
    published: int  # requests published when it struck
    answered: int  # requests answered when it struck: published - answered were in flight
    seconds: float = 0.0  # how long it lasted, recovery included
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Chaos:
    """Injects the plan's faults at random moments while the stream is published."""

    def __init__(  # noqa: PLR0913, PLR0917 - what the faults act on
        self, plan: Plan, stack: PrivateStack, fleet: Fleet, publisher: Publisher, progress: Progress, keys: int
    ) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed + 1)
        self.stack = stack
        self.fleet = fleet
        self.publisher = publisher
        self.progress = progress
        self.keys = keys  # distinct requests: what `progress.answered` reaches at the end
        self.faults: list[Fault] = []
        self.started = time.monotonic()

    def _actions(self) -> list[tuple[str, Callable[[Fault], Awaitable[None]]]]:
        services = ["registration", "reporting", "notification"]
        self.rng.shuffle(services)
        # Each service is killed at least once; the rest are any service.
        targets = services[: self.plan.kills] + [
            self.rng.choice(["registration", "reporting", "notification"])
            for _ in range(self.plan.kills - len(services))
        ]
        actions: list[tuple[str, Callable[[Fault], Awaitable[None]]]] = [
            ("kill -9", lambda f, t=t: self.kill(f, t)) for t in targets
        ]
        if self.plan.broker_restart:
            actions.append(("broker restart", self.broker_restart))
        actions.append(("store outage", self.store_outage))
        if self.plan.rebalance:
            actions.append(("rebalance", self.rebalance))
        self.rng.shuffle(actions)
        return actions

    async def run(self) -> None:
        actions = self._actions()
        moments = sorted(self.rng.uniform(0.05, 0.85) for _ in actions)
        for (kind, action), moment in zip(actions, moments, strict=True):
            await eventually(
                lambda m=moment: (
                    self.publisher.published >= m * len(self.publisher.records) or self.publisher.done.is_set()
                ),
                3600,
            )
            await asyncio.sleep(self.rng.uniform(0, 1.5))  # not on a chunk boundary
            fault = Fault(
                kind,
                "",
                round(time.monotonic() - self.started, 1),
                self.publisher.published,
                len(self.progress.answered),
            )
            began = time.monotonic()
            log.info("fault %d/%d: %s (%d published, %d answered)", len(self.faults) + 1, len(actions), kind,
                     fault.published, fault.answered)  # fmt: skip
            await action(fault)
            fault.seconds = round(time.monotonic() - began, 1)
            log.info("  %s %s: %s", kind, fault.target, "; ".join(fault.problems + fault.notes) or "done")
            self.faults.append(fault)

    async def kill(self, fault: Fault, service: str) -> None:
        name = self.rng.choice([n for n in self.fleet.of(service) if n not in self.fleet.down])
        fault.target = name
        self.fleet.kill(name)
        await asyncio.sleep(self.rng.uniform(0.2, 3.0))
        await self.fleet.restart(name)

    async def _watch_health(self, what: str, stop: asyncio.Event) -> dict[str, set[str]]:
        """Poll every live instance's /health until `stop`; what each said about `what` (kafka/mongodb)."""
        seen: dict[str, set[str]] = defaultdict(set)
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                names = [n for n in self.fleet.instances if n not in self.fleet.down]
                answers = await asyncio.gather(*(health_of(client, self.fleet.instances[n]) for n in names))
                for name, (status, checks) in zip(names, answers, strict=True):
                    if status == 503 and checks.get(what) is False:
                        seen[name].add("reported")
                    elif status == 200:
                        seen[name].add("up")
                    else:
                        seen[name].add(f"answered {status} {checks}")
                await asyncio.sleep(0.3)
        return seen

    async def _recovered(self, fault: Fault, within: float = 180) -> None:
        began = time.monotonic()

        async def all_up() -> bool:
            async with httpx.AsyncClient() as client:
                alive = self.fleet.alive()
                answers = await asyncio.gather(*(health_of(client, s) for s in alive))
            return all(status == 200 for status, _ in answers)

        if await eventually(all_up, within):
            fault.notes.append(f"every instance healthy again {time.monotonic() - began:.1f} s after the restart")
        else:
            fault.problems.append(f"not every instance healthy {within:.0f} s after the restart")

    def _judge_health(self, fault: Fault, what: str, seen: dict[str, set[str]]) -> None:
        for name in sorted(self.fleet.instances):
            if name in self.fleet.down:
                continue
            if "reported" in seen.get(name, set()):
                fault.notes.append(f"{name}: /health reported {what} down (503)")
            else:
                fault.problems.append(f"{name}: /health never reported {what} down: {sorted(seen.get(name, ()))}")

    async def store_outage(self, fault: Fault) -> None:
        fault.target = "ferretdb"
        stop = asyncio.Event()
        await self.stack.stop_one("ferretdb")
        watching = asyncio.create_task(self._watch_health("mongodb", stop))
        await asyncio.sleep(self.plan.outage_seconds)
        stop.set()
        seen = await watching
        await self.stack.start_one("ferretdb")
        fault.notes.append(f"FerretDB down {self.plan.outage_seconds:g} s")
        self._judge_health(fault, "mongodb", seen)
        await self._recovered(fault)

    async def broker_restart(self, fault: Fault) -> None:
        fault.target = "kafka"
        self.publisher.open.clear()  # partners cannot publish either while the broker is down
        stop = asyncio.Event()
        await self.stack.stop_one("kafka")
        began = time.monotonic()
        watching = asyncio.create_task(self._watch_health("kafka", stop))
        try:
            # Down at least long enough for the health checks to notice (each may take a few seconds).
            await asyncio.sleep(4)
            await self.stack.start_one("kafka")
        finally:
            stop.set()
            seen = await watching
            self.publisher.open.set()
        fault.notes.append(f"broker down {time.monotonic() - began:.1f} s (stop, then start)")
        self._judge_health(fault, "kafka", seen)
        await self._recovered(fault)

    async def rebalance(self, fault: Fault) -> None:
        groups = {
            "registration-b": ("lindungi-registration", ENROLLMENT_REQUESTS.partitions),
            "reporting-b": ("lindungi-reporting", ENROLLMENT_OUTCOMES.partitions),
        }
        victims = [n for n in groups if n in self.fleet.instances]
        fault.target = " + ".join(victims)
        for name in victims:
            group, _ = groups[name]
            state, members = await group_assignment(self.stack.bootstrap, group)
            fault.notes.append(f"{group} before: {state}, partitions per member {[len(m) for m in members]}")
            self.fleet.kill(name)
        for name in victims:
            group, partitions = groups[name]

            async def taken_over(group: str = group, partitions: int = partitions) -> bool:
                state, members = await group_assignment(self.stack.bootstrap, group)
                return state == "Stable" and [len(m) for m in members] == [partitions]

            # The coordinator drops the dead member after its session timeout and rebalances.
            if await eventually(taken_over, 120, interval=1):
                fault.notes.append(f"{group} after: the survivor owns all {partitions} partitions")
            else:
                fault.problems.append(f"{group}: the survivor did not take every partition over in 120 s")
        before = len(self.progress.answered)
        goal = min(self.keys, before + 100)
        if await eventually(lambda: len(self.progress.answered) >= goal, 180):
            fault.notes.append(f"{len(self.progress.answered) - before} requests answered by the survivors alone")
        else:
            fault.problems.append("no progress with the survivors alone")
        for name in victims:
            await self.fleet.restart(name)
