"""`python -m bench.state_memory`, quoted by the benchmark findings, still runs and counts what it folded."""

from __future__ import annotations

import pytest

from bench import state_memory


def test_the_probe_folds_every_participant_and_reports_the_memory_held(capsys: pytest.CaptureFixture[str]) -> None:
    state_memory.main(50)
    line = capsys.readouterr().out.strip()
    assert line.startswith("50 participants: ")
    assert "held by the projection" in line
