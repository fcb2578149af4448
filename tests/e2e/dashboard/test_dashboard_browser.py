"""The coverage dashboard in a real browser (Debian's chromium, headless) against the reporting service run
as a separate process on the real Kafka broker and MongoDB-protocol server.

Each test publishes outcome events to the service's own topic and reads the page as a person would: the
figures move without a reload, drill-down and back, the language switch, the 404 page, the banner when the
service stops answering. Every page is loaded with every request that leaves this machine refused (and
recorded): it must work with no internet. Waits are Playwright's (a bound, not a timed assertion).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from playwright.async_api import Browser, Page, expect
from pymongo import AsyncMongoClient

from services.reporting.domain.counters import WIB
from shared import events as ev
from tests.e2e.dashboard.browser import chromium, offline_context, registrations, reporting_env, start_reporting
from tests.support import publish_events

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.support import ServiceProcess

pytestmark = pytest.mark.e2e

WAIT_MS = 30_000  # how long a page may take to show what was published (bounds the wait only)
BOGOR = "32.71"  # Kota Bogor, Jawa Barat
TARGETS = "region_code,workforce,target_ratio\n32.71,1000,60%\n"  # a small official base: 25 workers show


@pytest.fixture
async def service(
    service_env: dict[str, str], mongodb_url: str, unique: str, tmp_path: Path
) -> AsyncIterator[ServiceProcess]:
    targets = tmp_path / "targets.csv"
    targets.write_text(TARGETS, encoding="utf-8")
    env = reporting_env(service_env, unique, targets)
    running = await start_reporting(env, tmp_path / "reporting.log")
    try:
        yield running
    finally:
        running.stop()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
        try:
            await client.drop_database(env["REPORTING_MONGODB_DATABASE"])
        finally:
            await client.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as running:
        yield running


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context, outside = await offline_context(browser)
    opened = await context.new_page()
    expect.set_options(timeout=WAIT_MS)
    try:
        yield opened
    finally:
        await context.close()
    assert outside == [], f"the page asked for something outside this machine: {outside}"


async def publish(service: ServiceProcess, region: str, count: int, prefix: str) -> None:
    await publish_events(
        service.env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"],
        service.env["REPORTING_OUTCOMES_TOPIC"],
        registrations(region, count, prefix),
    )


async def open_region(page: Page, service: ServiceProcess, code: str) -> None:
    response = await page.goto(f"{service.url}/dashboard/{code}")
    assert response is not None
    assert response.status == 200
    await expect(page.locator("#live")).to_have_attribute("data-drawn", re.compile(r"\d+"))


async def test_published_registrations_show_on_the_open_page_without_a_reload(
    service: ServiceProcess, page: Page, unique: str
) -> None:
    await open_region(page, service, BOGOR)
    await expect(page.locator("#hl-active")).to_have_text("0")
    await expect(page.locator("#hl-coverage")).to_have_text("0,00%")
    await expect(page.locator("#card-coverage")).to_contain_text("angka resmi yang dimuat operator")
    await page.evaluate("window.sameDocument = true")
    await publish(service, BOGOR, 25, unique)
    await expect(page.locator("#hl-active")).to_have_text("25")
    await expect(page.locator("#hl-coverage")).to_have_text("2,50%")  # 25 of an official 1.000
    await expect(page.locator("#card-target")).to_contain_text("kurang 575 peserta")  # 60% of 1.000 - 25
    assert await page.evaluate("window.sameDocument === true"), "the page was reloaded"
    await expect(page.locator("#as-of")).to_contain_text("WIB")
    await expect(page.locator("#d-offsets summary")).to_contain_text("25 peristiwa")
    # The barometer highlights the city itself, and its chart was drawn again from the new table.
    own = page.locator("#t-barometer-province tr.own")
    await expect(own).to_have_attribute("data-label", "Kota Bogor")
    await expect(page.locator("#panel-barometer-province .chart svg").first).to_be_visible()


async def test_drill_down_from_the_map_to_a_kecamatan_and_back(
    service: ServiceProcess, page: Page, unique: str
) -> None:
    await publish(service, BOGOR, 3, unique)
    await open_region(page, service, "")
    await expect(page.locator("#hl-active")).to_have_text("3")
    await page.locator('#panel-map-provinces svg a[*|href="/dashboard/32"]').first.click()
    await expect(page).to_have_url(re.compile(r"/dashboard/32$"))
    await expect(page.locator("h1")).to_contain_text("Jawa Barat")
    await page.locator("#d-barometer-province summary").click()
    await page.locator("#t-barometer-province").get_by_role("link", name="Kota Bogor", exact=True).click()
    await expect(page).to_have_url(re.compile(r"/dashboard/32\.71$"))
    await page.locator("#d-children summary").click()
    await page.locator("#t-children").get_by_role("link", name="Bogor Selatan").click()
    await expect(page).to_have_url(re.compile(r"/dashboard/32\.71\.01$"))
    crumbs = page.get_by_role("navigation", name="Jalur wilayah")
    await expect(crumbs).to_contain_text("Indonesia")
    await expect(crumbs.get_by_role("link", name="Kota Bogor")).to_be_visible()
    await page.go_back()
    await expect(page).to_have_url(re.compile(r"/dashboard/32\.71$"))
    await expect(page.locator("h1")).to_contain_text("Kota Bogor")
    await page.go_back()
    await expect(page.locator("h1")).to_contain_text("Jawa Barat")
    await page.get_by_role("navigation", name="Jalur wilayah").get_by_role("link", name="Indonesia").click()
    await expect(page.locator("h1")).to_contain_text("Indonesia")


async def test_the_language_switch_changes_words_and_numbers_and_is_kept_while_drilling(
    service: ServiceProcess, page: Page, unique: str
) -> None:
    await publish(service, BOGOR, 1, unique)
    await open_region(page, service, BOGOR)
    await expect(page.locator("#card-active h2")).to_have_text("Peserta aktif")
    await expect(page.locator("#card-coverage")).to_contain_text("dari 1.000 angkatan kerja")
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.locator("#card-active h2")).to_have_text("Active participants")
    await expect(page.locator("#card-coverage")).to_contain_text("of a workforce of 1,000")
    await expect(page.locator("#live")).to_have_attribute("data-drawn", re.compile(r"\d+"))
    await page.get_by_role("navigation", name="Region path").get_by_role("link", name="Jawa Barat").click()
    await expect(page.locator("#h-barometer")).to_have_text("Barometer")
    await expect(page.locator("#panel-barometer-provinces h3")).to_have_text("Provinces ranked")
    await page.get_by_role("link", name="Bahasa Indonesia").click()
    await expect(page.locator("#panel-barometer-provinces h3")).to_have_text("Peringkat provinsi")


async def test_an_unknown_region_gives_a_404_page_in_the_pages_language(service: ServiceProcess, page: Page) -> None:
    response = await page.goto(f"{service.url}/dashboard/99.99")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("Wilayah tidak ditemukan")
    await open_region(page, service, BOGOR)
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    response = await page.goto(f"{service.url}/dashboard/99.99")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("h1")).to_have_text("Region not found")
    await expect(page.locator("main")).to_contain_text("99.99")


async def test_the_service_down_shows_a_banner_and_keeps_the_last_figures(
    service: ServiceProcess, page: Page, unique: str
) -> None:
    await publish(service, BOGOR, 7, unique)
    await open_region(page, service, BOGOR)
    await expect(page.locator("#hl-active")).to_have_text("7")
    banner = page.locator("#stale")
    await expect(banner).to_be_hidden()
    service.kill()
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("Data tidak terkini")
    await expect(banner).to_have_attribute("role", "alert")
    await expect(page.locator("#hl-active")).to_have_text("7")
    await expect(page.locator("#panel-by-category .chart svg").first).to_be_visible()
    service.start()
    await service.wait_ready()
    await expect(banner).to_be_hidden()
    await expect(page.locator("#hl-active")).to_have_text("7")


async def test_a_budget_position_shows_the_budget_panel_with_its_chart_and_runway(
    service: ServiceProcess, page: Page
) -> None:
    await open_region(page, service, BOGOR)
    await expect(page.locator("#budgets")).to_have_count(0)  # no budget declared yet: no panel
    now = datetime.now(UTC).replace(microsecond=0)
    key = ev.BudgetKey(region_code=BOGOR, fiscal_year=now.astimezone(WIB).year, funding_source=ev.BudgetSource.APBD)

    def changed(sequence: int, at: datetime, reserved: int, workers: int) -> tuple[str, ev.CloudEvent[Any]]:
        position = ev.BudgetPosition(
            **key.model_dump(),
            sequence=sequence,
            as_of=at,
            allocation=100_000_000,
            allocation_version=1,
            dprd_decision="Perda Kota Bogor 5/2025",
            reserved=reserved,
            workers=workers,
            by_month={},
            holds_waiting=0,
            holds_waiting_amount=0,
        )
        return key.key, ev.BudgetPositionChanged(source="lindungi/registration", data=position)

    await publish_events(
        service.env["LINDUNGI_KAFKA_BOOTSTRAP_SERVERS"],
        service.env["REPORTING_BUDGET_TOPIC"],
        [changed(1, now - timedelta(days=20), 0, 0), changed(2, now, 20_000_000, 3)],
    )
    # Shown without a reload: a budget's position moves the page's version.
    row = page.locator("#t-budget-position tbody tr").first
    await expect(row).to_contain_text("Rp100.000.000")  # allocation
    await expect(row).to_contain_text("Rp80.000.000")  # remaining
    await expect(row).to_contain_text("2,6 bulan")  # 80,000,000 / (20,000,000 in 20 days, per 30.44-day month)
    await expect(page.locator("#panel-budget-position .chart svg").first).to_be_visible()
    # Full coverage from the official workforce of 1.000: round(1.000 x 0,5917) = 592 vulnerable workers.
    await expect(page.locator("#t-budget-full-coverage tbody tr").first).to_contain_text("592")
    await expect(page.locator("#panel-budget-full-coverage")).to_contain_text("Sakernas")
