"""A run: everything from an empty private stack to the verdict."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from shared import events as ev
from shared.regions import load_regions
from shared.topics import (
    DEAD_LETTERS,
    ENROLLMENT_OUTCOMES,
    ENROLLMENT_REQUESTS,
    NOTIFICATION_DELIVERIES,
    PARTNER_OUTCOMES_SUFFIX,
    PARTNER_TOPIC_PREFIX,
    partner_requests_pattern,
)
from tests.e2e.reliability.chaos import Chaos, Fault
from tests.e2e.reliability.dashboard import verify_dashboard
from tests.e2e.reliability.fleet import Fleet
from tests.e2e.reliability.plan import WIB, Plan
from tests.e2e.reliability.probes import lag, list_topics, read_topic
from tests.e2e.reliability.report import Report, commit
from tests.e2e.reliability.settle import CONSUMER_GROUPS, settle
from tests.e2e.reliability.stack import MailSink, PrivateStack, WebReceiver
from tests.e2e.reliability.stream import Progress, Publisher
from tests.e2e.reliability.verdict import Verdict, record_text, scan_into
from tests.e2e.reliability.verification import (
    verify_notification,
    verify_outcomes,
    verify_partner_topics,
    verify_registration,
    verify_reporting,
)
from tests.e2e.reliability.workload import Workload, build_workload

log = logging.getLogger("reliability")


async def heartbeat(publisher: Publisher, progress: Progress, work: Workload) -> None:
    while True:
        await asyncio.sleep(15)
        log.info(
            "%d/%d records published, %d/%d requests answered",
            publisher.published,
            len(work.records),
            len(progress.answered),
            len(work.expectations),
        )


async def run(plan: Plan, workdir: Path, *, command: str = "") -> Report:
    """Everything from an empty private stack to the verdict; the stack is reset at the end whatever happens."""
    workdir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before anything runs
    regions = load_regions()
    work = build_workload(plan, datetime.now(WIB).date(), regions)
    stack = PrivateStack(workdir / "stack")
    mail, web = MailSink(), WebReceiver()
    fleet: Fleet | None = None
    tasks: list[asyncio.Task[None]] = []
    mongo: AsyncMongoClient[dict[str, Any]] | None = None
    started, began, checkout = datetime.now(UTC), time.monotonic(), commit()
    try:
        if plan.needs_store_mount:
            stack.mount_store(plan.store_size)
        await stack.start()
        mail.start()
        web.start()
        fleet = Fleet.create(plan, stack, workdir, mail, web)
        await fleet.start_all()
        # A bound on every query: a store that stops answering must fail the run, not hang it.
        mongo = AsyncMongoClient(stack.mongodb_url, tz_aware=True, timeoutMS=120_000)
        publisher = Publisher(stack.bootstrap, work.records, plan.rate)
        progress = Progress(stack.bootstrap)
        chaos = Chaos(plan, stack, fleet, publisher, progress, len(work.expectations))
        tasks = [
            asyncio.create_task(t)
            for t in (fleet.watch(), progress.run(), publisher.run(), heartbeat(publisher, progress, work))
        ]
        await chaos.run()
        await publisher.done.wait()
        log.info("faults done, stream published; waiting for everything to settle")
        notes = await settle(work, stack.bootstrap, fleet, progress, mongo, plan.settle_seconds)
        if publisher.resent_chunks:
            notes.append(f"{publisher.resent_chunks} chunks of requests published again after a send failed")

        log.info("settled: %s; verifying", "; ".join(notes))
        verdict = await verify(work, stack, fleet, tasks[0], mongo, mail, web, chaos.faults)
        return Report(
            plan,
            command,
            started,
            time.monotonic() - began,
            work,
            chaos.faults,
            verdict,
            publisher.resent_chunks,
            notes,
            checkout,
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if mongo is not None:
            await mongo.close()
        if fleet is not None:
            fleet.stop_all()
        mail.stop()
        web.stop()
        stack.reset()


async def verify(  # noqa: PLR0913, PLR0917 - every place the verification reads
    work: Workload,
    stack: PrivateStack,
    fleet: Fleet,
    watch: asyncio.Task[None],
    mongo: AsyncMongoClient[dict[str, Any]],
    mail: MailSink,
    web: WebReceiver,
    faults: list[Fault],
) -> Verdict:
    """Compare what the system holds and published with the inputs, then scan every place a NIK could leak.

    The services are stopped half-way, once the comparisons are done, so the scan reads their logs whole;
    `watch` (the fleet's watcher) is cancelled first so that stopping them is not taken for a crash.
    """
    verdict = Verdict()
    for fault in faults:
        verdict.problems += [f"{fault.kind} {fault.target}: {p}" for p in fault.problems]
    records = await read_topic(stack.bootstrap, ENROLLMENT_OUTCOMES.name)
    outcomes = verify_outcomes(work, records, verdict)
    topics = [t for t in await list_topics(stack.bootstrap) if not t.startswith("__")]
    copies = {
        t: await read_topic(stack.bootstrap, t)
        for t in topics
        if t.startswith(PARTNER_TOPIC_PREFIX) and t.endswith(PARTNER_OUTCOMES_SUFFIX)
    }
    verify_partner_topics(outcomes, copies, verdict)
    at_rest = await verify_registration(work, outcomes, mongo, stack.bootstrap, verdict)
    api_texts = await verify_reporting(work, stack.bootstrap, fleet, verdict)
    dashboard_texts = await verify_dashboard(work, fleet, verdict)
    reports = [
        ev.delivery_adapter.validate_json(r.value)
        for r in await read_topic(stack.bootstrap, NOTIFICATION_DELIVERIES.name)
    ]
    notified = await verify_notification(work, outcomes, mongo, mail, web, reports, verdict)
    letters = await read_topic(stack.bootstrap, DEAD_LETTERS.name)
    verdict.count("mismatches", "dead letters for records that were all readable", [str(r.offset) for r in letters])
    for group, topic in CONSUMER_GROUPS:
        left = await lag(stack.bootstrap, group, topic)
        verdict.checks.append(f"consumer lag of {group} on {topic}: {left}")
        if left:
            verdict.count("mismatches", "consumer lag not back to zero", [f"{group}: {left}"])

    watch.cancel()  # from here on, services stop on purpose
    fleet.stop_all()
    verdict.problems += fleet.exits
    niks = frozenset(work.niks)
    texts = [
        record_text(r)
        for t in topics
        # The intake topics, shared and per partner, are the only ones where a NIK may be in clear.
        if t != ENROLLMENT_REQUESTS.name and not partner_requests_pattern().fullmatch(t)
        for r in await read_topic(stack.bootstrap, t)
    ]
    scan_into(verdict, f"topics other than intake ({len(topics) - 1})", texts, niks)
    scan_into(verdict, "service logs", [s.logs() for s in fleet.instances.values()], niks)
    scan_into(verdict, "notifications (ledger, e-mails, webhooks, SMS)", notified, niks)
    scan_into(verdict, "reporting API", api_texts, niks)
    scan_into(verdict, "dashboard data (decimal fractions left out)", dashboard_texts, niks)
    scan_into(verdict, "participants collection at rest", at_rest, niks)
    return verdict
