"""Notification throughput: outcome events to webhooks (partners hear of rejections) and e-mail (workers hear
of their registration), against real local receivers (bench/sinks.py), counted on the deliveries topic.

Baselines in the same runs: the same number of webhook POSTs and e-mails sent straight to the same receivers
by a plain client with the service's per-channel concurrency (no ledger, no Kafka); and, for isolation, the
same service run again with one partner's endpoint taking `slow_seconds` per request, against the run where
every endpoint is fast: the other partners' webhook throughput must not drop by more than 10%.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING

import aiosmtplib
import httpx

from bench import data
from bench.follow import Follower
from bench.kafka import fill
from bench.measure import Figure, ratios
from bench.processes import free_port
from bench.report import Row, Section, table
from services.notification.settings import NotificationSettings
from shared import topics

if TYPE_CHECKING:
    from pathlib import Path

    from aiokafka import ConsumerRecord

    from bench.harness import Harness
    from bench.processes import Proc

PARTNERS = 5
SLOW = "bench-partner-0"  # the partner whose endpoint is slow in the isolation run
SECRET = "bench-webhook-signing-secret-0123"  # noqa: S105 - signs requests to the local receivers only
EMAIL = "email"
WEBHOOKS = "webhooks"  # a stream of rejections only: every delivery a partner's webhook
DEFAULTS = NotificationSettings.model_fields  # the service's own concurrency, for the raw baseline


def webhook(partner: str) -> str:
    return f"webhook:{partner}"


@dataclass
class Deliveries:
    """Arrivals on the deliveries topic, per class (`email`, `webhook:<partner>`)."""

    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failed: Counter[str] = field(default_factory=Counter)
    complete: bool = True  # False: the time budget ran out before every awaited delivery was reported

    def __call__(self, record: ConsumerRecord[bytes, bytes], arrived: float) -> None:
        event = json.loads(record.value or b"{}")
        delivery = event.get("data", {})
        kind = EMAIL if delivery.get("channel") == "EMAIL" else webhook(str(delivery.get("recipient_id")))
        if event.get("type") == "id.lindungi.notification.delivered":
            self.arrivals[kind].append(arrived)
        else:
            self.failed[kind] += 1

    def count(self, kinds: list[str]) -> int:
        return sum(len(self.arrivals[k]) for k in kinds)

    def rate(self, kinds: list[str]) -> float:
        """Deliveries per second of these classes, from the first 1% of them to the last."""
        times = sorted(t for k in kinds for t in self.arrivals[k])
        if len(times) < 2:
            return float("nan")
        first = len(times) // 100
        span = times[-1] - times[first]
        return (len(times) - 1 - first) / span if span > 0 else float("nan")


def stream(h: Harness, only: str | None = None) -> tuple[list[data.OutcomeTemplate], Counter[str]]:
    """Only outcomes someone hears of: rejections (the partner's webhook) and registrations of workers who
    consented and gave an e-mail address (SMS is not configured, as in a deployment without a gateway).
    `only` keeps one class: `WEBHOOKS` (rejections to partners) or `EMAIL`."""
    templates = data.outcome_templates(
        h.scale.templates, h.seed + 2, today=h.today, nik_secret=h.nik_secret, partner_count=PARTNERS
    )
    chosen = [t for t in templates if t.type == "id.lindungi.request.rejected" or t.worker_email]
    if only is not None:
        chosen = [t for t in chosen if (only == EMAIL) == bool(t.worker_email)]
    expected: Counter[str] = Counter()
    for index in range(h.scale.notification):
        template = chosen[index % len(chosen)]
        expected[EMAIL if template.worker_email else webhook(template.partner_id)] += 1
    return chosen, expected


def sinks(h: Harness, run: str, slow: bool) -> tuple[Proc, int, int]:  # noqa: FBT001 - which kind of run
    http_port, smtp_port = free_port(), free_port()
    args = [str(http_port), str(smtp_port)]
    if slow:
        args += ["/slow/", str(h.scale.slow_seconds)]
    proc = h.process(f"sinks-{run}", "bench.sinks", {}, args)
    proc.start()
    return proc, http_port, smtp_port


async def wait_for_sinks(proc: Proc, http_port: int) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(150):
            proc.check_alive()
            try:
                await client.get(f"http://127.0.0.1:{http_port}/counts")
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
                continue
            return
    raise TimeoutError("the receivers did not start")


def notification_env(h: Harness, outcomes: str, run: str, seed: Path, smtp_port: int) -> dict[str, str]:
    return {
        "NOTIFICATION_OUTCOMES_TOPIC": outcomes,
        "NOTIFICATION_AGGREGATES_TOPIC": h.name(run, "aggregates"),
        "NOTIFICATION_DELIVERIES_TOPIC": h.name(run, "deliveries"),
        "NOTIFICATION_DEAD_LETTERS_TOPIC": h.name(run, "notification", "deadletters"),
        "NOTIFICATION_BUDGET_TOPIC": h.name(run, "budget"),
        "NOTIFICATION_GROUP_ID": h.name(run, "notification"),
        "NOTIFICATION_MONGODB_DATABASE": h.name(run, "notification"),
        "NOTIFICATION_SEED_FILE": str(seed),
        "NOTIFICATION_SMTP_HOST": "127.0.0.1",
        "NOTIFICATION_SMTP_PORT": str(smtp_port),
    }


async def create_notification_topics(h: Harness, env: dict[str, str]) -> None:
    aggregates, deliveries = topics.REGION_AGGREGATES, topics.NOTIFICATION_DELIVERIES
    await h.kafka.create_topic(env["NOTIFICATION_AGGREGATES_TOPIC"], aggregates.partitions, aggregates.config)
    await h.kafka.create_topic(env["NOTIFICATION_DELIVERIES_TOPIC"], deliveries.partitions)
    await h.kafka.create_topic(env["NOTIFICATION_DEAD_LETTERS_TOPIC"], topics.DEAD_LETTERS.partitions)


async def service_run(  # noqa: PLR0913 - one run's facts
    h: Harness,
    outcomes: str,
    expected: Counter[str],
    run: str,
    *,
    slow: bool,
    profile: Path | None = None,
) -> Deliveries:
    """One service run; with `profile`, the service runs under bench/profiled.py writing there."""
    receivers, http_port, smtp_port = sinks(h, run, slow)
    await wait_for_sinks(receivers, http_port)
    partners = [
        {
            "partner_id": partner,
            "webhook_url": f"http://127.0.0.1:{http_port}/{'slow/' if slow and partner == SLOW else ''}{partner}",
            "secret": SECRET,
        }
        for partner in data.partner_ids(PARTNERS)
    ]
    seed = h.write(f"notification-seed-{run}.json", {"partners": partners, "subscriptions": []})
    env = notification_env(h, outcomes, run, seed, smtp_port)
    await create_notification_topics(h, env)
    arrived = Deliveries()
    follower = Follower(h.kafka.bootstrap, env["NOTIFICATION_DELIVERIES_TOPIC"], arrived)
    await follower.start()
    if profile is None:
        service = h.service("notification", run, env)
    else:
        service = h.service("notification", run, env, module="bench.profiled", args=["notification", str(profile)])
    service.start()
    # Done when every delivery the run waits for is reported: in the slow run, all but the slow partner's.
    waited = [kind for kind in expected if not (slow and kind == webhook(SLOW))]
    total = sum(expected[kind] for kind in waited)
    deadline = time.monotonic() + h.scale.budget
    try:
        while arrived.count(waited) + sum(arrived.failed[k] for k in waited) < total:
            if time.monotonic() > deadline:
                arrived.complete = False
                break
            service.check_alive()
            await asyncio.sleep(0.2)
    finally:
        service.stop(timeout=120 if profile else 30)  # writing a profile takes a moment after SIGTERM
        receivers.stop()
        await follower.stop()
    await h.store.drop(env["NOTIFICATION_MONGODB_DATABASE"])
    return arrived


async def raw_limits(h: Harness, run: str, webhooks: int, emails: int) -> tuple[float, float]:
    """The same deliveries straight from a plain client, with the service's default concurrency per channel."""
    receivers, http_port, smtp_port = sinks(h, f"{run}-raw", slow=False)
    await wait_for_sinks(receivers, http_port)
    body = json.dumps({"request_id": "bench", "reasons": [{"code": "NIK_LENGTH"}]}).encode()

    async def post(client: httpx.AsyncClient, slots: asyncio.Semaphore, index: int) -> None:
        async with slots:
            response = await client.post(f"http://127.0.0.1:{http_port}/raw/{index % PARTNERS}", content=body)
            response.raise_for_status()

    async def mailer(first: int, step: int) -> None:
        # One connection per concurrent sender, kept open for its share: what the service's pool does.
        async with aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port, start_tls=False) as smtp:
            for index in range(first, emails, step):
                message = EmailMessage()
                message["From"], message["To"] = "notifikasi@lindungi.local", f"worker{index}@example.com"
                message["Subject"] = "Kepesertaan terdaftar"
                message.set_content("Anda terdaftar sebagai peserta BPJS Ketenagakerjaan.")
                await smtp.send_message(message)

    try:
        async with httpx.AsyncClient() as client:
            slots = asyncio.Semaphore(int(DEFAULTS["webhook_concurrency"].default))
            start = time.perf_counter()
            await asyncio.gather(*(post(client, slots, i) for i in range(webhooks)))
            webhook_rate = webhooks / (time.perf_counter() - start)
        concurrency = int(DEFAULTS["email_concurrency"].default)
        start = time.perf_counter()
        await asyncio.gather(*(mailer(first, concurrency) for first in range(concurrency)))
        email_rate = emails / (time.perf_counter() - start)
    finally:
        receivers.stop()
    return webhook_rate, email_rate


