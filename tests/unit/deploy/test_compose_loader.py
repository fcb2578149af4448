"""The compose files through compose-go, the loader docker compose itself uses (no engine needed).

deploy/compose/config-check is a small Go program over compose-go: it interpolates from an env file,
merges the files, validates them against the schema and compose's semantic rules, and prints the model
`docker compose config` would. Built once per machine into the project's cache (like the native stack's
FerretDB); skipped where Go is not installed. The other tests in this folder do not need it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import ROOT, SAMPLE_SECRETS, drop_extensions, load, merge

SOURCE = ROOT / "deploy" / "compose" / "config-check"
SERVICES = ("registration", "reporting", "notification")

pytestmark = pytest.mark.skipif(shutil.which("go") is None, reason="Go is not installed")


@pytest.fixture(scope="module")
def config_check() -> Path:
    digest = hashlib.sha256(b"".join((SOURCE / f).read_bytes() for f in ("go.mod", "go.sum", "main.go")))
    cache = Path(os.environ.get("LINDUNGI_CACHE") or Path.home() / ".cache" / "lindungi")
    binary = cache / f"config-check-{digest.hexdigest()[:12]}" / "config-check"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["go", "build", "-trimpath", "-o", str(binary), "."],  # noqa: S607 - go from PATH, as the stack does
            cwd=SOURCE,
            check=True,
            capture_output=True,
            timeout=600,
        )
    return binary


def run(
    binary: Path, env: dict[str, str], *files: str, profile: str | None = None, tmp: Path
) -> subprocess.CompletedProcess[str]:
    env_file = tmp / "test.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    args = [str(binary), "-C", str(ROOT), "-env-file", str(env_file)]
    if profile:
        args += ["-profile", profile]
    return subprocess.run([*args, *files], capture_output=True, text=True, check=False, timeout=60)


def resolved(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    model = yaml.safe_load(result.stdout)
    assert isinstance(model, dict)
    return model


def test_development_profile_loads(config_check: Path, tmp_path: Path) -> None:
    model = resolved(run(config_check, SAMPLE_SECRETS, "docker-compose.yml", tmp=tmp_path))
    assert set(model["services"]) == {"kafka", "mongo", "provision", "mailpit", *SERVICES}
    assert (
        model["services"]["registration"]["environment"]["LINDUNGI_NIK_HASH_SECRET"]
        == SAMPLE_SECRETS["LINDUNGI_NIK_HASH_SECRET"]
    )


def test_production_profile_loads_with_the_kafka_ui(config_check: Path, tmp_path: Path) -> None:
    result = run(
        config_check,
        SAMPLE_SECRETS,
        "docker-compose.yml",
        "docker-compose.prod.yml",
        profile="kafka-ui",
        tmp=tmp_path,
    )
    services = resolved(result)["services"]
    assert "kafka-credentials" in services
    assert "kafka-ui" in services
    assert services["kafka"]["environment"]["KAFKA_PROFILE"] == "prod"
    assert services["provision"]["command"][-2:] == ["--acls", "/etc/lindungi/acls.toml"]


def test_our_merge_matches_compose_go(config_check: Path, tmp_path: Path) -> None:
    # The other tests check the Python merge of the two files; here it is held against the real one.
    from deploy_files import interpolate  # noqa: PLC0415

    ours = interpolate(
        merge(
            drop_extensions(load(ROOT / "docker-compose.yml")),
            drop_extensions(load(ROOT / "docker-compose.prod.yml")),
        ),
        SAMPLE_SECRETS,
    )
    theirs = resolved(
        run(
            config_check,
            SAMPLE_SECRETS,
            "docker-compose.yml",
            "docker-compose.prod.yml",
            profile="kafka-ui",
            tmp=tmp_path,
        )
    )
    for name, service in theirs["services"].items():
        mine = ours["services"][name]
        assert {k: str(v) for k, v in mine.get("environment", {}).items()} == service.get("environment", {}), name
        assert mine.get("command") == service.get("command"), name
        assert set(mine.get("depends_on", {})) == set(service.get("depends_on", {})), name


@pytest.mark.parametrize(
    ("files", "missing"),
    [
        (("docker-compose.yml",), "LINDUNGI_SEAL_KEY"),
        (("docker-compose.yml", "docker-compose.prod.yml"), "KAFKA_PASSWORD_PARTNER_DINSOS_JABAR"),
        (("docker-compose.yml", "docker-compose.prod.yml"), "KAFKA_EXTERNAL_HOST"),
    ],
)
def test_compose_refuses_a_missing_secret_by_name(
    config_check: Path, tmp_path: Path, files: tuple[str, ...], missing: str
) -> None:
    env = {k: v for k, v in SAMPLE_SECRETS.items() if k != missing}
    result = run(config_check, env, *files, tmp=tmp_path)
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value" in result.stderr


def test_env_example_as_shipped_is_refused(config_check: Path) -> None:
    result = subprocess.run(
        [str(config_check), "-C", str(ROOT), "-q", "-env-file", ".env.example", "docker-compose.yml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "LINDUNGI_NIK_HASH_SECRET" in result.stderr
