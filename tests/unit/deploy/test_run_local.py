"""`make run` (deploy/local/run.py), pure parts: when the coverage table may be printed, and that it fits an
80-column terminal."""

from __future__ import annotations

import importlib.util
import sys
from typing import TYPE_CHECKING, Any

import pytest
from rich.console import Console

from tests.support import ROOT

if TYPE_CHECKING:
    from types import ModuleType


@pytest.fixture(scope="module")
def run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_local_run", ROOT / "deploy" / "local" / "run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


TOPIC = "lindungi.enrollment.outcomes.v1"
ENDS = {f"{TOPIC}:0": 1200, f"{TOPIC}:1": 900, f"{TOPIC}:2": 911}


def test_figures_are_final_only_when_every_partition_is_folded_to_its_end(run: ModuleType) -> None:
    done = run.folding(dict(ENDS), ENDS)
    assert done.complete
    assert done.line() == "reporting has folded 3,011 of 3,011 outcomes"
    # Every sample region already non-zero (the old rule printed here), but 187 outcomes not yet counted.
    partial = run.folding({f"{TOPIC}:0": 1200, f"{TOPIC}:1": 713, f"{TOPIC}:2": 911}, ENDS)
    assert not partial.complete
    assert (partial.folded, partial.published) == (2824, 3011)
    assert partial.behind == {f"{TOPIC}:1": 187}
    assert partial.what_is_behind() == f"{TOPIC}:1 by 187"


def test_a_partition_reporting_has_not_reported_counts_as_nothing_folded(run: ModuleType) -> None:
    progress = run.folding({f"{TOPIC}:0": 1200}, ENDS)
    assert progress.behind == {f"{TOPIC}:1": 900, f"{TOPIC}:2": 911}
    assert run.folding({}, ENDS).folded == 0
    assert run.folding({}, {}).complete  # an empty topic: nothing to wait for


def test_offsets_of_earlier_runs_beyond_the_end_do_not_count_twice(run: ModuleType) -> None:
    progress = run.folding({f"{TOPIC}:0": 5000, f"{TOPIC}:9": 7}, {f"{TOPIC}:0": 1200})
    assert (progress.folded, progress.published, progress.complete) == (1200, 1200, True)


def figures(name: str, active: int, apbd: int) -> dict[str, Any]:
    return {
        "region_name": name,
        "active": active,
        "coverage": {"ratio": 0.000432},
        "monthly_contributions_by_funding_source": {"APBD": apbd},
        "rejections_by_reason": {"NIK_INVALID": 31, "AGE_BELOW_WORKING": 4},
    }


ROWS = [
    ("32.71", figures("Kota Bogor", 187, 6_960_074)),
    ("31.74", figures("Kota Administrasi Jakarta Selatan", 12_345, 1_234_567_890)),
    ("32.01", figures("Kabupaten Bogor", 99_999, 123_456_789)),
    ("73.71", {}),  # reporting did not answer for this one
]


@pytest.mark.parametrize("width", [80, 200])
def test_the_coverage_table_fits_80_columns(run: ModuleType, width: int) -> None:
    console = Console(width=width, record=True, color_system=None)
    console.print(run.coverage_rows(ROWS, "Coverage per regency/city (sample data), INCOMPLETE"))
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    text = "\n".join(lines)
    for shown in (
        "Kota Bogor",
        "Kota Adm. Jakarta Selatan",
        "Kab. Bogor",
        "Rp6.960.074",
        "Rp1.234.567.890",
        "0.0432%",
        "12345",
        "35",
    ):
        assert shown in text  # each on one line: nothing wrapped
    assert len(lines) == 1 + 2 + len(ROWS)  # title, header, its rule, one line per region