async def prefill(h: Harness, label: str, only: str | None = None) -> tuple[str, Counter[str]]:
    chosen, expected = await asyncio.to_thread(stream, h, only)
    outcomes = h.name(label)
    await h.kafka.create_topic(outcomes, topics.ENROLLMENT_OUTCOMES.partitions)
    await asyncio.to_thread(
        fill, h.kafka.bootstrap, outcomes, data.outcome_records(h.scale.notification, h.seed + 2, chosen)
    )
    return outcomes, expected


def method_notes(h: Harness, webhooks: int, emails: int) -> list[str]:
    """How the runs were made and the limits measured, for the section's notes."""
    n = h.scale.notification
    return [
        (
            f"Each run gives the service three streams of {n:,} outcome events, each to a fresh service: "
            f"rejections only (each a signed webhook to one of {PARTNERS} partners), registrations only (workers "
            f"who gave an e-mail address), and the two mixed ({webhooks:,} rejections, {emails:,} "
            "registrations). Receivers are a uvicorn HTTP server and an aiosmtpd SMTP server on this machine."
        ),
        (
            "A delivery counts when the service reports it on its deliveries topic (sent, settled in the ledger, "
            "published); rates run from the first 1% of a class's deliveries to the last."
        ),
        (
            "The headline rows compare like with like: webhooks from the rejections-only stream against the same "
            "number of plain httpx POSTs, e-mails from the registrations-only stream against the same number of "
            "plain aiosmtplib sends. In the mixed stream both channels share the two cores and each class's "
            "deliveries are spread over the whole run, so its per-class rates (in the table) are lower than "
            "either channel alone can go."
        ),
        (
            f"Isolation: the mixed events with `{SLOW}`'s endpoint answering after {h.scale.slow_seconds:g} s; the "
            "run ends when every other delivery is reported (the slow partner's still trickle in)."
        ),
        (
            f"Raw limits: {n:,} POSTs, then {n:,} e-mails, from one client process with the service's default "
            "concurrency (8 webhooks, 4 e-mails at a time), connections kept open as the service keeps them (HTTP "
            "keep-alive; one SMTP connection per concurrent sender, like the service's pool)."
        ),
    ]


