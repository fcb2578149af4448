"""The coverage dashboard's budgets, read in Debian's chromium (headless) from a reporting service that holds
every regency/city and every kecamatan: the national view's first meaningful paint, the bytes it transfers,
and how soon a new enrollment shows on a page that is already open.

- **First meaningful paint**: the later of the browser's first contentful paint and the page's own mark
  `dashboard-drawn` (every chart drawn from its table), on a fresh browser context (nothing cached). Baseline
  in the same run: the same service's 404 page (same stylesheet, no figures, no scripts).
- **Transfer**: what the national view's load moves over the wire (Resource Timing's `transferSize`, gzip
  as served), without the map geometry (the issue's budget) and with it. Baseline: the same figures as the
  JSON API gives them (the nation, its provinces, the two barometers), gzip-compressed here.
- **Update**: an enrollment for Kota Bogor is published while Kota Bogor's page is open; from the producer's
  acknowledgement to the page showing the new count (a MutationObserver in the page stamps the moment).
  Baseline: the same publication to the regency's snapshot on the compacted aggregates topic.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import httpx
from playwright.async_api import Browser, Page, async_playwright

from bench.follow import Follower
from bench.kafka import fill
from bench.measure import Figure, ratios
from bench.report import Row, Section, table
from bench.scenarios.reporting import create_reporting_topics, reporting_env
from shared import events as ev
from shared import topics
from shared.messaging import encode
from shared.regions import load_regions

if TYPE_CHECKING:
    from aiokafka import ConsumerRecord

    from bench.harness import Harness
    from bench.kafka import Record
    from bench.processes import Proc

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
CITY = "32.71"
UPDATES = 5  # publications timed per run
API_VIEWS = ("/regions/ID", "/regions/ID/children", "/rankings?level=province", "/rankings?kind=kota&limit=500")


def participant(pid: str, region: str, kecamatan: str | None) -> ev.Participant:
    return ev.Participant(
        participant_id=pid,
        nik_hash=f"hash-{pid}",
        nik_masked="3271**********01",
        status=ev.ParticipantStatus.ACTIVE,
        region_code=region,
        province_code=region[:2],
        kecamatan_code=kecamatan,
        segment=ev.Segment.BPU,
        category=ev.Category.VULNERABLE,
        programs=[ev.Program.JKK, ev.Program.JKM],
        funding_source=ev.FundingSource.APBD,
        contributions=ev.Contributions(
            as_of=date(2026, 1, 1),
            by_program={ev.Program.JKK: 16_800},
            by_payer={ev.Payer.FUNDER: 16_800},
            total=16_800,
        ),
        sex=ev.Sex.FEMALE,
        age_band=ev.AgeBand.FROM_30,
        coverage_start=date(2026, 1, 1),
    )


def registered(pid: str, region: str, kecamatan: str | None) -> Record:
    data = ev.Registered(
        request_id=f"r-{pid}", partner_id="bench", request_event_id=f"q-{pid}", version=1,
        participant=participant(pid, region, kecamatan),
    )  # fmt: skip
    value, headers = encode(ev.ParticipantRegistered(source="lindungi/registration", time=datetime.now(UTC), data=data))
    return f"hash-{pid}".encode(), value, [(k, v.encode()) for k, v in headers.items()]


def population(h: Harness) -> list[Record]:
    """Two participants in every kecamatan (the full scale) or in the first hundred (smoke), one more at the
    level of every regency/city: every region of the barometers and the map has figures."""
    regions = load_regions()
    kecamatan = regions.at_level("kecamatan")
    chosen = kecamatan if h.scale.thresholds else kecamatan[:100]
    records = [registered(f"{h.tag}-{k.code}-{i}", k.code.rsplit(".", 1)[0], k.code) for k in chosen for i in range(2)]
    records += [registered(f"{h.tag}-{r.code}", r.code, None) for r in regions.at_level("regency/city")]
    return records


async def folded(proc: Proc, events: int, within: float) -> None:
    deadline = time.monotonic() + within
    async with httpx.AsyncClient(base_url=proc.url) as client:
        while True:
            proc.check_alive()
            answer = await client.get("/regions/ID")
            if answer.status_code == 200 and sum(answer.json()["source_offsets"].values()) >= events:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"reporting folded fewer than {events} events in {within:.0f} s")
            await asyncio.sleep(0.5)


async def load(browser: Browser, url: str) -> dict[str, float]:
    """One cold load: paint times (ms from navigation start) and bytes transferred, by what they were."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    page = await context.new_page()
    try:
        await page.goto(url)
        await page.wait_for_function(
            "performance.getEntriesByName('first-contentful-paint').length > 0"
            " && (!document.getElementById('live') || performance.getEntriesByName('dashboard-drawn').length > 0)"
            " && (!document.querySelector('[data-geometry]')"
            "     || performance.getEntriesByType('resource').some(e => e.name.includes('/geo/')))"
        )
        return dict(
            await page.evaluate(
                """() => {
                const paint = performance.getEntriesByName('first-contentful-paint')[0].startTime;
                const drawn = performance.getEntriesByName('dashboard-drawn');
                const navigation = performance.getEntriesByType('navigation')[0];
                const resources = performance.getEntriesByType('resource');
                const bytes = (entries) => entries.reduce((sum, e) => sum + e.transferSize, 0);
                const geometry = resources.filter((e) => e.name.includes('/geo/'));
                return {
                    fcp: paint,
                    meaningful: Math.max(paint, drawn.length ? drawn[0].startTime : 0),
                    html: navigation.transferSize,
                    without_geometry: navigation.transferSize
                        + bytes(resources.filter((e) => !e.name.includes('/geo/'))),
                    geometry: bytes(geometry),
                    requests: resources.length + 1,
                };
            }"""
            )
        )
    finally:
        await context.close()


