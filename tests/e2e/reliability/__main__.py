"""`python -m tests.e2e.reliability [--full | --soak] [--seed N]`: a run from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import pickle
import signal
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e import reliability
from tests.e2e.reliability.plan import FULL, REDUCED, SOAK
from tests.e2e.reliability.report import DOC, Report
from tests.e2e.reliability.run import run
from tests.support import ROOT

if TYPE_CHECKING:
    from collections.abc import Awaitable

log = logging.getLogger("reliability")


async def _until_terminated(work: Awaitable[Report]) -> Report:
    """SIGTERM (a CI timeout, `timeout`) cancels the run, so the private stack and the services are still
    stopped and reset by `run`'s cleanup."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()

    def terminate() -> None:
        loop.add_signal_handler(signal.SIGTERM, lambda: None)  # a second one must not cut the cleanup short
        task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    return await task


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e.reliability", description=reliability.__doc__.split("\n\n")[0]
    )
    runs = parser.add_mutually_exclusive_group()
    runs.add_argument("--full", action="store_true", help=f"the full run: {FULL.describe()}")
    runs.add_argument("--soak", action="store_true", help=f"the soak (not in CI): {SOAK.describe()}")
    parser.add_argument("--seed", type=int, help="another seed for the stream and the fault schedule")
    parser.add_argument("--workdir", type=Path, help="where logs go (default .local/reliability/<run>)")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not write docs/reliability.md after a full run or a soak"
    )
    args = parser.parse_args(argv)
    plan = SOAK if args.soak else FULL if args.full else REDUCED
    if args.seed is not None:
        plan = replace(plan, seed=args.seed)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    workdir = args.workdir or ROOT / ".local" / "reliability" / f"{plan.name}-{stamp}"
    command = "python -m tests.e2e.reliability" + (" --full" if args.full else " --soak" if args.soak else "")
    if args.seed is not None:
        command += f" --seed {args.seed}"
    # The harness's own Kafka clients complain loudly while the broker restarts; that is expected.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    log.setLevel(logging.INFO)
    report = asyncio.run(_until_terminated(run(plan, workdir, command=command)))
    # Kept with the logs so the summary can be rendered again (`Report.markdown`) without a new run.
    (workdir / "report.pickle").write_bytes(pickle.dumps(report))
    print(report.text())  # noqa: T201 - the command's output
    print(f"logs: {workdir}")  # noqa: T201
    if (args.full or args.soak) and not args.no_docs:
        # Read again now, not when the run began: another suite may have appended its section meanwhile.
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        DOC.write_text(report.markdown(current), encoding="utf-8")
        print(f"summary written to {DOC.relative_to(ROOT)}")  # noqa: T201
    return 0 if report.verdict.clean else 1


if __name__ == "__main__":
    sys.exit(main())
