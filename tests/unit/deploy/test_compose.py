"""docker-compose.yml and docker-compose.prod.yml: valid Compose, and the operator's rules hold.

The rules: every long-running container has a health check and every dependency waits on a condition;
images are pinned; nothing runs as root; every container has resource limits; secrets have no default
(`${VAR:?message}`, so compose refuses to start without them); every variable is documented in
.env.example; every service command is one that also works natively.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from deploy_files import (
    BASE,
    ENV_EXAMPLE,
    INTERPOLATION,
    PROD,
    ROOT,
    SAMPLE_SECRETS,
    SECRET_NAME,
    MissingVariableError,
    drop_extensions,
    interpolate,
    load,
    strings,
)

SCHEMA = ROOT / "deploy" / "compose" / "compose-spec.json"
NOTICE = ROOT / "deploy" / "compose" / "compose-spec.NOTICE"
SERVICE_PORTS = {"registration": 8001, "reporting": 8002, "notification": 8003}
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


def jobs(model: dict[str, Any]) -> set[str]:
    """One-shot containers: what others wait for with `service_completed_successfully`."""
    return {
        name
        for service in model["services"].values()
        for name, dep in (service.get("depends_on") or {}).items()
        if isinstance(dep, dict) and dep.get("condition") == "service_completed_successfully"
    }


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA.read_text())
    checker = jsonschema.FormatChecker()
    # compose-go registers `duration` as Go's time.ParseDuration; this is its grammar.
    checker.checks("duration")(lambda value: not isinstance(value, str) or bool(DURATION.match(value)))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=checker)


# --- The schema is the vendored, unchanged Compose Specification ----------------------------------------


def test_vendored_schema_is_the_one_the_notice_names() -> None:
    digest = hashlib.sha256(SCHEMA.read_bytes()).hexdigest()
    assert digest in NOTICE.read_text(), "compose-spec.json changed: update compose-spec.NOTICE with its origin"
    assert json.loads(SCHEMA.read_text())["title"] == "Compose Specification"


@pytest.mark.parametrize("path", [BASE, PROD], ids=["docker-compose.yml", "docker-compose.prod.yml"])
def test_each_file_is_valid_compose_as_written(path: Path) -> None:
    errors = sorted(validator().iter_errors(load(path)), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_each_profile_is_valid_compose_once_interpolated(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    errors = list(validator().iter_errors(model))
    assert not errors, f"{name}: " + "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_the_validation_catches_a_mistake(base: dict[str, Any]) -> None:
    broken = drop_extensions(base)
    broken["services"] = {**broken["services"], "kafka": {**broken["services"]["kafka"], "helthcheck": {}}}
    assert not validator().is_valid(broken)


# --- Health, dependencies, images, users, limits ---------------------------------------------------------


def test_every_long_running_container_has_a_health_check(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    one_shot = jobs(model)
    for service_name, service in model["services"].items():
        if service_name in one_shot:
            assert service.get("restart") == "no", f"{name}: job {service_name} must not restart"
            continue
        check = service.get("healthcheck")
        assert check, f"{name}: {service_name} has no healthcheck"
        assert not check.get("disable"), f"{name}: {service_name} disables its healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name}: {service_name}: {check['test']}"


def test_every_dependency_waits_on_a_condition(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    services = model["services"]
    one_shot = jobs(model)
    for service_name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: {service_name} lists depends_on without conditions"
        for dependency, spec in depends_on.items():
            assert dependency in services, f"{name}: {service_name} depends on unknown {dependency}"
            expected = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert spec["condition"] == expected, f"{name}: {service_name} -> {dependency}"


def test_services_wait_for_kafka_mongodb_and_the_topics(profile: tuple[str, dict[str, Any]]) -> None:
    _, model = profile
    for service_name in SERVICE_PORTS:
        assert set(model["services"][service_name]["depends_on"]) >= {"kafka", "mongo", "provision"}


def test_images_are_pinned(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    for service_name, service in model["services"].items():
        image = service["image"]
        tag = image.rsplit("/", 1)[-1].partition("@")[0].partition(":")[2]
        assert tag, f"{name}: {service_name} image {image} has no tag"
        assert tag != "latest", f"{name}: {service_name} image {image} floats"
        if "build" not in service:
            # A third-party image: a release tag with its patch version (or a digest), never a moving one.
            assert "@sha256:" in image or re.search(r"\d+\.\d+\.\d+", tag), f"{service_name}: {image}"


def test_one_image_built_from_the_dockerfile_serves_every_python_container(base: dict[str, Any]) -> None:
    built = {n: s for n, s in base["services"].items() if "build" in s}
    assert set(built) == {"provision", *SERVICE_PORTS}
    assert len({s["image"] for s in built.values()}) == 1


def test_nothing_runs_as_root(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    for service_name, service in model["services"].items():
        user = str(service.get("user", "")).split(":")[0]
        assert user, f"{name}: {service_name} sets no user (the image's default may be root)"
        assert user not in {"root", "0"}, f"{name}: {service_name} runs as root"
        assert not service.get("privileged"), f"{name}: {service_name} is privileged"


def test_every_container_has_resource_limits(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    for service_name, service in model["services"].items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert limits.get("memory"), f"{name}: {service_name} has no memory limit"
        assert limits.get("cpus"), f"{name}: {service_name} has no CPU limit"


def test_python_containers_are_locked_down(profile: tuple[str, dict[str, Any]]) -> None:
    _, model = profile
    for service_name in ("provision", *SERVICE_PORTS):
        service = model["services"][service_name]
        assert service["user"] == "10001:10001", "the Dockerfile's user"
        assert service["read_only"] is True
        assert "ALL" in service["cap_drop"]
        assert "no-new-privileges:true" in service["security_opt"]


def test_health_checks_and_ports_match_the_services(profile: tuple[str, dict[str, Any]]) -> None:
    name, model = profile
    for service_name, port in SERVICE_PORTS.items():
        service = model["services"][service_name]
        assert f"http://127.0.0.1:{port}/health" in " ".join(service["healthcheck"]["test"])
        assert [p for p in service["ports"] if p.endswith(f":{port}")], f"{name}: {service_name} port {port}"
        prefix = service_name.upper()
        assert service["environment"][f"{prefix}_HTTP_HOST"] == "0.0.0.0", "listen beyond the container"  # noqa: S104


def test_published_ports_default_to_loopback(base: dict[str, Any]) -> None:
    # Exposing a port to the network is a decision the operator makes in .env, not a default.
    for service_name, service in base["services"].items():
        for port in service.get("ports", []):
            host_ip = interpolate(port, {}).split(":")[0]
            assert host_ip == "127.0.0.1", f"{service_name} publishes {port} beyond loopback by default"


def test_notification_sends_to_the_mail_sink_by_default(base: dict[str, Any]) -> None:
    env = interpolate(
        base["services"]["notification"]["environment"],
        {"LINDUNGI_NIK_HASH_SECRET": "x", "LINDUNGI_SEAL_KEY": "y"},
    )
    assert (env["NOTIFICATION_SMTP_HOST"], env["NOTIFICATION_SMTP_PORT"]) == ("mailpit", "1025")
    assert "mailpit" in base["services"]


def test_bind_mounts_exist_in_the_repository(profile: tuple[str, dict[str, Any]]) -> None:
    _, model = profile
    for service_name, service in model["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{service_name} mounts missing {source}"


def test_kafka_ui_is_optional(base: dict[str, Any]) -> None:
    assert base["services"]["kafka-ui"]["profiles"] == ["kafka-ui"]
    assert all("profiles" not in s for n, s in base["services"].items() if n != "kafka-ui")


# --- Secrets and the .env file ---------------------------------------------------------------------------


def interpolations(path: Path) -> list[tuple[str, re.Match[str]]]:
    return [(where, m) for where, text in strings(load(path)) for m in INTERPOLATION.finditer(text)]


@pytest.mark.parametrize("path", [BASE, PROD], ids=["docker-compose.yml", "docker-compose.prod.yml"])
def test_secrets_have_no_default_and_are_required(path: Path) -> None:
    for where, match in interpolations(path):
        if SECRET_NAME.search(match["name"]):
            assert match["op"] == ":?", f"{where}: secret {match['name']} must be ${{{match['name']}:?message}}"
            assert match["arg"].strip(), f"{where}: tell the operator what {match['name']} is"


@pytest.mark.parametrize("path", [BASE, PROD], ids=["docker-compose.yml", "docker-compose.prod.yml"])
def test_secret_settings_are_never_written_in_the_file(path: Path) -> None:
    for service_name, service in load(path)["services"].items():
        env = service.get("environment") or {}
        assert isinstance(env, dict), f"{service_name}: environment as a mapping, so it can be checked"
        for key, value in env.items():
            if key != "<<" and SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", str(value)), f"{service_name}.{key} = {value}"


def test_compose_refuses_to_start_without_the_secrets(base: dict[str, Any], merged: dict[str, Any]) -> None:
    for model, required in (
        (drop_extensions(base), {"LINDUNGI_NIK_HASH_SECRET", "LINDUNGI_SEAL_KEY"}),
        (merged, {"KAFKA_PASSWORD_ADMIN", "KAFKA_PASSWORD_REGISTRATION", "KAFKA_EXTERNAL_HOST"}),
    ):
        for name in required:
            env = {k: v for k, v in SAMPLE_SECRETS.items() if k != name}
            with pytest.raises(MissingVariableError, match=name):
                interpolate(model, env)
            with pytest.raises(MissingVariableError, match=name):
                interpolate(model, {**env, name: ""})  # an empty value counts as missing, like compose


def test_every_variable_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.MULTILINE))
    used = {m["name"] for path in (BASE, PROD) for _, m in interpolations(path)}
    assert used <= documented, f"undocumented in .env.example: {sorted(used - documented)}"


def test_env_example_holds_no_secret_value() -> None:
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, sep, value = line.lstrip("# ").partition("=")
        if sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key) and SECRET_NAME.search(key):
            assert value.strip() == "", f".env.example gives {key} a value"


# --- Every command also works natively --------------------------------------------------------------------


def commands(model: dict[str, Any]) -> dict[str, list[str]]:
    return {name: s["command"] for name, s in model["services"].items() if s.get("command")}


def test_every_python_command_names_a_runnable_module(profile: tuple[str, dict[str, Any]]) -> None:
    _, model = profile
    modules = {cmd[2] for cmd in commands(model).values() if cmd[:2] == ["python", "-m"]}
    assert modules == {
        "provision",
        "services.registration",
        "services.reporting",
        "services.notification",
    }
    missing = []
    for module in sorted(modules):
        # Found where the installed project puts it (`provision` is deploy/provision, a top-level package).
        spec = importlib.util.find_spec(module)
        if spec is None:
            missing.append(module)
            continue
        if spec.submodule_search_locations is not None:
            scripts = [Path(location) / "__main__.py" for location in spec.submodule_search_locations]
        else:
            scripts = [Path(spec.origin)] if spec.origin else []
        if not any(script.is_file() and script.is_relative_to(ROOT) for script in scripts):
            missing.append(module)
    assert not missing, f"`python -m` would fail for: {missing}"


def test_other_commands_run_scripts_of_this_repository(profile: tuple[str, dict[str, Any]]) -> None:
    _, model = profile
    for name, cmd in commands(model).items():
        if cmd[0] == "bash":
            mount = next(v for v in model["services"][name]["volumes"] if v.endswith(":/opt/lindungi/kafka:ro"))
            script = ROOT / mount.split(":")[0] / Path(cmd[1]).relative_to("/opt/lindungi/kafka")
            assert script.is_file(), f"{name} runs {cmd[1]}, which is not in {mount}"


def test_stop_grace_outlasts_the_drain(base: dict[str, Any]) -> None:
    # shared.runtime.serve drains for up to 30 s; compose must not kill the service before that.
    for service_name in SERVICE_PORTS:
        grace = base["services"][service_name]["stop_grace_period"]
        assert timedelta(seconds=int(grace.rstrip("s"))) > timedelta(seconds=30)
