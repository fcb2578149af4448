"""Test support shared by integration and end-to-end tests: services as real processes, topic helpers, and the
erasure of what tests leave on the shared servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.protocol.admin import DeleteGroupsRequest
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from services.notification.settings import NotificationSettings
from services.registration.settings import RegistrationSettings
from services.reporting.settings import ReportingSettings
from shared.events import CloudEvent
from shared.messaging import encode
from shared.topics import CATALOGUE

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
        "REGISTRATION_BUDGET_TOPIC": f"budget.{unique}",
        "REGISTRATION_DEAD_LETTERS_TOPIC": f"deadletters.{unique}",
        "REGISTRATION_GROUP_ID": f"registration-{unique}",
        "REGISTRATION_PARTNER_TOPIC_PREFIX": f"partner-{unique}.",  # the partners' own topics, this test's too
        "REGISTRATION_MONGODB_DATABASE": f"registration_{unique}",
        "REGISTRATION_PARTNERS_SEED_FILE": str(partners_seed),
    }


def python_env(base: dict[str, str]) -> dict[str, str]:
    return {**base, "PYTHONPATH": os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])}


# --- what tests leave on the shared servers ------------------------------------------------------------------
# Tests share the broker and the server that `make run` uses afterwards (the native stack keeps its data in
# .local/), so every name a test creates carries its mark (the `unique` fixture) and whatever carries the mark
# is erased when the test ends. Erasing by mark rather than by a list of names also catches what the services
# create on their own: auto-created dead-letter and partner topics, notification's second consumer group.
# A private stack per session (its own data directory and ports) would survive a killed session without help,
# but costs a second Kafka JVM beside a running `make up`/`make run`; the journal below covers the killed
# session instead: marks are written down before anything carries them, and the next session erases them.

MARK = re.compile(r"[0-9a-f]{8,}")  # random hex: no product name carries one by accident
JOURNALS = ROOT / ".local" / "test-traces"
_SERVICES = (RegistrationSettings, ReportingSettings, NotificationSettings)
# Never erased whatever a mark says: the catalogue's topics, the services' own databases and groups.
PRODUCT = frozenset(
    {topic.name for topic in CATALOGUE}
    | {str(service.model_fields["mongodb_database"].default) for service in _SERVICES}
    | {str(service.model_fields["group_id"].default) for service in _SERVICES}
    | {f"{NotificationSettings.model_fields['group_id'].default}-aggregates", "admin", "config", "local"}
)


def carrying(names: Iterable[str], marks: Collection[str]) -> list[str]:
    """The names that carry one of `marks`; never a product name or an internal topic (`__consumer_offsets`)."""
    for mark in marks:
        if not MARK.fullmatch(mark):
            raise ValueError(f"{mark!r} is not a mark: erasing by it could reach names that are not a test's")
    return sorted(
        name
        for name in names
        if name not in PRODUCT and not name.startswith("__") and any(mark in name for mark in marks)
    )


async def _delete_groups(admin: AIOKafkaAdminClient, groups: list[str]) -> None:
    """aiokafka's admin client lists consumer groups but has no call to delete them: the protocol's
    DeleteGroups request, which aiokafka ships, goes to each group's coordinator. A group that still has
    members stays (the broker answers NON_EMPTY_GROUP) until they leave or time out."""
    by_coordinator: dict[int, list[str]] = {}
    for group in groups:
        by_coordinator.setdefault(await admin.find_coordinator(group), []).append(group)
    for node, names in by_coordinator.items():
        await admin._client.send(node, DeleteGroupsRequest(names))  # private: see the docstring


async def erase(bootstrap: str, mongodb_url: str, marks: Collection[str], patience: float = 5) -> list[str]:
    """Delete every topic, consumer group and database whose name carries one of `marks`; returns the names
    still there after `patience` seconds."""
    if not marks:
        return []
    deadline = time.monotonic() + patience
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="lindungi-test-traces")
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    await admin.start()
    try:
        while True:
            groups = carrying([group for group, *_ in await admin.list_consumer_groups()], marks)
            topics = carrying(await admin.list_topics(), marks)
            databases = carrying(await mongo.list_database_names(), marks)
            if not (groups or topics or databases) or time.monotonic() > deadline:
                return [*topics, *groups, *databases]
            # Topic deletion is asynchronous (the metadata still lists a deleted topic for a moment) and a
            # group with a member left cannot be deleted yet: hence the loop, delete again and list again.
            await _delete_groups(admin, groups)
            if topics:
                await admin.delete_topics(topics)
            for database in databases:
                await mongo.drop_database(database)
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
        await mongo.close()


async def holding(bootstrap: str, mongodb_url: str, part: str) -> list[str]:
    """Every topic, consumer group and database whose name holds `part`, as the servers list them: what a
    test looks for after the erasure, without `carrying`'s filters."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    await admin.start()
    try:
        topics = await admin.list_topics()
        groups = [group for group, *_ in await admin.list_consumer_groups()]
        databases = await mongo.list_database_names()
    finally:
        await admin.close()
        await mongo.close()
    return sorted(name for name in [*topics, *groups, *databases] if part in name)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