async def api_bytes(proc: Proc) -> float:
    """The national view's figures as the JSON API serves them, gzip-compressed as a server would send them."""
    total = 0
    async with httpx.AsyncClient(base_url=proc.url) as client:
        for path in API_VIEWS:
            total += len(gzip.compress((await client.get(path)).content, compresslevel=6))
    return total / 1024


class CityAggregate:
    """When the compacted topic first carries Kota Bogor's snapshot with a given count."""

    def __init__(self) -> None:
        self.seen: dict[int, float] = {}

    def __call__(self, record: ConsumerRecord[bytes, bytes], _arrived: float) -> None:
        if record.key == CITY.encode() and record.value is not None:
            active = json.loads(record.value)["data"]["active"]
            self.seen.setdefault(int(active), time.time())


async def updates(
    h: Harness, page: Page, proc: Proc, outcomes: str, city: CityAggregate
) -> tuple[list[float], list[float]]:
    """Publish one enrollment at a time; milliseconds to the page and to the topic for each."""
    await page.goto(f"{proc.url}/dashboard/{CITY}")
    await page.wait_for_function("document.getElementById('live').dataset.drawn")
    to_page, to_topic = [], []
    for n in range(UPDATES):
        before = int((await page.locator("#hl-active").inner_text()).replace(".", "").replace(",", ""))
        await page.evaluate(
            """(expected) => {
                window.seenAt = null;
                const root = document.getElementById('live');
                const check = () => {
                    const shown = document.getElementById('hl-active');
                    const count = shown ? shown.textContent.replace(/[.,]/g, '') : null;
                    if (!window.seenAt && count === expected) window.seenAt = Date.now();
                };
                new MutationObserver(check).observe(root, {childList: true, subtree: true, characterData: true});
            }""",
            str(before + 1),
        )
        record = registered(f"{h.tag}-update-{n}-{time.monotonic_ns()}", CITY, f"{CITY}.01")
        await asyncio.to_thread(fill, h.kafka.bootstrap, outcomes, [record])
        published = time.time()
        await page.wait_for_function("window.seenAt !== null", timeout=30_000)
        to_page.append(await page.evaluate("window.seenAt") - published * 1000)
        deadline = time.monotonic() + 30
        while before + 1 not in city.seen and time.monotonic() < deadline:  # noqa: ASYNC110 - the follower's task fills it
            await asyncio.sleep(0.05)
        to_topic.append((city.seen.get(before + 1, float("inf")) - published) * 1000)
    return to_page, to_topic


