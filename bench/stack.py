"""The servers a benchmark runs against, the environment the services get, and what the machine is.

Kafka and the MongoDB-protocol server come from `KAFKA_BOOTSTRAP_SERVERS` / `MONGODB_URL` when both are set
(the smoke test passes the test session's), otherwise from the native stack (`deploy/local/stack start`),
which is stopped again afterwards if this run started it, as the test fixtures do.
"""

from __future__ import annotations

import base64
import os
import platform
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "deploy" / "local" / "stack"


@dataclass(frozen=True)
class Infrastructure:
    kafka: str
    mongodb: str
    provider: str  # "environment" or "native stack"
    started_here: bool = False


def acquire() -> Infrastructure:
    kafka, mongodb = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongodb:
        return Infrastructure(kafka, mongodb, "environment")
    status = subprocess.run([STACK, "status"], capture_output=True, text=True, check=False)  # noqa: S603
    already = "kafka running" in status.stderr and "ferretdb running" in status.stderr
    started = subprocess.run([STACK, "start"], capture_output=True, text=True, check=False)  # noqa: S603
    if started.returncode != 0:
        raise SystemExit(f"the native stack did not start:\n{started.stderr}")
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    return Infrastructure(
        values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URL"], "native stack", started_here=not already
    )


def release(infrastructure: Infrastructure) -> None:
    if infrastructure.started_here and not os.environ.get("LINDUNGI_KEEP_STACK"):
        subprocess.run([STACK, "stop"], capture_output=True, check=False)  # noqa: S603


def service_environment(infrastructure: Infrastructure) -> dict[str, str]:
    """What every service process of a run gets: the servers, and secrets made up for this run.

    The secrets come from the environment when set (an operator benchmarking a configured machine), else they
    are generated: a benchmark never needs the production keys.
    """
    env = dict(os.environ)
    env.setdefault("LINDUNGI_NIK_HASH_SECRET", base64.b64encode(os.urandom(32)).decode())
    env.setdefault("LINDUNGI_SEAL_KEY", base64.b64encode(os.urandom(32)).decode())
    env.update(
        {
            "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka,
            "LINDUNGI_MONGODB_URL": infrastructure.mongodb,
            "LINDUNGI_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
        }
    )
    return env


# --- what the numbers were measured on -----------------------------------------------------------------------


def _first_line(path: str, pattern: str) -> str | None:
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    found = re.search(pattern, text, re.MULTILINE)
    return found.group(1).strip() if found else None


def machine() -> dict[str, str]:
    cpu = _first_line("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or platform.processor() or "unknown"
    memory = _first_line("/proc/meminfo", r"^MemTotal:\s*(\d+) kB")
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": f"{int(memory) / 1024 / 1024:.1f} GiB" if memory else "unknown",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    found = {
        name: _package(name)
        for name in ("faststream", "aiokafka", "pymongo", "pydantic", "quixstreams", "confluent-kafka")
    }
    kafka = _first_line(str(ROOT / "deploy/local/kafka/pom.xml"), r"<kafka.version>(.+)</kafka.version>")
    found["Apache Kafka (native stack)"] = kafka or "unknown"
    return found


def git_revision() -> str:
    try:
        head = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603 - fixed arguments
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}{' with uncommitted changes' if dirty else ''}"


def command_line() -> str:
    # Quoted as a shell would need it, so that the line can be pasted (`--profile ""` keeps its empty argument).
    return shlex.join(["python", "-m", "bench", *sys.argv[1:]])
