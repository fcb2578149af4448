"""The fuzzer in `make test`: 5,000 generated inputs through registration's real intake topic, each one ending
as an outcome with a reason code or as a dead letter with a reason; no crash, no stall, no lag left
(tests/e2e/fuzz/run.py says exactly what is checked). The soak run sends 100,000 with
`python -m tests.e2e.fuzz --inputs 100000`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.bad_input_corpus import PARTNERS
from tests.e2e.fuzz.intake import start_registration
from tests.e2e.fuzz.run import fuzz

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.e2e

INPUTS = int(os.environ.get("LINDUNGI_FUZZ_INPUTS", "5000"))
SEED = int(os.environ.get("LINDUNGI_FUZZ_SEED", "2026"))  # fixed: CI sees the same inputs every run


@pytest.mark.timeout(600)  # about two minutes on 2 cores; the stall detection alone may take one more
async def test_every_fuzzed_input_is_answered_or_dead_lettered_and_the_intake_keeps_going(
    tmp_path: Path, service_env: dict[str, str], kafka_bootstrap: str, mongo: Any, unique: str
) -> None:
    registration = start_registration(
        tmp_path, service_env, kafka_bootstrap, unique, PARTNERS, extra_env={"REGISTRATION_BATCH_MAX_RECORDS": "500"}
    )
    try:
        await registration.service.wait_ready(120)
        report = await fuzz(registration, INPUTS, SEED)
    finally:
        registration.service.stop()
        await mongo.drop_database(registration.database)
    print(report.table())  # noqa: T201 - the counts per class, in the test's output
    assert report.inputs == INPUTS
    assert report.problems == [], "\n".join([report.table(), *report.problems[:30]])