async def run(h: Harness) -> Section:
    outcomes, expected = await prefill(h, "notification_outcomes")
    hook_outcomes, hook_expected = await prefill(h, "notification_webhooks", only=WEBHOOKS)
    mail_outcomes, mail_expected = await prefill(h, "notification_emails", only=EMAIL)
    all_webhooks = [webhook(p) for p in data.partner_ids(PARTNERS)]
    others = [k for k in all_webhooks if k != webhook(SLOW)]
    hooks, mails, raw_hooks, raw_mails, mixed_hooks, mixed_mails = (Figure("deliveries/s") for _ in range(6))
    others_fast, others_slow, mails_slow = (Figure("deliveries/s") for _ in range(3))
    failures = 0
    section = Section("notification")
    for index in range(1, h.runs + 1):
        hooks_alone = await service_run(h, hook_outcomes, hook_expected, f"note{index}hooks", slow=False)
        hooks.add(hooks_alone.rate(all_webhooks))
        mails_alone = await service_run(h, mail_outcomes, mail_expected, f"note{index}mails", slow=False)
        mails.add(mails_alone.rate([EMAIL]))
        fast = await service_run(h, outcomes, expected, f"note{index}", slow=False)
        mixed_hooks.add(fast.rate(all_webhooks))
        mixed_mails.add(fast.rate([EMAIL]))
        others_fast.add(fast.rate(others))
        slow = await service_run(h, outcomes, expected, f"note{index}slow", slow=True)
        others_slow.add(slow.rate(others))
        mails_slow.add(slow.rate([EMAIL]))
        runs = (
            ("webhooks only", hooks_alone),
            ("e-mails only", mails_alone),
            ("every endpoint fast", fast),
            ("one endpoint slow", slow),
        )
        failures += sum(sum(result.failed.values()) for _, result in runs)
        for label, result in runs:
            if not result.complete:
                done = sum(len(times) for times in result.arrivals.values())
                section.notes.append(
                    f"Run {index} ({label}) reached the {h.scale.budget:.0f} s budget with {done:,} deliveries "
                    "reported: its rates are those of the part done."
                )
        webhook_rate, email_rate = await raw_limits(
            h, f"note{index}", sum(hook_expected.values()), mail_expected[EMAIL]
        )
        raw_hooks.add(webhook_rate)
        raw_mails.add(email_rate)
    isolation = ratios(others_slow, others_fast)
    versus_hooks, versus_mails = ratios(hooks, raw_hooks), ratios(mails, raw_mails)
    section.rows = [
        Row("notification", "webhook deliveries/s (sent, recorded, reported), rejections only", hooks, raw_hooks,
            "plain httpx client, same concurrency", versus_hooks, "≥ 0.5x", h.judge(versus_hooks.median >= 0.5)),
        Row("notification", "e-mail deliveries/s (sent, recorded, reported), registrations only", mails, raw_mails,
            "plain aiosmtplib client, same concurrency", versus_mails, "≥ 0.5x", h.judge(versus_mails.median >= 0.5)),
        Row("notification", f"other partners' webhooks/s while one endpoint takes {h.scale.slow_seconds:g} s",
            others_slow, others_fast, "same, every endpoint fast", isolation, "≥ 0.9",
            h.judge(isolation.median >= 0.9)),
    ]  # fmt: skip
    section.details.append(
        table(
            ["measure", "median (min–max)"],
            [
                ["webhooks/s, rejections-only stream", hooks.format()],
                ["e-mails/s, registrations-only stream", mails.format()],
                ["webhooks/s, mixed stream, every endpoint fast", mixed_hooks.format()],
                ["e-mails/s, mixed stream, every endpoint fast", mixed_mails.format()],
                ["other partners' webhooks/s, every endpoint fast", others_fast.format()],
                ["other partners' webhooks/s, one endpoint slow", others_slow.format()],
                ["e-mails/s, one webhook endpoint slow", mails_slow.format()],
                ["raw limit: httpx POSTs/s", raw_hooks.format()],
                ["raw limit: aiosmtplib e-mails/s", raw_mails.format()],
                ["deliveries reported as failed (all runs)", str(failures)],
            ],
        )
    )
    section.notes[:0] = method_notes(h, sum(expected[k] for k in all_webhooks), expected[EMAIL])
    return section
