"""Test support shared by integration and end-to-end tests: services as real processes, topic helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from shared.events import CloudEvent
from shared.messaging import encode

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    """A service run as production runs it: `python -m services.<name>`, its log lines captured to a file."""

    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        prefix = self.name.upper()
        env = {
            **self.env,
            f"{prefix}_HTTP_PORT": str(self.port),
            "LINDUNGI_LOG_FORMAT": "json",
            "PYTHONUNBUFFERED": "1",
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/ready", timeout=2)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no final commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


async def publish(bootstrap: str, topic: str, items: Iterable[tuple[bytes | None, bytes, dict[str, str]]]) -> int:
    """Publish raw (key, value, headers) records; keyed, so per-key order holds."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    count = 0
    try:
        futures = []
        for key, value, headers in items:
            futures.append(
                await producer.send(topic, value, key=key, headers=[(k, v.encode()) for k, v in headers.items()])
            )
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


async def publish_events(bootstrap: str, topic: str, events: Iterable[tuple[str, CloudEvent[Any]]]) -> int:
    def records() -> Iterable[tuple[bytes | None, bytes, dict[str, str]]]:
        for key, event in events:
            value, headers = encode(event)
            yield key.encode(), value, headers

    return await publish(bootstrap, topic, records())


async def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 60,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read a topic from the beginning (no group) until `done(records)` or the deadline."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while not done(records):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: {len(records)} records when the deadline passed")
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def registration_env(service_env: dict[str, str], unique: str, partners_seed: Path) -> dict[str, str]:
    """Registration on topics, a consumer group and a database of its own (`unique` per test), seeded with
    the partners in `partners_seed`."""
    return {
        **service_env,
        "REGISTRATION_REQUESTS_TOPIC": f"requests.{unique}",
        "REGISTRATION_OUTCOMES_TOPIC": f"outcomes.{unique}",
        "REGISTRATION_DEAD_LETTERS_TOPIC": f"deadletters.{unique}",
        "REGISTRATION_GROUP_ID": f"registration-{unique}",
        "REGISTRATION_MONGODB_DATABASE": f"registration_{unique}",
        "REGISTRATION_PARTNERS_SEED_FILE": str(partners_seed),
    }


def python_env(base: dict[str, str]) -> dict[str, str]:
    return {**base, "PYTHONPATH": os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])}
