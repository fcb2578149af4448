"""Real servers for the notification tests: an SMTP server (aiosmtpd), an HTTP receiver for webhooks and the
SMS gateway, and the notification service as a separate process against the real Kafka and MongoDB server.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from shared import events as ev
from shared.privacy import NIK_PATTERN
from tests.support import ServiceProcess, free_port, publish, publish_events

HEX_DIGEST = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32,}(?![0-9A-Za-z])")

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path

    from shared.events import CloudEvent

T = TypeVar("T")

SMS_GATEWAY_SECRET = "sms-gateway-secret-for-tests"  # noqa: S105 - a test receiver's secret
#: Fast retries so a failing endpoint is given up on in about a second.
FAST_RETRIES = {
    "NOTIFICATION_MAX_ATTEMPTS": "3",
    "NOTIFICATION_RETRY_INITIAL": "0.2",
    "NOTIFICATION_RETRY_MAX": "0.5",
    "NOTIFICATION_RETRY_JITTER": "0.1",
    "NOTIFICATION_SEND_TIMEOUT": "5",
    "NOTIFICATION_LEASE": "8",
    "NOTIFICATION_SWEEP_INTERVAL": "1",
}


async def eventually(probe: Callable[[], Awaitable[T] | T], within: float = 30, what: str = "") -> T:
    """Wait for `probe()` to return something truthy; fail with `what` at the deadline (not a fixed sleep)."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.1)


# --- a real SMTP server ----------------------------------------------------------------------------------


