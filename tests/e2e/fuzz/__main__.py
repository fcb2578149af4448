"""`python -m tests.e2e.fuzz --inputs N --seed S [--workdir D]`: fuzz registration's intake and print the summary.

Where it runs: on the servers named by `KAFKA_BOOTSTRAP_SERVERS` and `MONGODB_URL` when both are set (the soak
run's stack, CI's), otherwise on the native stack of `deploy/local/stack start` (started if it is not running,
as `make up` would, and left running: other work shares it). Either way the run is private to itself: its
own registration process, topics, consumer group and database, all named with a fresh mark and erased at the
end (tests/support.py `Traces`: a killed run's are erased by the next test session or run). The secrets the
service needs are generated for the run. The exit status is 0 when every input was accounted for, 1 if not.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.e2e.bad_input_corpus import PARTNERS
from tests.e2e.fuzz.intake import start_registration
from tests.e2e.fuzz.run import fuzz
from tests.support import ROOT, Traces


def say(line: str) -> None:
    sys.stdout.write(f"{line}\n".encode("utf-8", "backslashreplace").decode("utf-8"))
    sys.stdout.flush()


def servers() -> tuple[str, str]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongo:
        return kafka, mongo
    started = subprocess.run([ROOT / "deploy/local/stack", "start"], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        sys.exit(f"the native stack did not start:\n{started.stderr}")
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    return values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URL"]


async def main(count: int, seed: int, workdir: Path) -> int:
    kafka, mongo = servers()
    for secret in ("LINDUNGI_NIK_HASH_SECRET", "LINDUNGI_SEAL_KEY"):
        os.environ.setdefault(secret, base64.b64encode(os.urandom(32)).decode())
    env = {**os.environ, "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": kafka, "LINDUNGI_MONGODB_URL": mongo}
    traces = await Traces.begin(kafka, mongo)
    unique = traces.mark()
    registration = start_registration(
        workdir, env, kafka, unique, PARTNERS, extra_env={"REGISTRATION_BATCH_MAX_RECORDS": "500"}
    )
    try:
        await registration.service.wait_ready(120)
        say(f"fuzzing registration's intake: {count} inputs, seed {seed}, topics *.{unique}, log in {workdir}")
        report = await fuzz(registration, count, seed)
    finally:
        registration.service.stop()
        await traces.erase(unique)
        await traces.end()
    say(report.table())
    for problem in report.problems[:30]:
        say(f"  {problem}")
    return 1 if report.problems else 0


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=5000, help="how many inputs (default 5000)")
    parser.add_argument("--seed", type=int, default=2026, help="Hypothesis seed: the same seed, the same inputs")
    parser.add_argument("--workdir", type=Path, help="where the registration log goes (default: a temporary one)")
    args = parser.parse_args()
    # A run stopped with SIGTERM (the soak's time limit) still stops its registration and erases its names.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        sys.exit(asyncio.run(main(args.inputs, args.seed, args.workdir)))
    with tempfile.TemporaryDirectory(prefix="lindungi-fuzz-") as workdir:
        sys.exit(asyncio.run(main(args.inputs, args.seed, Path(workdir))))


cli()
