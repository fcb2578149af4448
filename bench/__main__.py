"""`python -m bench`: run the benchmarks against the local stack, print the table, write docs/benchmarks.md.

    python -m bench                                   everything at full scale, 3 runs (about an hour)
    python -m bench --scale smoke --runs 1 --out X    seconds: proves the harness works (make test runs it)
    python -m bench --scenarios registration,latency  a subset

Kafka and MongoDB: KAFKA_BOOTSTRAP_SERVERS and MONGODB_URL when both are set, else the native stack.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import shutil
import signal
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bench import stack
from bench.harness import SCALES, Harness, Scale
from bench.kafka import Kafka
from bench.profiling import profile_service
from bench.report import Row, Section, fill, headline, render
from bench.scenarios import backfill, dashboard, latency, notification, registration, reporting, scaleout
from bench.store import Store

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

SCENARIOS: dict[str, Callable[[Harness], Awaitable[Section]]] = {
    "registration": registration.run,
    "reporting": reporting.run,
    "notification": notification.run,
    "latency": latency.run,
    "backfill": backfill.run,
    "dashboard": dashboard.run,
    "scaleout": scaleout.run,
}
PROFILED = ("registration", "reporting", "notification")  # the services bench/profiling.py can profile
LEDGER = stack.ROOT / ".local" / "bench" / "databases.txt"  # what `--clean` drops after an interrupted run
WIB = ZoneInfo("Asia/Jakarta")  # the services' "today"; the synthetic requests' dates follow it


def failed(name: str, error: Exception) -> Section:
    """A scenario that broke still gets its row, saying why, so the table shows every scenario."""
    reason = f"failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:300]
    return Section(name, rows=[Row(name, reason, None, None, "–", None, "–", met=False)])


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, in this order")
    parser.add_argument("--scale", choices=sorted(SCALES), default="full")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median, min and max shown)")
    parser.add_argument("--out", type=Path, default=stack.ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--seed", type=int, default=2021, help="seed of every generated data set")
    parser.add_argument(
        "--profile",
        default=None,
        help="services to profile with pyinstrument, comma-separated (default: registration,reporting,"
        "notification; none at smoke scale; '' for none)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=N",
        help="override one size of the scale, e.g. --set registration=20000 (see bench/harness.py)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: write --out again from the numbers of its last run (--out with .json) and the "
        "current bench/template.md",
    )
    parser.add_argument("--keep", action="store_true", help="keep this run's topics, databases and logs")
    parser.add_argument(
        "--clean",
        action="store_true",
        help="only delete what interrupted runs left behind (every `bench_` topic, group and database), then exit",
    )
    return parser.parse_args()


def chosen_scale(args: argparse.Namespace) -> Scale:
    scale = SCALES[args.scale]
    for override in args.set:
        field, _, value = override.partition("=")
        current = getattr(scale, field, None)
        if current is None or not value:
            raise SystemExit(f"--set {override}: not a size of the scale")
        parsed = tuple(int(v) for v in value.split(",")) if isinstance(current, tuple) else type(current)(value)
        changes: dict[str, Any] = {field: parsed}
        scale = dataclasses.replace(scale, name=f"{scale.name}, {override}", **changes)
    return scale


def scenario_names(args: argparse.Namespace) -> list[str]:
    names = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios: {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    return names


def profiled_services(args: argparse.Namespace, scale: Scale) -> list[str]:
    default = "registration,reporting,notification" if scale.thresholds else ""
    profiled = [name for name in (args.profile if args.profile is not None else default).split(",") if name]
    # Checked before anything is measured: a name found wrong after an hour of runs would lose the document.
    unprofilable = [name for name in profiled if name not in PROFILED]
    if unprofilable:
        raise SystemExit(f"--profile: no profile for {', '.join(unprofilable)} (known: {', '.join(PROFILED)})")
    return profiled


async def clean_up(h: Harness, *, keep: bool) -> None:
    """Delete what the scenarios created so far (a million outcome events take a gigabyte or two), so that
    nothing of the run shows beside the product's topics afterwards (`make run` on the same stack): every
    topic and consumer group whose name carries the run's tag, whoever created it (the harness, a service's
    own dead-letter topic, Quix's repartition and changelog topics), and the databases the run named."""
    h.stop_all()
    if keep:
        return
    ours = f"bench_{h.tag}"
    await h.kafka.delete_groups([group for group in await h.kafka.groups() if ours in group])
    await h.kafka.delete_topics([*h.kafka.created, *(topic for topic in await h.kafka.topics() if ours in topic)])
    h.kafka.created.clear()
    for database in set(h.store.created):
        await h.store.drop(database)
    h.store.forget(h.store.created)
    h.store.created.clear()


