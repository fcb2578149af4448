"""Tests that leave on the servers what integration tests leave, run by tests/e2e/test_leaves_no_trace.py in
pytest sessions of their own (`make test` does not collect this file: its name does not start with `test_`).

Each writes its mark to the file named by `LINDUNGI_TRACES_OUT` so that the outer test knows what to look for.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support import holding, publish

TRACES = 5  # the topics, the group and the database `leave_traces` creates


@pytest.fixture
def mark(unique: str) -> str:
    Path(os.environ["LINDUNGI_TRACES_OUT"]).write_text(unique)
    return unique


async def leave_traces(bootstrap: str, mongo: Any, unique: str) -> list[str]:
    """A topic created by the admin client, two created by producing to them (a scratch topic and a partner's
    outcome topic, as registration's partner copies are), a consumer group with offsets and a database."""
    created, produced = f"sample.created.{unique}", f"sample.produced.{unique}"
    partner = f"lindungi.partner.mitra-{unique}.outcomes.v1"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(created, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    for topic in (produced, partner):
        await publish(bootstrap, topic, [(b"k", b"v", {})])
    consumer = AIOKafkaConsumer(
        produced, bootstrap_servers=bootstrap, group_id=f"sample-{unique}", auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        while not await consumer.getmany(timeout_ms=500):
            pass
        await consumer.commit()
    finally:
        await consumer.stop()
    await mongo[f"sample_{unique}"]["things"].insert_one({"_id": 1})
    return [created, produced, partner, f"sample-{unique}", f"sample_{unique}"]


async def test_leaves_traces(kafka_bootstrap: str, mongodb_url: str, mongo: Any, mark: str) -> None:
    left = await leave_traces(kafka_bootstrap, mongo, mark)
    assert await holding(kafka_bootstrap, mongodb_url, mark) == sorted(left)


async def test_leaves_traces_and_is_killed(kafka_bootstrap: str, mongo: Any, mark: str) -> None:
    await leave_traces(kafka_bootstrap, mongo, mark)
    os.kill(os.getpid(), signal.SIGKILL)  # no teardown: what a CI timeout or a kill -9 does to a session


def test_comes_later(unique: str) -> None:
    """Any test with a mark: its session starts by erasing what killed sessions left."""
    assert unique
