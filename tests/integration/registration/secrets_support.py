"""What the secret-rotation tests share: registration run as a process under given secrets, requests to send it,
and its outcomes and participants read back from the real broker and database."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date
from itertools import count
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient

from services.registration.domain.nik import format_nik
from shared import events as ev
from tests.support import ROOT, ServiceProcess, consume_until, publish_events, registration_env

PARTNER = {
    "partner_id": "bogor-hr",
    "name": "BKPSDM Kota Bogor",
    "regions": ["32.71"],
    "segments": ["BPU"],
    "funding_sources": ["APBD"],
}
TODAY = date.today()
_serials = count(1)


def new_nik() -> str:
    return format_nik("32.71.01", date(1990, 6, 5), ev.Sex.FEMALE, next(_serials))


def enrollment(request_id: str, nik: str) -> ev.EnrollmentRequested:
    data = ev.EnrollmentRequest(
        request_id=request_id,
        worker=ev.Worker(nik=nik, full_name="Siti Aminah", birth_date=date(1990, 6, 5), sex=ev.Sex.FEMALE),
        region_code="32.71",
        segment=ev.Segment.BPU,
        category=ev.Category.VULNERABLE,
        programs=[ev.Program.JKK, ev.Program.JKM],
        declared_income=1_000_000,
        funding_source=ev.FundingSource.APBD,
        coverage_start=date(TODAY.year, TODAY.month, 1),
    )
    return ev.EnrollmentRequested(source="partner/bogor-hr", subject=request_id, data=data)


def update(request_id: str, nik: str, declared_income: int) -> ev.UpdateRequested:
    data = ev.UpdateRequest(
        request_id=request_id, nik=nik, segment=ev.Segment.BPU, declared_income=declared_income, effective_date=TODAY
    )
    return ev.UpdateRequested(source="partner/bogor-hr", subject=request_id, data=data)


def nik_in(request: ev.CloudEvent[Any]) -> str:
    data = request.data
    return str(data.worker.nik if isinstance(data, ev.EnrollmentRequest) else data.nik)


@dataclass(frozen=True)
class Deployment:
    """One test's registration: its topics, group and database, and the environment its processes get."""

    unique: str
    bootstrap: str
    mongodb_url: str
    env: dict[str, str]
    workdir: Path

    @classmethod
    def of(cls, tmp_path: Path, service_env: dict[str, str], unique: str) -> Deployment:
        seed = tmp_path / "partners.json"
        seed.write_text(json.dumps([PARTNER]))
        env = registration_env(service_env, unique, seed)
        for name in ("LINDUNGI_SEAL_KEYS_PREVIOUS", "REGISTRATION_SEAL_KEY", "REGISTRATION_SEAL_KEYS_PREVIOUS"):
            env.pop(name, None)
        return cls(
            unique,
            service_env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"],
            service_env["LINDUNGI_MONGODB_URL"],
            env,
            tmp_path,
        )

    @property
    def database(self) -> str:
        return self.env["REGISTRATION_MONGODB_DATABASE"]

    def with_secrets(self, **secrets: str) -> dict[str, str]:
        """The environment with `LINDUNGI_<NAME>` set for each of `secrets` (lower-case names)."""
        return {**self.env, **{f"LINDUNGI_{name.upper()}": value for name, value in secrets.items()}}

    @contextlib.asynccontextmanager
    async def running(self, name: str, **secrets: str) -> AsyncIterator[ServiceProcess]:
        service = ServiceProcess("registration", self.with_secrets(**secrets), self.workdir / f"{name}.log")
        service.start()
        try:
            await service.wait_ready()
            yield service
        finally:
            service.stop()

    def command(self, module: str, *args: str, **secrets: str) -> Command:
        """`python -m <module> args` with this deployment's environment, its output to a file."""
        output = self.workdir / f"{module.rsplit('.', 1)[-1]}-{next(_serials)}.out"
        with output.open("w") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=ROOT,
                env={**self.with_secrets(**secrets), "LINDUNGI_LOG_FORMAT": "json"},
                stdout=sink,
                stderr=subprocess.STDOUT,
                text=True,
            )
        return Command(process, output)

    async def send(self, requests: Iterable[ev.CloudEvent[Any]]) -> None:
        await publish_events(self.bootstrap, f"requests.{self.unique}", [(nik_in(r), r) for r in requests])

    async def outcomes(self, request_ids: set[str]) -> dict[str, list[Any]]:
        """Every outcome on the topic by request id, once each of `request_ids` has one."""

        def by_request(records: list[Any]) -> dict[str, list[Any]]:
            found: dict[str, list[Any]] = {}
            for record in records:
                outcome = ev.outcome_adapter.validate_json(record.value)
                found.setdefault(outcome.data.request_id, []).append(outcome)
            return found

        records = await consume_until(
            self.bootstrap, f"outcomes.{self.unique}", lambda got: request_ids <= set(by_request(got)), timeout=120
        )
        return by_request(records)

    async def documents(self, collection: str) -> list[dict[str, Any]]:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(self.mongodb_url)
        try:
            return [doc async for doc in client[self.database][collection].find({})]
        finally:
            await client.close()


@dataclass(frozen=True)
class Command:
    process: subprocess.Popen[str]
    output: Path

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    async def finished(self, timeout: float = 300) -> tuple[int, str]:
        """Its exit code and output, once it has exited."""
        waited = 0.0
        while self.running:
            if waited > timeout:
                self.process.kill()
                raise TimeoutError(self.output.read_text())
            await asyncio.sleep(0.1)
            waited += 0.1
        return self.process.returncode, self.output.read_text()


async def records_in(bootstrap: str, topic: str) -> int:
    """How many records a topic holds (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        await consumer.topics()  # fetches the metadata that partitions_for_topic reads
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values()) if partitions else 0
    finally:
        await consumer.stop()