async def run(h: Harness) -> Section:
    outcomes = h.name("dash", "outcomes")
    await h.kafka.create_topic(outcomes, topics.ENROLLMENT_OUTCOMES.partitions)
    env = reporting_env(h, outcomes, "dash")
    await create_reporting_topics(h, env)
    records = population(h)
    await asyncio.to_thread(fill, h.kafka.bootstrap, outcomes, records)
    proc = h.service("reporting", "dash", env)
    proc.start()
    city = CityAggregate()
    follower = Follower(h.kafka.bootstrap, env["REPORTING_REGION_AGGREGATES_TOPIC"], city)
    paint, paint_404 = Figure("ms"), Figure("ms")
    fcp, size, size_geo, size_api = Figure("ms"), Figure("KB"), Figure("KB"), Figure("KB")
    to_page, to_topic = Figure("ms"), Figure("ms")
    requests = 0.0
    try:
        await proc.wait_ready()
        await folded(proc, len(records), h.scale.budget)
        await follower.start()
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            try:
                await load(browser, f"{proc.url}/dashboard")  # warm-up: the service's templates and figures
                for _ in range(h.runs):
                    national = await load(browser, f"{proc.url}/dashboard")
                    missing = await load(browser, f"{proc.url}/dashboard/00")
                    paint.add(national["meaningful"])
                    fcp.add(national["fcp"])
                    paint_404.add(missing["fcp"])
                    size.add(national["without_geometry"] / 1024)
                    size_geo.add((national["without_geometry"] + national["geometry"]) / 1024)
                    size_api.add(await api_bytes(proc))
                    requests = national["requests"]
                    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
                    page = await context.new_page()
                    pages, snapshots = await updates(h, page, proc, outcomes, city)
                    await context.close()
                    for value in pages:
                        to_page.add(value)
                    for value in snapshots:
                        to_topic.add(value)
            finally:
                await browser.close()
    finally:
        await follower.stop()
        proc.stop()
    return report(
        h,
        records=records,
        paints=(paint, paint_404, fcp),
        sizes=(size, size_api, size_geo),
        updated=(to_page, to_topic),
        requests=requests,
    )


def report(  # noqa: PLR0913 - the figures, grouped by budget
    h: Harness,
    *,
    records: list[Record],
    paints: tuple[Figure, Figure, Figure],
    sizes: tuple[Figure, Figure, Figure],
    updated: tuple[Figure, Figure],
    requests: float,
) -> Section:
    paint, paint_404, fcp = paints
    size, size_api, size_geo = sizes
    to_page, to_topic = updated
    regions = load_regions()
    populated = "every" if h.scale.thresholds else "100 of the"
    section = Section("dashboard")
    section.rows += [
        Row("dashboard", f"national view: first meaningful paint ({len(records):,} participants, {populated} "
            f"{len(regions.at_level('kecamatan')):,} kecamatan)", paint, paint_404, "404 page, same service",
            ratios(paint, paint_404), "< 1 s", h.judge(paint.median < 1000)),
        Row("dashboard", "national view: transferred, gzip, without map geometry", size, size_api,
            "the same figures from the JSON API, gzip", ratios(size, size_api), "< 500 KB", h.judge(size.median < 500)),
        Row("dashboard", "enrollment published → visible on an open page", to_page, to_topic,
            "→ the regency/city's snapshot on the topic", ratios(to_page, to_topic), "< 2 s",
            h.judge(to_page.median < 2000)),
    ]  # fmt: skip
    section.details.append(
        table(
            ["measure", "median (min–max)"],
            [
                ["first contentful paint", fcp.format()],
                ["first meaningful paint (every chart drawn)", paint.format()],
                ["transferred with the province geometry", size_geo.format()],
                ["requests for the national view", f"{requests:.0f}"],
                [f"update → page ({UPDATES} publications a run)", to_page.format()],
                ["update → snapshot on the aggregates topic", to_topic.format()],
            ],
        )
    )
    section.notes += [
        (
            "Chromium is Debian's (/usr/bin/chromium) driven by Playwright; every load is a fresh browser context, "
            "so nothing is cached. Times are the browser's own (Paint and Resource Timing, performance.mark)."
        ),
        (
            "The page polls its live route once a second and the service writes its read model every "
            "`REPORTING_COMMIT_INTERVAL_SECONDS` (1 s): an update shows within about two seconds by design, and "
            "may show before the coalesced snapshot reaches the topic."
        ),
    ]
    return section
