"""Following a topic from its start while a scenario runs: every record goes to a callback on arrival."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiokafka import ConsumerRecord


class Follower:
    def __init__(
        self, bootstrap: str, topic: str, on_record: Callable[[ConsumerRecord[bytes, bytes], float], None]
    ) -> None:
        self._consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
        )
        self._on_record = on_record
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=200)
            arrived = time.monotonic()  # one clock reading per fetch: records of a fetch arrived together
            for records in batch.values():
                for record in records:
                    self._on_record(record, arrived)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()


class NationalAggregate:
    """The nation's latest published snapshot: how many outcome records it reflects (its source offsets)."""

    def __init__(self) -> None:
        self.reflected = 0

    def __call__(self, record: ConsumerRecord[bytes, bytes], _arrived: float) -> None:
        if record.key != b"ID" or record.value is None:
            return
        offsets: dict[str, Any] = json.loads(record.value)["data"]["source_offsets"]
        self.reflected = max(self.reflected, sum(int(v) for v in offsets.values()))
