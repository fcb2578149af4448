"""The reliability suite in `make test`: the reduced run of tests/e2e/reliability/ (a private Kafka and
FerretDB, the three services as processes, one fault of every class while a stream flows: kill -9, broker
restart, hung and killed, store stopped and its disk full, a clock stepped, a rebalance; minutes, not hours),
and what the full run cannot show because it starts its services one by one.

The reduced run mounts a tmpfs for the store's data (the disk-full fault) and installs Debian's `faketime`
when it is missing (the clock step): both need root, as CI has. The full run is `python -m
tests.e2e.reliability --full`, the soak `--soak` (`make reliability-soak`); their summaries are in
docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.reliability import FULL, REDUCED, Report, Verdict, Workload, run
from tests.e2e.reliability.plan import SOAK
from tests.support import ServiceProcess, registration_env

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.reliability import Plan

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1200)
async def test_the_reduced_run_loses_doubles_mismatches_and_leaks_nothing(tmp_path: Path) -> None:
    report = await run(REDUCED, tmp_path, command="pytest tests/e2e/test_reliability.py")
    assert report.verdict.clean, report.text()


async def test_registration_instances_started_together_all_come_up(
    tmp_path: Path, service_env: dict[str, str], mongo: Any, unique: str
) -> None:
    """Scaling out (compose `--scale`, a rolling deploy) starts instances at the same moment: each seeds the
    same partners into the same database, and every one must start."""
    seed = tmp_path / "partners.json"
    seed.write_text(
        json.dumps(
            [
                {
                    "partner_id": f"mitra-{n:02d}",
                    "name": f"Mitra {n}",
                    "regions": ["32"],
                    "segments": ["BPU"],
                    "funding_sources": ["APBD"],
                }
                for n in range(100)
            ]
        )
    )
    env = registration_env(service_env, unique, seed)
    instances = [ServiceProcess("registration", env, tmp_path / f"registration-{n}.log") for n in range(3)]
    try:
        for instance in instances:
            instance.start()
        await asyncio.gather(*(instance.wait_ready(120) for instance in instances))
    finally:
        for instance in instances:
            instance.stop()
        await mongo.drop_database(f"registration_{unique}")


def test_a_run_rewrites_its_own_section_and_keeps_the_rest_of_the_document() -> None:
    """docs/reliability.md holds the full run's and the soak's sections, and after the generated part a section
    another suite appends: a soak rewrites only its own, from the file as it was before the markers too."""

    def report(plan: Plan) -> Report:
        started = datetime(2026, 12, 5, tzinfo=UTC)
        return Report(plan, f"run {plan.name}", started, 60, Workload(started.date()), [], Verdict(), 0, [])

    appended = "## Bad input at volume\n\n100,000 inputs, each answered once.\n"
    before_markers = "# Reliability\n\n## Last full run\n\nthe old full run\n\n## How it works\n\nold\n\n" + appended
    once = report(SOAK).markdown(before_markers)
    assert "the old full run" in once
    assert "`run soak`" in once
    assert once.endswith(appended)
    again = report(FULL).markdown(once)
    assert "the old full run" not in again
    assert "`run full`" in again
    assert "`run soak`" in again
    assert again.endswith(appended)
