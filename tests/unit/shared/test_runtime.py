"""The process-wide settings every service applies before it serves."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT


def test_a_service_collects_cycles_in_large_rounds_and_leaves_start_up_alone() -> None:
    # In a process of its own: the collector's settings are global, and pytest's must stay as they are.
    probe = (
        "import gc; from shared.runtime import tune_gc; tune_gc(); print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(50000,", "20,", "10)", "True"]
