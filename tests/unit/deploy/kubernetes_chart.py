"""The Helm chart (deploy/kubernetes/lindungi) rendered offline, as data for the tests.

`deploy/kubernetes/tools` is the one way the chart is rendered and validated, by `make kubernetes-check` and by
these tests alike; it builds helm and kubeconform from the Go module proxy into the machine's cache first when
they are missing (as `make install` does), so a test never skips for want of them.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
KUBERNETES = ROOT / "deploy" / "kubernetes"
TOOLS = KUBERNETES / "tools"
SCHEMAS = KUBERNETES / "schemas"
RENDERS = ("defaults", "alternatives")  # the chart's defaults, and values-alternatives.yaml
# Building helm on a fresh machine takes minutes; once cached, a render takes a second.
FIRST_RENDER_TIMEOUT = 1200


def tools(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TOOLS), *args], capture_output=True, text=True, timeout=FIRST_RENDER_TIMEOUT, check=False
    )


@dataclass(frozen=True)
class Render:
    """One rendering of the chart: its file and its objects."""

    path: Path
    objects: tuple[dict[str, Any], ...]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        found = [o for o in self.of(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind} {name}: {len(found)} found"
        return found[0]

    def secret_value(self, name: str, key: str) -> str | None:
        """A value the chart itself puts in a Secret (generated credentials), None for one created outside."""
        found = [o for o in self.of("Secret") if o["metadata"]["name"] == name]
        return found[0].get("stringData", {}).get(key) if found else None


@functools.cache
def _rendered() -> tuple[Path, dict[str, Render]]:
    directory = Path(tempfile.mkdtemp(prefix="lindungi-chart-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    result = tools("render", str(directory))
    assert result.returncode == 0, f"rendering the chart failed:\n{result.stdout}\n{result.stderr}"
    renders = {}
    for name in RENDERS:
        path = directory / f"{name}.yaml"
        objects = tuple(o for o in yaml.safe_load_all(path.read_text()) if o)
        renders[name] = Render(path, objects)
    return directory, renders


def rendered() -> dict[str, Render]:
    return _rendered()[1]


def defaults() -> Render:
    return rendered()["defaults"]


def every_render() -> Iterator[tuple[str, Render]]:
    yield from rendered().items()