@dataclass
class Traces:
    """The marks of one test session's tests on one pair of servers, and their erasure.

    Each mark is journaled (`.local/test-traces/<pid>.marks`) before anything carries it; a session that ends
    normally erases its marks and deletes its journal. A journal whose process is gone belongs to a session
    that was killed: the next session on the same servers erases its marks. Never another live session's.
    """

    bootstrap: str
    mongodb_url: str
    journal: Path | None  # None: servers of this session alone (containers), gone with it
    unerased: set[str] = field(default_factory=set)

    @classmethod
    async def begin(cls, bootstrap: str, mongodb_url: str, *, journaled: bool = True) -> Traces:
        if not journaled:
            return cls(bootstrap, mongodb_url, None)
        header = f"# kafka={bootstrap} mongodb={mongodb_url}"
        journal = JOURNALS / f"{os.getpid()}.marks"  # if it exists, a dead process with this pid wrote it
        JOURNALS.mkdir(parents=True, exist_ok=True)
        for stale in sorted(JOURNALS.glob("*.marks")):
            dead = stale == journal or (stale.stem.isdigit() and not _alive(int(stale.stem)))
            try:
                lines = stale.read_text().splitlines()
            except FileNotFoundError:  # another session starting now swept it first
                continue
            marks = [line for line in lines[1:] if MARK.fullmatch(line)]  # a kill may cut the last line short
            if dead and lines[:1] == [header] and not await erase(bootstrap, mongodb_url, marks):
                stale.unlink(missing_ok=True)
        journal.write_text(f"{header}\n")
        return cls(bootstrap, mongodb_url, journal)

    def mark(self) -> str:
        mark = uuid.uuid4().hex[:10]
        if self.journal is not None:
            with self.journal.open("a") as journal:
                journal.write(f"{mark}\n")
        return mark

    async def erase(self, mark: str) -> None:
        # Whatever stays (most likely the group of a consumer killed with -9, until the broker expires its
        # member) or whatever failed is tried again at the end: a clean-up never fails the test itself.
        try:
            left = await erase(self.bootstrap, self.mongodb_url, [mark])
        except (KafkaError, PyMongoError, OSError):
            left = [mark]
        if left:
            self.unerased.add(mark)

    async def end(self) -> list[str]:
        """What is still there after the marks left over are tried once more; the journal stays if anything
        is, so that the next session tries again."""
        try:
            left = await erase(self.bootstrap, self.mongodb_url, self.unerased, patience=30)
        except (KafkaError, PyMongoError, OSError) as error:
            left = [f"marks {', '.join(sorted(self.unerased))} ({type(error).__name__}: {error})"]
        if not left and self.journal is not None:
            self.journal.unlink(missing_ok=True)
        return left
