"""What the dashboard's browser tests and its screenshots share: Debian's chromium driven by Playwright, a
reporting service run as production runs it (on topics and a database of its own), and outcome events to
publish to it.

Playwright is pointed at /usr/bin/chromium and never downloads a browser of its own (`make install` installs
Debian's). The flags keep Chromium off the network: without the background-networking ones it keeps trying
Google's hosts, which a closed network refuses.
"""

from __future__ import annotations

import random
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from playwright.async_api import Browser, BrowserContext, Route, async_playwright

from services.reporting.app import service_topics
from services.reporting.settings import ReportingSettings
from shared import events as ev
from shared.messaging import ensure_topics
from shared.regions import load_regions
from tests.support import ServiceProcess
from tests.unit.reporting.outcomes import make_participant

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL = ("http://127.0.0.1:", "http://localhost:", "data:")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Headless Debian chromium; Playwright gives every launch a fresh, empty --user-data-dir."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


async def offline_context(browser: Browser, **options: Any) -> tuple[BrowserContext, list[str]]:
    """A context in which any request that leaves this machine is refused and recorded (the page must work
    with no internet: nothing from a CDN)."""
    context = await browser.new_context(**{"viewport": {"width": 1280, "height": 1000}, **options})
    outside: list[str] = []

    async def guard(route: Route) -> None:
        if route.request.url.startswith(LOCAL):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()

    await context.route("**/*", guard)
    return context, outside


def reporting_env(service_env: dict[str, str], unique: str, targets: Path | None = None) -> dict[str, str]:
    env = {
        **service_env,
        "REPORTING_OUTCOMES_TOPIC": f"outcomes.{unique}",
        "REPORTING_REGION_AGGREGATES_TOPIC": f"aggregates.{unique}",
        "REPORTING_DEAD_LETTERS_TOPIC": f"deadletters.{unique}",
        "REPORTING_BUDGET_TOPIC": f"budget.{unique}",
        "REPORTING_GROUP_ID": f"reporting-{unique}",
        "REPORTING_MONGODB_DATABASE": f"reporting_{unique}",
        "REPORTING_PUBLISH_INTERVAL_SECONDS": "0.3",
        "REPORTING_COMMIT_INTERVAL_SECONDS": "0.2",
    }
    if targets is not None:
        env["REPORTING_TARGETS_FILE"] = str(targets)
    return env


async def start_reporting(env: dict[str, str], log: Path) -> ServiceProcess:
    settings = ReportingSettings(
        **{k.removeprefix("REPORTING_").lower(): v for k, v in env.items() if k.startswith("REPORTING_")}
    )
    await ensure_topics(env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"], service_topics(settings))
    service = ServiceProcess("reporting", env, log)
    service.start()
    await service.wait_ready()
    return service


# --- Outcome events ------------------------------------------------------------------------------------------


def registrations(
    region: str, count: int, prefix: str, kecamatan: str | None = None
) -> list[tuple[str, ev.CloudEvent[Any]]]:
    """`count` workers registered in a regency/city now, in one kecamatan (its first, unless given)."""
    regions = load_regions()
    where = kecamatan or regions.children(region)[0].code
    events: list[tuple[str, ev.CloudEvent[Any]]] = []
    for i in range(count):
        pid = f"{prefix}-{i}"
        participant = make_participant(pid, region=region, kecamatan=where)
        data = ev.Registered(
            request_id=f"r-{pid}",
            partner_id="bogor-hr",
            request_event_id=f"q-{pid}",
            version=1,
            participant=participant,
        )
        events.append(
            (
                participant.nik_hash,
                ev.ParticipantRegistered(source="lindungi/registration", time=datetime.now(UTC), data=data),
            )
        )
    return events


def sample(count: int, seed: int) -> list[tuple[str, ev.CloudEvent[Any]]]:
    """A varied, reproducible population over every regency/city (more where more people live), with some
    rejections: what the screenshots show."""
    rng = random.Random(seed)
    regions = load_regions()
    regencies = regions.at_level("regency/city")
    weights = [
        (regions.population(r.code).total if regions.population(r.code) else 1) * rng.uniform(0.2, 3) for r in regencies
    ]
    now = datetime.now(UTC)
    events: list[tuple[str, ev.CloudEvent[Any]]] = []
    for i, regency in enumerate(rng.choices(regencies, weights, k=count)):
        kecamatan = rng.choice([*regions.children(regency.code), None])
        pid = f"sample-{seed}-{i}"
        participant = make_participant(
            pid,
            region=regency.code,
            kecamatan=kecamatan.code if kecamatan else None,
            segment=rng.choice([ev.Segment.BPU, ev.Segment.BPU, ev.Segment.PU, ev.Segment.JAKON]),
            category=rng.choice(
                [ev.Category.VULNERABLE, ev.Category.VULNERABLE, ev.Category.NON_ASN_STAFF, ev.Category.INFORMAL]
            ),
            funding=rng.choice(
                [ev.FundingSource.APBD, ev.FundingSource.APBD, ev.FundingSource.SELF, ev.FundingSource.CSR]
            ),
            sex=rng.choice(list(ev.Sex)),
            age=rng.choice(list(ev.AgeBand)),
            by_payer={ev.Payer.FUNDER: rng.choice([16_800, 10_800])},
        )
        data = ev.Registered(
            request_id=f"r-{pid}", partner_id="demo", request_event_id=f"q-{pid}", version=1, participant=participant
        )
        events.append(
            (participant.nik_hash, ev.ParticipantRegistered(source="lindungi/registration", time=now, data=data))
        )
        if i % 12 == 0:
            reason = rng.choice(["NIK_LENGTH", "REGION_UNKNOWN", "WAGE_MISSING", "KECAMATAN_NOT_IN_REGION"])
            rejected = ev.Rejected(
                request_id=f"x-{pid}",
                partner_id=rng.choice(["demo-jabar-jakarta", "dinsos-kota-bogor"]),
                request_event_id=f"qx-{pid}",
                reasons=[ev.RejectionReason(code=reason, message_id="ditolak", message_en="rejected")],
                region_code=regency.code,
            )
            events.append((f"x-{pid}", ev.RequestRejected(source="lindungi/registration", time=now, data=rejected)))
    return events