class SmtpSink:
    """aiosmtpd on 127.0.0.1: every message the service sends, parsed, in arrival order."""

    def __init__(self) -> None:
        self.port = free_port()
        self._messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        raw = envelope.original_content or envelope.content
        message = BytesParser(policy=policy.default).parsebytes(raw)
        with self._lock:
            self._messages.append(message)  # type: ignore[arg-type]
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return list(self._messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    return part.get_content() if part is not None else ""  # type: ignore[attr-defined, no-any-return]


# --- a real HTTP receiver --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 recording every POST; a path can be told to fail or to hang."""

    requests: list[Received] = field(default_factory=list)
    failing: set[str] = field(default_factory=set)
    held: dict[str, threading.Event] = field(default_factory=dict)
    answered: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with receiver.lock:
                    receiver.requests.append(received)
                gate = receiver.held.get(self.path)
                if gate is not None:
                    gate.wait(60)
                status = 500 if self.path in receiver.failing else 200
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.answered.append(self.path)

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def hold(self, path: str) -> threading.Event:
        gate = threading.Event()
        self.held[path] = gate
        return gate

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        for gate in self.held.values():
            gate.set()
        self.server.shutdown()
        self.server.server_close()


# --- the service under test ------------------------------------------------------------------------------


@dataclass
class Notification:
    """One notification service with its own topics and database, and the servers it talks to."""

    bootstrap: str
    mongodb_url: str
    unique: str
    tmp_path: Path
    base_env: dict[str, str]
    mail: SmtpSink
    web: Receiver
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def outcomes(self) -> str:
        return f"outcomes.{self.unique}"

    @property
    def aggregates(self) -> str:
        return f"aggregates.{self.unique}"

    @property
    def deliveries_topic(self) -> str:
        return f"deliveries.{self.unique}"

    @property
    def dead_letters(self) -> str:
        return f"deadletters.{self.unique}"

    @property
    def database(self) -> str:
        return f"notification_{self.unique}"

    @property
    def service(self) -> ServiceProcess:
        return self.processes[-1]

    async def start(self, **settings: str) -> ServiceProcess:
        env = {
            **self.base_env,
            "NOTIFICATION_OUTCOMES_TOPIC": self.outcomes,
            "NOTIFICATION_AGGREGATES_TOPIC": self.aggregates,
            "NOTIFICATION_BUDGET_TOPIC": f"budget.{self.unique}",
            "NOTIFICATION_DELIVERIES_TOPIC": self.deliveries_topic,
            "NOTIFICATION_DEAD_LETTERS_TOPIC": self.dead_letters,
            "NOTIFICATION_MONGODB_DATABASE": self.database,
            "NOTIFICATION_GROUP_ID": f"notification-{self.unique}",
            "NOTIFICATION_SMTP_PORT": str(self.mail.port),
            "NOTIFICATION_SMS_GATEWAY_URL": self.web.url("/sms"),
            "NOTIFICATION_SMS_GATEWAY_SECRET": SMS_GATEWAY_SECRET,
            "NOTIFICATION_BATCH_MAX_RECORDS": "50",
            **FAST_RETRIES,
            **settings,
        }
        process = ServiceProcess("notification", env, self.tmp_path / f"notification-{len(self.processes)}.log")
        self.processes.append(process)
        process.start()
        await process.wait_ready()
        return process

    async def publish(self, *events: CloudEvent[Any]) -> None:
        await publish_events(self.bootstrap, self.outcomes, [(_key(e), e) for e in events])

    async def publish_aggregates(self, *aggregates: dict[str, Any]) -> None:
        records = [
            (
                a["data"]["region_code"].encode(),
                json.dumps(a).encode(),
                {"content-type": "application/cloudevents+json"},
            )
            for a in aggregates
        ]
        await publish(self.bootstrap, self.aggregates, records)

    async def api(self, method: str, path: str, body: Any = None, **params: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.service.url, timeout=10) as client:
            return await client.request(method, path, json=body, params=params)

    async def deliveries(self) -> list[ev.NotificationDelivered | ev.NotificationFailed]:
        return [
            ev.delivery_adapter.validate_json(value)
            for value in await read_topic(self.bootstrap, self.deliveries_topic)
        ]

    async def ledger(self, **query: Any) -> list[dict[str, Any]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url, tz_aware=True)
        try:
            return [doc async for doc in client[self.database]["deliveries"].find(query)]
        finally:
            await client.close()

    async def metric(self, name: str) -> float:
        async with httpx.AsyncClient(timeout=5) as client:
            text = (await client.get(f"{self.service.url}/metrics")).text
        match = re.search(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    async def assert_no_nik_anywhere(self) -> None:
        """No 16-digit NIK in clear in any mail, webhook, log line or topic this service wrote to."""
        texts = [m.as_string() for m in self.mail.messages]
        texts += [json.dumps(r.headers) + r.body.decode("utf-8", "replace") for r in self.web.requests]
        texts += [p.logs() for p in self.processes]
        texts += [v.decode("utf-8", "replace") for v in await read_topic(self.bootstrap, self.deliveries_topic)]
        texts += [v.decode("utf-8", "replace") for v in await read_topic(self.bootstrap, self.dead_letters)]
        # Hashes and MACs (nik_hash, webhook signatures) are hex: 64 random hex digits hold an all-decimal run
        # of exactly 16 about once in 250, which is no NIK (CI failed once on `1752351302778317`).
        texts = [HEX_DIGEST.sub("#", text) for text in texts]
        leaks = [m.group(0) for text in texts for m in NIK_PATTERN.finditer(text)]
        assert leaks == [], f"NIK-shaped numbers in clear: {leaks[:5]}"

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def _key(event: CloudEvent[Any]) -> str:
    # Registration keys outcomes by the participant's NIK hash, rejections by the partner.
    data: Any = event.data
    participant = getattr(data, "participant", None)
    return participant.nik_hash if participant is not None else data.partner_id


async def read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every record value now in the topic (from the beginning to the current end of each partition)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        # Without a group every partition is assigned as soon as the topic's metadata arrives.
        assigned = await eventually(consumer.assignment, 15, f"partitions of {topic}")
        ends = await consumer.end_offsets(list(assigned))
        values: list[bytes] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            values += [r.value for records in batch.values() for r in records if r.value is not None]
        return values
    finally:
        await consumer.stop()


@pytest.fixture
def mail() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def web() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
async def notification(  # noqa: PLR0913, PLR0917 - the fixtures it is made of
    tmp_path: Path,
    service_env: dict[str, str],
    kafka_bootstrap: str,
    mongodb_url: str,
    unique: str,
    mail: SmtpSink,
    web: Receiver,
) -> AsyncIterator[Notification]:
    """The service's surroundings; each test starts the service itself with the settings it needs."""
    running = Notification(kafka_bootstrap, mongodb_url, unique, tmp_path, service_env, mail, web)
    try:
        yield running
    finally:
        running.stop()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
        try:
            await client.drop_database(running.database)
        finally:
            await client.close()
