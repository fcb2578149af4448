"""Shared fixtures: real infrastructure for every test that claims integration.

The Kafka broker and the MongoDB-protocol server are resolved once per session, in this order:
1. servers named by the environment (`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URL`);
2. where a Docker engine answers, testcontainers with the real images (`apache/kafka`, `mongo`);
3. otherwise the native stack (`deploy/local/stack`: Kafka from Maven Central jars, FerretDB on SQLite),
   started for the session and stopped after it unless it was already running.
Tests share one broker and one server, so every test names its topics, groups and databases uniquely: with
the `unique` fixture, whose mark they carry. Everything that carries it is deleted when the test ends, so that
`make run` on the same servers afterwards shows only the product's topics (tests/support.py `Traces`).
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pymongo import AsyncMongoClient

from tests.support import Traces

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "deploy" / "local" / "stack"
KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"

# Test-only secrets: generated per session, never a default in the services' settings.
os.environ.setdefault("LINDUNGI_NIK_HASH_SECRET", base64.b64encode(os.urandom(32)).decode())
os.environ.setdefault("LINDUNGI_SEAL_KEY", base64.b64encode(os.urandom(32)).decode())


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap_servers: str
    mongodb_url: str
    provider: str


def _docker_engine_answers() -> bool:
    # The docker CLI exists on machines without an engine: ping the engine, never trust `which docker`.
    try:
        import docker  # noqa: PLC0415 - only where Docker may be used

        return bool(docker.from_env(timeout=3).ping())
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _containers() -> Iterator[Infrastructure]:
    from testcontainers.core.container import DockerContainer  # noqa: PLC0415
    from testcontainers.core.waiting_utils import wait_for_logs  # noqa: PLC0415
    from testcontainers.mongodb import MongoDbContainer  # noqa: PLC0415

    port = _free_port()
    # KafkaContainer expects Confluent images; apache/kafka runs a single KRaft node configured by env.
    kafka = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    mongo = MongoDbContainer(MONGO_IMAGE)
    with kafka, mongo:
        wait_for_logs(kafka, "Kafka Server started", timeout=120)
        yield Infrastructure(f"127.0.0.1:{port}", mongo.get_connection_url(), "testcontainers")


def _native() -> Iterator[Infrastructure]:
    running = subprocess.run([STACK, "status"], capture_output=True, text=True, check=False)
    already = "kafka running" in running.stderr and "ferretdb running" in running.stderr
    result = subprocess.run([STACK, "start"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.exit(f"the native stack did not start:\n{result.stderr}", returncode=3)
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    try:
        yield Infrastructure(values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URL"], "native")
    finally:
        if not already and not os.environ.get("LINDUNGI_KEEP_STACK"):
            subprocess.run([STACK, "stop"], check=False, capture_output=True)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Infrastructure]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongo:
        yield Infrastructure(kafka, mongo, "environment")
    elif _docker_engine_answers():
        yield from _containers()
    else:
        yield from _native()


@pytest.fixture(scope="session")
def kafka_bootstrap(infrastructure: Infrastructure) -> str:
    return infrastructure.kafka_bootstrap_servers


@pytest.fixture(scope="session")
def mongodb_url(infrastructure: Infrastructure) -> str:
    return infrastructure.mongodb_url


@pytest.fixture(scope="session")
def service_env(kafka_bootstrap: str, mongodb_url: str) -> dict[str, str]:
    """Environment for services started by tests, in-process or as separate processes."""
    env = {
        "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LINDUNGI_MONGODB_URL": mongodb_url,
    }
    os.environ.update(env)
    return {**os.environ, **env}


@pytest.fixture(scope="session")
async def traces(infrastructure: Infrastructure) -> AsyncIterator[Traces]:
    """The session's marks; first, what killed sessions left on the same servers is erased."""
    traces = await Traces.begin(
        infrastructure.kafka_bootstrap_servers,
        infrastructure.mongodb_url,
        journaled=infrastructure.provider != "testcontainers",
    )
    yield traces
    left = await traces.end()
    if left:
        warnings.warn(f"left on the servers (the next session erases them): {', '.join(left)}", stacklevel=1)


@pytest.fixture
async def unique(traces: Traces) -> AsyncIterator[str]:
    """A short id that keeps this test's topics, groups and databases apart from every other test's; every
    topic, consumer group and database whose name carries it is deleted when the test ends."""
    mark = traces.mark()
    yield mark
    await traces.erase(mark)


@pytest.fixture
async def mongo(mongodb_url: str) -> AsyncIterator[AsyncMongoClient[dict[str, object]]]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongodb_url, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()
