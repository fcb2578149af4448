"""Tests leave nothing on the servers `make run` uses afterwards (issue 23, point 2).

A test session is run inside this one (tests/e2e/leaving_traces.py) against the same Kafka and MongoDB-protocol
server; afterwards the broker and the server are asked what still carries the inner test's mark: nothing may,
whether the inner session ended normally or was killed half-way (then the next session erases it).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.leaving_traces import TRACES
from tests.support import JOURNALS, PRODUCT, ROOT, carrying, holding

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).with_name("leaving_traces.py").relative_to(ROOT)


def session(test: str, out: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """One inner pytest session running one test of the sample on this session's servers."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", f"{SAMPLE}::{test}"],
        cwd=ROOT,
        env={**env, "LINDUNGI_TRACES_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def journaled(mark: str) -> list[Path]:
    return [journal for journal in JOURNALS.glob("*.marks") if mark in journal.read_text()]


@pytest.fixture
def servers(kafka_bootstrap: str, mongodb_url: str, service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "MONGODB_URL": mongodb_url}


async def test_a_session_erases_what_its_tests_created(
    tmp_path: Path, servers: dict[str, str], kafka_bootstrap: str, mongodb_url: str
) -> None:
    out = tmp_path / "mark"
    inner = session("test_leaves_traces", out, servers)
    assert inner.returncode == 0, inner.stdout[-3000:] + inner.stderr[-3000:]
    mark = out.read_text()
    assert await holding(kafka_bootstrap, mongodb_url, mark) == []
    assert journaled(mark) == []


async def test_what_a_killed_session_left_is_erased_by_the_next(
    tmp_path: Path, servers: dict[str, str], kafka_bootstrap: str, mongodb_url: str
) -> None:
    out = tmp_path / "mark"
    killed = session("test_leaves_traces_and_is_killed", out, servers)
    assert killed.returncode < 0, killed.stdout[-3000:] + killed.stderr[-3000:]
    mark = out.read_text()
    assert len(await holding(kafka_bootstrap, mongodb_url, mark)) == TRACES

    later = session("test_comes_later", tmp_path / "later", servers)
    assert later.returncode == 0, later.stdout[-3000:] + later.stderr[-3000:]
    assert await holding(kafka_bootstrap, mongodb_url, mark) == []
    assert journaled(mark) == []


def test_only_a_mark_erases_and_never_a_product_name() -> None:
    mark = "0123456789"
    names = [*PRODUCT, "__consumer_offsets", f"requests.{mark}", f"lindungi.partner.mitra-{mark}.outcomes.v1"]
    assert carrying(names, [mark]) == [f"lindungi.partner.mitra-{mark}.outcomes.v1", f"requests.{mark}"]
    assert carrying(names, []) == []
    for not_a_mark in ("", "lindungi", "requests", "0123"):
        with pytest.raises(ValueError, match="not a mark"):
            carrying(names, [not_a_mark])
