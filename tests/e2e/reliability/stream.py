"""Publishing the stream and watching it flow: the partners' side of a run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.topics import (
    ENROLLMENT_OUTCOMES,
    ENROLLMENT_REQUESTS,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


class Publisher:
    """Publishes the stream at the plan's rate, keyed by NIK, in order; holds while the broker is down.

    A chunk whose sending failed is sent again whole: the intake may then hold a record twice, which
    registration must answer from its request log (a replay, like a partner's retry).
    """

    def __init__(self, bootstrap: str, records: list[tuple[bytes, bytes, dict[str, str]]], rate: float) -> None:
        self.bootstrap = bootstrap
        self.records = records
        self.rate = rate
        self.published = 0
        self.resent_chunks = 0
        self.open = asyncio.Event()
        self.open.set()
        self.done = asyncio.Event()

    async def _producer(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, enable_idempotence=True, linger_ms=5, request_timeout_ms=30_000
        )
        await producer.start()
        return producer

    async def run(self) -> None:
        chunk = max(1, int(self.rate / 5))  # five chunks a second
        producer = await self._producer()
        started = time.monotonic()
        try:
            for first in range(0, len(self.records), chunk):
                due = started + first / self.rate
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                while True:
                    await self.open.wait()
                    try:
                        futures = [
                            await producer.send(
                                ENROLLMENT_REQUESTS.name,
                                value,
                                key=key,
                                headers=[(k, v.encode()) for k, v in headers.items()],
                            )
                            for key, value, headers in self.records[first : first + chunk]
                        ]
                        await asyncio.gather(*futures)
                        break
                    except Exception:  # noqa: BLE001 - any failure: a new producer, the same chunk again
                        self.resent_chunks += 1
                        with contextlib.suppress(Exception):
                            await producer.stop()
                        await asyncio.sleep(1)
                        producer = await self._retry(self._producer)
                self.published = min(len(self.records), first + chunk)
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
            self.done.set()

    @staticmethod
    async def _retry(make: Callable[[], Awaitable[AIOKafkaProducer]]) -> AIOKafkaProducer:
        while True:
            try:
                return await make()
            except Exception:  # noqa: BLE001 - the broker may still be coming back
                await asyncio.sleep(1)


class Progress:
    """Follows the outcome topic: which request keys are answered so far (for the fault schedule and the
    end of the run; the verification reads the topic again from the start)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.answered: set[str] = set()

    async def run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                ENROLLMENT_OUTCOMES.name, bootstrap_servers=self.bootstrap, group_id=None, auto_offset_reset="earliest"
            )
            try:
                await consumer.start()
                while True:
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            data = json.loads(record.value)["data"]
                            self.answered.add(f"{data['partner_id']}:{data['request_id']}")
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the broker restarts during a run: read again from the start
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()
