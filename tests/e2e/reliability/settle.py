"""Settling: waiting, with deadlines, until everything the stream set off has come to rest."""

from __future__ import annotations

import contextlib
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx

from shared.topics import ENROLLMENT_OUTCOMES, ENROLLMENT_REQUESTS, REGION_AGGREGATES
from tests.e2e.reliability.probes import end_offsets, eventually, get_json, lag

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient
    from pymongo.asynchronous.collection import AsyncCollection

    from tests.e2e.reliability.fleet import Fleet
    from tests.e2e.reliability.stream import Progress
    from tests.e2e.reliability.workload import Workload

CONSUMER_GROUPS = (
    ("lindungi-registration", ENROLLMENT_REQUESTS.name),
    ("lindungi-reporting", ENROLLMENT_OUTCOMES.name),
    ("lindungi-notification", ENROLLMENT_OUTCOMES.name),
    ("lindungi-notification-aggregates", REGION_AGGREGATES.name),
)


async def settle(  # noqa: PLR0913, PLR0917 - what has to come to rest
    work: Workload,
    bootstrap: str,
    fleet: Fleet,
    progress: Progress,
    mongo: AsyncMongoClient[dict[str, Any]],
    within: float,
) -> list[str]:
    """Wait (with deadlines, never a fixed sleep) until everything the stream set off has come to rest:
    every request answered, every consumer group caught up, reporting's read model at the end of the
    outcome topic, the notification ledger without pending or unreported deliveries. What did not come to
    rest is returned; the verification then counts what is missing."""
    notes: list[str] = []
    keys = set(work.expectations)
    began = time.monotonic()
    if not await eventually(lambda: keys <= progress.answered, within):
        notes.append(f"{len(keys - progress.answered)} requests unanswered after {within:.0f} s")
    for group, topic in CONSUMER_GROUPS[:1]:
        if not await eventually(partial(caught_up, bootstrap, group, topic), 120, interval=1):
            notes.append(f"{group} still behind on {topic}")
    ends = {
        f"{ENROLLMENT_OUTCOMES.name}:{p}": n
        for p, n in (await end_offsets(bootstrap, ENROLLMENT_OUTCOMES.name)).items()
        if n
    }
    if not await eventually(lambda: reporting_at_end(fleet, ends), 180, interval=1):
        notes.append("a reporting instance's read model did not reach the end of the outcome topic")
    deliveries = mongo["lindungi_notification"]["deliveries"]
    if not await eventually(lambda: ledger_at_rest(deliveries, bootstrap), 240, interval=1):
        notes.append("the notification ledger still has pending or unreported deliveries")
    for group, topic in CONSUMER_GROUPS[1:]:
        if not await eventually(partial(caught_up, bootstrap, group, topic), 120, interval=1):
            notes.append(f"{group} still behind on {topic}")
    notes.append(f"settled {time.monotonic() - began:.0f} s after the last request was published")
    return notes


async def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    return await lag(bootstrap, group, topic) == 0


async def reporting_at_end(fleet: Fleet, ends: dict[str, int]) -> bool:
    """Every reporting instance's read model reflects the outcome topic up to `ends` (topic:partition -> offset)."""
    async with httpx.AsyncClient() as client:
        for name in fleet.of("reporting"):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                national, _ = await get_json(client, f"{fleet.instances[name].url}/regions/ID")
                if {k: v for k, v in national["source_offsets"].items() if v} == ends:
                    continue
            return False
    return True


async def ledger_at_rest(deliveries: AsyncCollection[dict[str, Any]], bootstrap: str) -> bool:
    pending = await deliveries.count_documents({"status": "pending"})
    unreported = await deliveries.count_documents({"reported": False})
    return (
        pending == 0
        and unreported == 0
        and await caught_up(bootstrap, "lindungi-notification", ENROLLMENT_OUTCOMES.name)
    )