async def run_scenarios(h: Harness, names: list[str], profiled: list[str], *, keep: bool) -> tuple[list[Section], str]:
    sections: list[Section] = []
    for name in names:
        began = time.monotonic()
        print(f"\n== {name} ==", flush=True)
        try:
            section = await SCENARIOS[name](h)
        except Exception as error:  # noqa: BLE001 - one failed scenario must not lose the others' results
            traceback.print_exc()
            section = failed(name, error)
        finally:
            await clean_up(h, keep=keep)
        sections.append(section)
        print(f"{headline([section])}\n({time.monotonic() - began:.0f} s)", flush=True)
    profiles = []
    for service in profiled:
        print(f"\n== profile: {service} ==", flush=True)
        try:
            profiles.append(f"### {service}\n\n{await profile_service(h, service)}")
        except Exception as error:  # noqa: BLE001 - the measurements stand without the profile
            traceback.print_exc()
            profiles.append(f"### {service}\n\nProfiling failed: {type(error).__name__}: {error}")
        finally:
            await clean_up(h, keep=keep)
    return sections, "\n\n".join(profiles) or "Not profiled in this run."


async def clean_leftovers() -> None:
    infrastructure = stack.acquire()
    # Released whatever happens after acquire, as in `benchmark`.
    try:
        kafka, store = Kafka(infrastructure.kafka), Store(infrastructure.mongodb, LEDGER)
        await kafka.start()
        try:
            # Quix Streams names its repartition and changelog topics `<kind>__<consumer group>--...`.
            doomed = [t for t in await kafka.topics() if t.startswith("bench_") or "__bench_" in t]
            groups = [g for g in await kafka.groups() if g.startswith("bench_")]
            await kafka.delete_groups(groups)
            await kafka.delete_topics(doomed)
            databases = store.forgotten()
            for database in databases:
                await store.drop(database)
            print(
                f"deleted {len(doomed)} topics, {len(groups)} consumer groups and {len(databases)} databases",
                flush=True,
            )
        finally:
            await kafka.close()
            await store.close()
    finally:
        stack.release(infrastructure)


def stop_on_signals() -> None:
    """SIGTERM or SIGINT cancel the run, so its processes are stopped and its topics and databases deleted
    (a shell starts background jobs with SIGINT ignored, hence SIGTERM too)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, task.cancel)


def write_report(out: Path, parts: dict[str, str]) -> None:
    """The document, and beside it the parts it was filled from (what `--render` fills it from again)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(fill(parts), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(parts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


async def benchmark(args: argparse.Namespace) -> None:
    stop_on_signals()
    if args.render:
        parts = json.loads(args.out.with_suffix(".json").read_text(encoding="utf-8"))
        args.out.write_text(fill(parts), encoding="utf-8")
        print(f"{args.out} rendered again from {args.out.with_suffix('.json')}", flush=True)
        return
    if args.clean:
        await clean_leftovers()
        return
    names = scenario_names(args)
    scale = chosen_scale(args)
    profiled = profiled_services(args, scale)
    started_at, started = datetime.now(UTC), time.monotonic()
    infrastructure = stack.acquire()
    kafka, store = Kafka(infrastructure.kafka), Store(infrastructure.mongodb, LEDGER, keep=args.keep)
    h = Harness(
        infrastructure=infrastructure,
        kafka=kafka,
        store=store,
        env=stack.service_environment(infrastructure),
        scale=scale,
        runs=args.runs,
        seed=args.seed,
        today=datetime.now(WIB).date(),
        workdir=stack.ROOT / ".local" / "bench",
    )
    h.workdir = h.workdir / h.tag
    h.workdir.mkdir(parents=True, exist_ok=True)
    print(f"bench {h.tag}: scale {scale.name}, {args.runs} run(s), logs in {h.workdir}", flush=True)
    connected = False
    try:
        # Inside the try: a SIGTERM during start-up lands on this first await, and the stack must still be
        # released, or a cancelled run leaves the native stack it started running.
        await kafka.start()
        connected = True
        environment = {
            **stack.machine(),
            **stack.versions(),
            "MongoDB-protocol server": await store.server_version(),
            "servers": f"{infrastructure.provider} (Kafka {infrastructure.kafka})",
            "revision": stack.git_revision(),
        }
        sections, profile = await run_scenarios(h, names, profiled, keep=args.keep)
    finally:
        try:
            if connected:  # nothing was created before, and the topics cannot be listed without a connection
                await clean_up(h, keep=args.keep)
            await kafka.close()
            await store.close()
        finally:
            stack.release(infrastructure)
            if not args.keep:
                shutil.rmtree(h.workdir, ignore_errors=True)
    parts = render(
        sections=sections,
        scale=scale.name,
        runs=args.runs,
        command=stack.command_line(),
        environment=environment,
        started=started_at.strftime("%Y-%m-%d %H:%M UTC"),
        duration=time.monotonic() - started,
        profile=profile,
    )
    write_report(args.out, parts)
    print(f"\n{headline(sections)}\n\nwritten to {args.out}", flush=True)


def main() -> None:
    # The harness deletes its topics while its offset reader still knows them: aiokafka's warnings about that
    # (and about leaders of just-created topics) are not the benchmark's output.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    asyncio.run(benchmark(arguments()))


if __name__ == "__main__":
    main()
