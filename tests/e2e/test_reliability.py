"""The reliability suite in `make test`: the reduced run of tests/e2e/reliability/ (a private Kafka and
FerretDB, the three services as processes, faults while a stream flows; minutes, not hours), and what the
full run cannot show because it starts its services one by one.

The full run is `python -m tests.e2e.reliability --full`; its summary is in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.reliability import REDUCED, run
from tests.support import ServiceProcess, registration_env

if TYPE_CHECKING:
    from pathlib import Path

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
