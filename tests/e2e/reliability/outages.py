"""Faults of what the services stand on: the broker (restarted, hung, killed), the store (stopped, its disk
full) and a service instance's clock. Each ends by clearing the fault; `Chaos` then waits for the system to
ride it out."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from tests.e2e.reliability.plan import WIB
from tests.e2e.reliability.probes import eventually, health_of

if TYPE_CHECKING:
    import random

    from tests.e2e.reliability.chaos import Fault
    from tests.e2e.reliability.fleet import Fleet
    from tests.e2e.reliability.plan import Plan
    from tests.e2e.reliability.stack import PrivateStack
    from tests.e2e.reliability.stream import Publisher

CHUNK = 1 << 20  # the probe's documents: big enough to need new pages, not the free ones SQLite keeps


class Outages:
    def __init__(self, plan: Plan, rng: random.Random, stack: PrivateStack, fleet: Fleet, publisher: Publisher) -> None:
        self.plan = plan
        self.rng = rng
        self.stack = stack
        self.fleet = fleet
        self.publisher = publisher

    # --- health, watched while a fault lasts ----------------------------------------------------------------

    async def watch_health(self, what: str, stop: asyncio.Event) -> dict[str, set[str]]:
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

    async def watched(self, what: str, seconds: float) -> dict[str, set[str]]:
        stop = asyncio.Event()
        watching = asyncio.create_task(self.watch_health(what, stop))
        try:
            await asyncio.sleep(seconds)
        finally:
            stop.set()
        return await watching

    def judge_health(self, fault: Fault, what: str, seen: dict[str, set[str]], *, required: bool = True) -> None:
        """Each live instance must have reported `what` down; for a fault health cannot be sure to see in
        time (a hung broker, a full disk) what it said is recorded, and riding the fault out is what counts."""
        reported = [n for n in sorted(self.fleet.instances) if n not in self.fleet.down and "reported" in seen[n]]
        silent = [n for n in sorted(self.fleet.instances) if n not in self.fleet.down and "reported" not in seen[n]]
        if reported:
            fault.notes.append(f"/health reported {what} down (503) on {', '.join(reported)}")
        if silent and required:
            fault.problems += [f"{n}: /health never reported {what} down: {sorted(seen[n])}" for n in silent]
        elif silent:
            fault.notes.append(f"/health stayed 200 on {', '.join(silent)}")

    # --- the broker ------------------------------------------------------------------------------------------

    async def broker_restart(self, fault: Fault) -> None:
        """A clean restart (SIGTERM, then start); partners hold their requests meanwhile."""
        fault.target = "kafka"
        self.publisher.open.clear()
        stop = asyncio.Event()
        await self.stack.stop_one("kafka")
        began = time.monotonic()
        watching = asyncio.create_task(self.watch_health("kafka", stop))
        try:
            # Down at least long enough for the health checks to notice (each may take a few seconds).
            await asyncio.sleep(4)
            await self.stack.start_one("kafka")
        finally:
            stop.set()
            seen = await watching
            self.publisher.open.set()
            fault.cleared_at = time.monotonic()
        fault.notes.append(f"broker down {time.monotonic() - began:.1f} s (stop, then start)")
        self.judge_health(fault, "kafka", seen)

    async def broker_pause(self, fault: Fault) -> None:
        """A hung broker: SIGSTOP keeps its connections open and answers nothing; partners keep sending."""
        fault.target = "kafka"
        pid = self.stack.pid("kafka")
        seconds = round(self.rng.uniform(*self.plan.pause_seconds), 1)
        os.kill(pid, signal.SIGSTOP)
        try:
            seen = await self.watched("kafka", seconds)
        finally:
            os.kill(pid, signal.SIGCONT)  # whatever happens: a stopped broker would outlive the run
            fault.cleared_at = time.monotonic()
        fault.notes.append(f"broker hung {seconds:g} s (SIGSTOP, then SIGCONT)")
        self.judge_health(fault, "kafka", seen, required=False)

    async def broker_kill(self, fault: Fault) -> None:
        """kill -9 of the broker, started again at once: it recovers its logs from an unclean shutdown."""
        fault.target = "kafka"
        pid = self.stack.pid("kafka")
        began = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        gone = await eventually(lambda: not _running(pid), 60, interval=0.1)
        if not gone:
            raise RuntimeError(f"the killed broker (pid {pid}) is still running after 60 s")
        (self.stack.state / "run" / "kafka.pid").unlink(missing_ok=True)  # a zombie must not look alive
        stop = asyncio.Event()
        watching = asyncio.create_task(self.watch_health("kafka", stop))
        try:
            await self.stack.start_one("kafka")
        finally:
            stop.set()
            seen = await watching
            fault.cleared_at = time.monotonic()
        fault.notes.append(f"broker down {time.monotonic() - began:.1f} s (kill -9, then start)")
        self.judge_health(fault, "kafka", seen, required=False)

    # --- the store -------------------------------------------------------------------------------------------

    async def store_outage(self, fault: Fault) -> None:
        fault.target = "ferretdb"
        seconds = self.plan.outage_seconds
        if self.plan.random_faults:
            seconds = round(self.rng.uniform(5, self.plan.outage_seconds), 1)
        await self.stack.stop_one("ferretdb")
        try:
            seen = await self.watched("mongodb", seconds)
        finally:
            await self.stack.start_one("ferretdb")
            fault.cleared_at = time.monotonic()
        fault.notes.append(f"FerretDB down {seconds:g} s")
        self.judge_health(fault, "mongodb", seen)

    async def disk_full(self, fault: Fault) -> None:
        """FerretDB's filesystem (the run's tmpfs) filled with a ballast file until the store refuses a
        write, held so, then freed; nothing is restarted by hand."""
        fault.target = "ferretdb disk"
        ballast = self.stack.store_dir / "ballast"
        probe: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.stack.mongodb_url, timeoutMS=15_000)
        try:
            documents = probe["reliability_probe"]["disk"]
            await documents.insert_one({"filled": False})  # the probe's database exists before the disk fills
            filled = await asyncio.to_thread(_fill, ballast)
            refused = await _until_refused(documents)
            fault.notes.append(f"disk filled ({filled / 2**20:.0f} MiB of ballast); {refused}")
            if refused.startswith("never"):
                fault.problems.append("the store still took writes on a full disk: the fault did not land")
            seen = await self.watched("mongodb", round(self.rng.uniform(*self.plan.hold_seconds), 1))
        finally:
            ballast.unlink(missing_ok=True)
            fault.cleared_at = time.monotonic()
        with contextlib.suppress(PyMongoError):
            await probe.drop_database("reliability_probe")
        await probe.close()
        self.judge_health(fault, "mongodb", seen, required=False)

    # --- a clock ---------------------------------------------------------------------------------------------

    async def clock_jump(self, fault: Fault) -> None:
        """One instance's wall clock stepped by 2 to 30 minutes, forward or back, then stepped back.

        The WIB date is kept: a step over midnight would change registration's "today", and with it which
        coverage dates are valid, which the independent computation (made for the real date) cannot follow.
        Forward steps stay under the broker's log.message.timestamp.after.max.ms (1 h in Kafka 4).
        """
        clocks = self.fleet.clocks
        assert clocks is not None, "the plan steps a clock: the fleet runs under libfaketime"
        name = self.rng.choice([n for n in self.fleet.instances if n not in self.fleet.down])
        fault.target = name
        offset = self.rng.choice((-1, 1)) * self.rng.randint(120, 1800)
        now = datetime.now(WIB)
        if (now + timedelta(seconds=offset)).date() != now.date():
            offset = -offset
        clocks.set(name, offset)
        try:
            seen = await self._clock_seen(name, offset)
            fault.notes.append(f"wall clock stepped {offset:+d} s; {seen}")
            await asyncio.sleep(self.rng.uniform(*self.plan.hold_seconds))
        finally:
            clocks.set(name, 0)
            fault.cleared_at = time.monotonic()

    async def _clock_seen(self, name: str, offset: int) -> str:
        """The instance's own clock, read from the Date header its HTTP server sets on every answer."""
        service = self.fleet.instances[name]
        skew: list[float] = []

        async def stepped() -> bool:
            with contextlib.suppress(httpx.HTTPError, TypeError, ValueError):
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"{service.url}/health", timeout=10)
                said = parsedate_to_datetime(response.headers["date"])
                skew.append((said - datetime.now(UTC)).total_seconds())
                return abs(skew[-1] - offset) < 5
            return False

        if await eventually(stepped, 15, interval=0.5):
            return f"its Date header said {skew[-1]:+.0f} s"
        return f"its Date header never showed the step (last skew {skew[-1] if skew else None})"


def _running(pid: int) -> bool:
    """Any thread of the process still alive.

    The leader of a killed JVM turns zombie first, while its other threads are still tearing down and the
    listening socket is still open: starting a new broker then finds its port taken. So every thread counts.
    """
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return False
    for task in tasks:
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in {"Z", "X"}:
            return True
    return False


def _fill(ballast: Path) -> int:
    """Allocate the filesystem's free space to `ballast`, in ever smaller pieces until none is left."""
    written = 0
    with ballast.open("wb") as out:
        for piece in (64 * CHUNK, CHUNK, 4096):
            while True:
                try:
                    os.posix_fallocate(out.fileno(), written, piece)
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break
                written += piece
    return written


async def _until_refused(documents: Any, within: float = 30) -> str:
    """Write the probe's big documents until the store refuses one (the free pages SQLite keeps run out)."""
    began, taken = time.monotonic(), 0
    while time.monotonic() - began < within:
        try:
            await documents.insert_one({"filled": True, "pad": "x" * CHUNK})
        except PyMongoError as error:
            return f"the store refused a write after {taken} more MiB: {str(error).splitlines()[0][:160]}"
        taken += 1
    return f"never refused a write in {within:g} s"
