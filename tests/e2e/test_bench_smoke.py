"""The benchmark harness end to end at a tiny scale, so that it does not rot between full runs.

`python -m bench --scale smoke` starts every service, peer and receiver the full run starts, on a few hundred
records, against this session's Kafka and MongoDB-protocol server. No threshold is judged: only that the
command finishes, writes a table with a row for every scenario, and leaves no topic, consumer group, database
or log directory of its run behind (they would show beside the product's in `make run`).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, holding

pytestmark = pytest.mark.e2e

SCENARIOS = ("registration", "reporting", "notification", "latency", "backfill", "scaleout")


def test_the_smoke_run_writes_a_row_for_every_scenario(
    tmp_path: Path, service_env: dict[str, str], kafka_bootstrap: str, mongodb_url: str
) -> None:
    out = tmp_path / "benchmarks.md"
    env = {**service_env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGODB_URL": mongodb_url}
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "smoke", "--runs", "1", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = out.read_text(encoding="utf-8")
    rows = [line for line in document.splitlines() if line.startswith("| ")]
    for scenario in SCENARIOS:
        scenario_rows = [row for row in rows if row.startswith(f"| {scenario} |")]
        assert scenario_rows, f"no row for {scenario} in:\n{document}"
        assert not any("failed:" in row for row in scenario_rows), "\n".join(scenario_rows)

    # The run's names all carry `bench_<tag>` (bench/harness.py `Harness.name`), its tag in its first line.
    tag = re.search(r"^bench (\w+): scale", result.stdout, re.MULTILINE)
    assert tag, result.stdout[:3000]
    assert asyncio.run(holding(kafka_bootstrap, mongodb_url, f"bench_{tag[1]}")) == []
    assert not (ROOT / ".local" / "bench" / tag[1]).exists()
