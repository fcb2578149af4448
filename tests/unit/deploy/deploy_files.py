"""The deployment files as data: the compose files raw, merged and interpolated as compose would.

No Docker engine is needed or used: the files are read, interpolated in Python following the Compose
Specification's rules, and checked. test_compose_loader.py adds compose-go's own loader where Go exists.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
BASE = ROOT / "docker-compose.yml"
PROD = ROOT / "docker-compose.prod.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}, ${NAME+alt}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|(^|_)KEY($|_)")

# Values that make every required variable of both profiles present, as an operator's .env would.
SAMPLE_SECRETS = {
    "LINDUNGI_NIK_HASH_SECRET": "sample-nik-hash-secret-for-tests-only",
    "LINDUNGI_SEAL_KEY": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "KAFKA_EXTERNAL_HOST": "kafka.lindungi.example",
    "KAFKA_PASSWORD_ADMIN": "sample_admin_password_0001",
    "KAFKA_PASSWORD_REGISTRATION": "sample_registration_pw_01",
    "KAFKA_PASSWORD_REPORTING": "sample_reporting_pw_00001",
    "KAFKA_PASSWORD_NOTIFICATION": "sample_notification_pw_01",
    "KAFKA_PASSWORD_OPERATOR": "sample_operator_pw_000001",
    "KAFKA_PASSWORD_PARTNER_PEMKOT_BOGOR": "sample_partner_pw_0000001",
    "KAFKA_PASSWORD_PARTNER_DINSOS_JABAR": "sample_partner_pw_0000002",
    "NOTIFICATION_ADMIN_TOKEN": "sample-notification-admin-token",
}


class MissingVariableError(ValueError):
    pass


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a YAML tree (keys included), with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(node, str):
        found.append((path, node))
    elif isinstance(node, dict):
        for key, value in node.items():
            found.extend(strings(str(key), f"{path}.{key}(key)"))
            found.extend(strings(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(strings(value, f"{path}[{i}]"))
    return found


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's variable substitution (no nesting, which these files do not use). `$$` is a literal `$`."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = env.get(name)
        unset_or_empty = not value
        if (op == ":?" and unset_or_empty) or (op == "?" and value is None):
            raise MissingVariableError(f"{name}: {arg}")
        if (op == ":-" and unset_or_empty) or (op == "-" and value is None):
            return arg
        if op == ":+":
            return "" if unset_or_empty else arg
        if op == "+":
            return "" if value is None else arg
        return value or ""

    return INTERPOLATION.sub(substitute, node.replace("$$", "\0")).replace("\0", "$")


def merge(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge of an override file, for what these files use: mappings merge, `ports` and
    `volumes` add up (volumes keyed by target), every other sequence (`command`, `test`) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = merge(base[k], v, k) if k in base else v
        return merged
    if isinstance(base, list) and isinstance(override, list) and key in {"ports", "volumes"}:
        if key == "volumes":
            targets = {str(v).split(":")[1] for v in override}
            return [v for v in base if str(v).split(":")[1] not in targets] + override
        return base + [p for p in override if p not in base]
    return override


def drop_extensions(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith("x-")}
