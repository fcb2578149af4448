"""Every object the chart renders is valid for its Kubernetes kind or custom resource, checked offline.

kubeconform runs strict (no unknown field anywhere) against the schemas vendored in
deploy/kubernetes/schemas/ only, and an object whose schema is missing is an error, not a skip. The vendored
files are the ones their manifest records, with their origin and licence stated.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_chart import FIRST_RENDER_TIMEOUT, SCHEMAS, every_render, tools

pytestmark = pytest.mark.timeout(FIRST_RENDER_TIMEOUT)

SUMMARY = re.compile(
    r"Summary: (\d+) resources? found in \d+ files? - Valid: (\d+), Invalid: (\d+), Errors: (\d+), Skipped: (\d+)"
)
MANIFEST = SCHEMAS / "sources.json"


def validate(*paths: Path) -> tuple[int, str, tuple[int, ...]]:
    result = tools("validate", *map(str, paths))
    output = result.stdout + result.stderr
    match = SUMMARY.search(output)
    assert match, output
    return result.returncode, output, tuple(int(n) for n in match.groups())


def schema_file(obj: dict[str, Any]) -> Path:
    """Where kubeconform looks for an object's schema (the two -schema-location templates of tools)."""
    api_version: str = obj["apiVersion"]
    kind: str = obj["kind"].lower()
    group, _, version = api_version.rpartition("/")
    if group and "." in group and not group.endswith(".k8s.io"):
        return SCHEMAS / "crds" / group / f"{kind}_{version}.json"
    suffix = f"-{group.split('.')[0]}" if group else ""
    return SCHEMAS / "kubernetes" / "v1.33.0-standalone-strict" / f"{kind}{suffix}-{version}.json"


def test_every_rendered_object_is_valid_against_the_vendored_schemas() -> None:
    renders = dict(every_render())
    code, output, (found, valid, invalid, errors, skipped) = validate(*(r.path for r in renders.values()))
    assert code == 0, output
    assert found == valid == sum(len(r.objects) for r in renders.values()), output
    assert (invalid, errors, skipped) == (0, 0, 0), output


def test_an_unknown_field_or_an_unknown_kind_fails_validation(tmp_path: Path) -> None:
    """The check is strict and offline: a misspelt field in a custom resource or a built-in kind, or a kind
    without a vendored schema, fails rather than passes or downloads something."""
    chart = dict(every_render())["defaults"]
    topic = dict(chart.of("KafkaTopic")[0])
    topic["spec"] = {**topic["spec"], "partition": 3}
    deployment = json.loads(json.dumps(chart.of("Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    scaled = json.loads(json.dumps(chart.of("ScaledObject")[0]))
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 10  # KEDA wants strings
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all([topic, deployment, scaled, pod]))
    code, output, (found, valid, invalid, errors, _) = validate(path)
    assert code != 0
    assert (found, valid, invalid, errors) == (4, 0, 3, 1), output


def test_each_rendered_kind_has_exactly_one_vendored_schema_and_none_is_unused() -> None:
    used = {schema_file(o) for _, render in every_render() for o in render.objects}
    vendored = {*(SCHEMAS / "kubernetes").rglob("*.json"), *(SCHEMAS / "crds").rglob("*.json")}
    assert used == vendored


def test_vendored_schemas_are_the_files_their_manifest_records() -> None:
    manifest = json.loads(MANIFEST.read_text())
    files = {p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.json") if p != MANIFEST}
    assert set(manifest) == files
    for name, entry in manifest.items():
        digest = hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], f"{name} changed: regenerate with deploy/kubernetes/schemas/refresh"
    notice = (SCHEMAS / "NOTICE.md").read_text()
    for origin in {entry["origin"].split(" (")[0] for entry in manifest.values()}:
        assert origin.split()[-1] in notice, f"NOTICE.md does not name {origin}"
    assert "Apache License" in (SCHEMAS / "LICENSE-Apache-2.0.txt").read_text()


def test_vendored_schemas_refer_to_nothing_outside_themselves() -> None:
    for path in SCHEMAS.rglob("*.json"):
        refs = re.findall(r'"\$ref": "([^"]*)"', path.read_text())
        assert all(ref.startswith("#/") for ref in refs), path
