"""`python -m tests.e2e.dashboard.screenshots` (`make dashboard-screenshots`): the PNGs in docs/dashboard/.

A reporting service of its own (topics and a database named for this run, deleted afterwards) is fed a
seeded sample over every province, then Debian's chromium photographs the national, province and city
views as a reader first sees them. Kafka and the MongoDB-protocol server: KAFKA_BOOTSTRAP_SERVERS and
MONGODB_URL when both are set, else the native stack (`deploy/local/stack start`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from tests.e2e.dashboard.browser import chromium, offline_context, registrations, reporting_env, sample, start_reporting
from tests.support import ROOT, publish_events

OUT = ROOT / "docs" / "dashboard"
VIEWS = {"national": "", "province": "32", "city": "32.71"}
VIEWPORT = {"width": 1280, "height": 1700}
SAMPLE = 6000


def infrastructure() -> tuple[str, str]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URL")
    if kafka and mongo:
        return kafka, mongo
    started = subprocess.run([ROOT / "deploy/local/stack", "start"], capture_output=True, text=True, check=True)
    values = dict(line.split("=", 1) for line in started.stdout.splitlines() if "=" in line)
    return values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URL"]


async def folded(url: str, events: int, within: float = 120) -> None:
    """Until the nation's figures reflect every event published."""
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=url) as client:
        while sum((await client.get("/regions/ID")).json()["source_offsets"].values()) < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reporting has not folded {events} events")
            await asyncio.sleep(0.5)


async def photograph(url: str) -> list[Path]:
    taken = []
    async with chromium() as browser:
        context, outside = await offline_context(browser, viewport=VIEWPORT)
        page = await context.new_page()
        for name, code in VIEWS.items():
            await page.goto(f"{url}/dashboard/{code}")
            await page.wait_for_function("document.getElementById('live').dataset.drawn")
            path = OUT / f"{name}.png"
            await page.screenshot(path=path)
            taken.append(path)
        await context.close()
        if outside:
            raise RuntimeError(f"the page asked for something outside this machine: {outside}")
    return taken


async def main() -> None:
    kafka, mongo = infrastructure()
    secrets = {
        name: base64.b64encode(os.urandom(32)).decode() for name in ("LINDUNGI_NIK_HASH_SECRET", "LINDUNGI_SEAL_KEY")
    }
    unique = "screenshots_" + uuid.uuid4().hex[:8]
    os.environ.update({**secrets, "LINDUNGI_KAFKA_BOOTSTRAP_SERVERS": kafka, "LINDUNGI_MONGODB_URL": mongo})
    env = {**reporting_env(dict(os.environ), unique), "REPORTING_DEFAULT_TARGET_RATIO": "0.7"}
    with tempfile.TemporaryDirectory() as scratch:
        service = await start_reporting(env, Path(scratch) / "reporting.log")
        try:
            events = sample(SAMPLE, seed=2021) + registrations("32.71", 400, f"{unique}-bogor")
            await publish_events(kafka, env["REPORTING_OUTCOMES_TOPIC"], events)
            await folded(service.url, len(events))
            OUT.mkdir(parents=True, exist_ok=True)
            for path in await photograph(service.url):
                print(path.relative_to(ROOT))  # noqa: T201 - what the command made
        finally:
            service.stop()
            client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo)
            await client.drop_database(env["REPORTING_MONGODB_DATABASE"])
            await client.close()
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
            await admin.start()
            names = [
                env[k]
                for k in (
                    "REPORTING_OUTCOMES_TOPIC",
                    "REPORTING_REGION_AGGREGATES_TOPIC",
                    "REPORTING_DEAD_LETTERS_TOPIC",
                    "REPORTING_BUDGET_TOPIC",
                )
            ]
            await admin.delete_topics(names)
            await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
