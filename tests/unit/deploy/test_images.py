"""The Dockerfile, .dockerignore and the Kafka scripts, read as text (no Docker engine here)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from deploy_files import ROOT, load

DOCKERFILE = (ROOT / "Dockerfile").read_text()
KAFKA_SCRIPTS = sorted((ROOT / "deploy" / "compose" / "kafka").glob("*.sh"))


def stages() -> list[str]:
    return re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:]


def test_multi_stage_from_a_pinned_slim_python_311() -> None:
    assert len(stages()) >= 2
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, flags=re.MULTILINE)
    assert base, "the Python base image is one ARG shared by both stages"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base[1]), base[1]
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages())


def test_uv_is_the_makefiles_version_and_installs_the_lock_without_extras() -> None:
    makefile_uv = re.search(r"^UV_VERSION := (\S+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert makefile_uv
    assert f"ARG UV_VERSION={makefile_uv[1]}" in DOCKERFILE
    syncs = re.findall(r"uv sync ([^\n]*)", DOCKERFILE)
    assert syncs
    for flags in syncs:
        assert "--frozen" in flags
        assert "--no-dev" in flags
        assert "--extra" not in flags
        assert "--all-extras" not in flags


def test_builder_copies_what_the_wheel_needs() -> None:
    builder = stages()[0]
    for path in ("pyproject.toml", "uv.lock", "README.md", "shared/", "services/", "deploy/provision/"):
        assert re.search(rf"^COPY .*\b{re.escape(path)}", builder, flags=re.MULTILINE), path


def test_runtime_stage_runs_as_the_non_root_user_compose_names() -> None:
    runtime = stages()[-1]
    user = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert user == ["10001:10001"]
    assert "pip install" not in runtime, "the runtime stage gets the built virtualenv, nothing else"
    compose = load(ROOT / "docker-compose.yml")
    assert compose["x-lindungi-image"]["user"] == user[0]


def test_build_context_holds_no_local_state_or_secrets() -> None:
    rules = [r for r in (ROOT / ".dockerignore").read_text().splitlines() if r and not r.startswith("#")]
    assert rules[0] == "*", "allow-list: only what the image needs enters the context"
    allowed = {r[1:] for r in rules if r.startswith("!")}
    assert allowed == {"pyproject.toml", "uv.lock", "README.md", "shared/", "services/", "deploy/provision/"}
    assert "**/.env" in rules


@pytest.mark.parametrize("script", KAFKA_SCRIPTS, ids=lambda p: p.name)
def test_kafka_scripts_parse(script: object) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)  # noqa: S607 - our own script


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
@pytest.mark.parametrize("script", KAFKA_SCRIPTS, ids=lambda p: p.name)
def test_kafka_scripts_pass_shellcheck(script: object) -> None:
    result = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, check=False)  # noqa: S607
    assert result.returncode == 0, result.stdout
