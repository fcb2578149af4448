"""Faults: the plan's faults injected at random moments while the stream is published."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from shared.topics import (
    ENROLLMENT_OUTCOMES,
    ENROLLMENT_REQUESTS,
)
from tests.e2e.reliability.fleet import Fleet
from tests.e2e.reliability.outages import Outages
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
    seconds: float = 0.0  # how long it lasted, from striking to being cleared (restart, SIGCONT, freed...)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    cleared_at: float = 0.0  # monotonic: when the fault was cleared
    # From being cleared until every instance was healthy and every request published before then answered.
    recovered_seconds: float | None = None


# The soak's draw: how often each class of fault comes up (every class at least twice).
WEIGHTS = {
    "kill -9": 40,
    "broker hung": 12,
    "broker kill -9": 7,
    "broker restart": 5,
    "store outage": 10,
    "store disk full": 10,
    "clock jump": 12,
    "rebalance": 4,
}


class Chaos:
    """Injects the plan's faults at random moments while the stream is published, and measures how long
    the system takes to ride each out."""

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
        self.outages = Outages(plan, self.rng, stack, fleet, publisher)
        self.record_keys = [_request_key(value) for _, value, _ in publisher.records]
        self.answered_upto = 0  # every record before this index is answered (or given up on, below)
        # Requests a fault left unanswered past its bound: reported with that fault, then not waited for
        # again, so one lost request does not make every later fault wait out its bound too.
        self.unanswered: set[str] = set()

    def _action(self, kind: str, service: str = "") -> tuple[str, Callable[[Fault], Awaitable[None]]]:
        if kind == "kill -9":
            return kind, lambda f: self.kill(f, service or self.rng.choice(SERVICES))
        named: dict[str, Callable[[Fault], Awaitable[None]]] = {
            "broker restart": self.outages.broker_restart,
            "broker hung": self.outages.broker_pause,
            "broker kill -9": self.outages.broker_kill,
            "store outage": self.outages.store_outage,
            "store disk full": self.outages.disk_full,
            "clock jump": self.outages.clock_jump,
            "rebalance": self.rebalance,
        }
        return kind, named[kind]

    def _actions(self) -> list[tuple[str, Callable[[Fault], Awaitable[None]]]]:
        if self.plan.random_faults:
            kinds = [k for k in WEIGHTS for _ in range(2)]
            kinds += self.rng.choices(list(WEIGHTS), list(WEIGHTS.values()), k=self.plan.random_faults - len(kinds))
            self.rng.shuffle(kinds)
            return [self._action(k) for k in kinds]
        services = list(SERVICES)
        self.rng.shuffle(services)
        # Each service is killed at least once; the rest are any service.
        targets = services[: self.plan.kills] + [self.rng.choice(SERVICES) for _ in range(self.plan.kills - 3)]
        actions = [self._action("kill -9", t) for t in targets]
        optional = {
            "broker restart": self.plan.broker_restart,
            "broker hung": self.plan.broker_pause,
            "broker kill -9": self.plan.broker_kill,
            "store outage": True,
            "store disk full": self.plan.disk_full,
            "clock jump": self.plan.clock_jump,
            "rebalance": self.plan.rebalance,
        }
        actions += [self._action(kind) for kind, wanted in optional.items() if wanted]
        self.rng.shuffle(actions)
        return actions

    async def run(self) -> None:
        actions = self._actions()
        moments = sorted(self.rng.uniform(0.03 if self.plan.random_faults else 0.05, 0.85) for _ in actions)
        for (kind, action), moment in zip(actions, moments, strict=True):
            due = moment * len(self.publisher.records)
            await eventually(lambda: self.publisher.published >= due or self.publisher.done.is_set(), 7200)  # noqa: B023 - awaited at once
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
            fault.seconds = round((fault.cleared_at or time.monotonic()) - began, 1)
            await self._ridden_out(fault)
            log.info("  %s %s: recovered in %s s; %s", kind, fault.target, fault.recovered_seconds,
                     "; ".join(fault.problems + fault.notes) or "done")  # fmt: skip
            self.faults.append(fault)

    def _answered_through(self, published: int) -> bool:
        answered = self.progress.answered
        keys = self.record_keys
        while self.answered_upto < published and (
            keys[self.answered_upto] in answered or keys[self.answered_upto] in self.unanswered
        ):
            self.answered_upto += 1
        return self.answered_upto >= published

    async def _ridden_out(self, fault: Fault) -> None:
        """Time from the fault being cleared until every live instance is healthy and every request published
        before then is answered; longer than the plan allows is a fault not ridden out."""
        cleared = fault.cleared_at or time.monotonic()
        published = self.publisher.published

        async def back() -> bool:
            async with httpx.AsyncClient() as client:
                answers = await asyncio.gather(*(health_of(client, s) for s in self.fleet.alive()))
            return all(status == 200 for status, _ in answers) and self._answered_through(published)

        within = self.plan.recover_seconds
        ok = await eventually(back, within - (time.monotonic() - cleared), interval=0.5)
        fault.recovered_seconds = round(time.monotonic() - cleared, 1)
        if not ok:
            answered = self.progress.answered
            left = {k for k in self.record_keys[self.answered_upto : published] if k not in answered}
            self.unanswered |= left
            fault.problems.append(
                f"not ridden out {within:g} s after it was cleared: {len(left)} requests published before then "
                f"still unanswered (e.g. {sorted(left)[:3]}), or an instance unhealthy"
            )

    async def kill(self, fault: Fault, service: str) -> None:
        name = self.rng.choice([n for n in self.fleet.of(service) if n not in self.fleet.down])
        fault.target = name
        self.fleet.kill(name)
        await asyncio.sleep(self.rng.uniform(0.2, 3.0))
        fault.cleared_at = time.monotonic()
        await self.fleet.restart(name)

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
        goal = min(self.keys - len(self.unanswered), before + 100)  # a request given up on never comes
        if await eventually(lambda: len(self.progress.answered) >= goal, 180):
            fault.notes.append(f"{len(self.progress.answered) - before} requests answered by the survivors alone")
        else:
            fault.problems.append("no progress with the survivors alone")
        fault.cleared_at = time.monotonic()
        for name in victims:
            await self.fleet.restart(name)


SERVICES = ("registration", "reporting", "notification")


def _request_key(value: bytes) -> str:
    """partner:request id of a published record, as the outcome names it."""
    event = json.loads(value)
    return f"{event['source'].removeprefix('partner/')}:{event['data']['request_id']}"
