"""The dashboard's routes, pure: pages in both languages, the 404 page in the reader's language, small-cell
suppression exactly as the API applies it, the live route's versions, the CSV, the static files. The same
pages in a real browser against a real service are in tests/e2e/dashboard."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.reporting.dashboard import Dashboard
from services.reporting.dashboard.assets import SCRIPTS
from services.reporting.domain.counters import ACTIVE, flow_key
from services.reporting.domain.coverage import CoveragePolicy
from services.reporting.domain.figures import Figures
from services.reporting.domain.read_model import ReadModel
from services.reporting.http import RegionsApi
from shared.regions import load_regions

REGIONS = load_regions()
NOW = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)  # 10:00 WIB


def model(active: dict[str, int]) -> ReadModel:
    read_model = ReadModel()
    read_model.add({code: {ACTIVE: n, "category/VULNERABLE": n} for code, n in active.items()})
    read_model.set_offset("outcomes", 0, sum(active.values()))
    return read_model


def call(app: Any, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET through an ASGI app, as a server would make it."""
    route, _, query = path.partition("?")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    raw = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "method": "GET", "path": route, "query_string": query.encode(), "headers": raw}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer = {k.decode(): v.decode() for k, v in start["headers"]}
    if answer.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    return start["status"], answer, body


def apps(active: dict[str, int], suppress_below: int = 0) -> tuple[Dashboard, RegionsApi, ReadModel]:
    read_model = model(active)
    policy = CoveragePolicy(REGIONS, 0.69, 0.68)
    figures = lambda: Figures(read_model, policy, NOW, suppress_below)  # noqa: E731 - the apps' own callable
    return Dashboard(figures), RegionsApi(figures), read_model


def text(html: bytes) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode()))


def test_the_national_page_is_in_bahasa_indonesia_with_indonesian_numbers() -> None:
    dashboard, _, _ = apps({"32.71.01": 12_345, "33.74": 1_000})
    status, headers, body = call(dashboard, "/dashboard")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert '<html lang="id">' in body.decode()
    page = text(body)
    assert "Peserta aktif" in page
    assert "13.345" in page  # 12,345 + 1,000 with the Indonesian thousands separator
    assert "5 Maret 2026, 10.00.00 WIB" in page


def test_english_by_query_is_remembered_in_a_cookie_for_the_next_page() -> None:
    dashboard, _, _ = apps({"32.71.01": 12_345})
    status, headers, body = call(dashboard, "/dashboard/32.71?lang=en")
    assert status == 200
    assert '<html lang="en">' in body.decode()
    assert "Active participants" in text(body)
    assert "12,345" in text(body)
    assert headers["set-cookie"].startswith("lindungi_lang=en;")
    _, _, next_page = call(dashboard, "/dashboard/32", {"cookie": "lindungi_lang=en"})
    assert '<html lang="en">' in next_page.decode()


def test_an_unknown_region_is_a_404_page_in_the_readers_language() -> None:
    dashboard, _, _ = apps({"32.71.01": 5})
    status, _, body = call(dashboard, "/dashboard/99.99")
    assert status == 404
    assert "Wilayah tidak ditemukan" in text(body)
    status, _, body = call(dashboard, "/dashboard/99.99", {"cookie": "lindungi_lang=en"})
    assert status == 404
    assert "Region not found" in text(body)
    assert call(dashboard, "/dashboard/32.71/nothing")[0] == 404


def test_small_cells_are_suppressed_on_the_page_exactly_as_the_api_suppresses_them() -> None:
    dashboard, api, read_model = apps({"32.71.01": 3, "32.73": 40}, suppress_below=5)
    read_model.add({"32.71.01": {flow_key("enrollments", "day/2026-03-05"): 2}})
    _, _, served = call(api, "/regions/32.71")
    assert json.loads(served)["active"] == "<5"
    _, _, body = call(dashboard, "/dashboard/32.71")
    html = body.decode()
    assert re.search(r'id="hl-active">&lt;5<', html)
    # The barometer's row of Kota Bogor hides its count too; Kota Bandung's 40 stays.
    bogor = re.search(r'<tr data-label="Kota Bogor".*?</tr>', html, flags=re.DOTALL)
    assert bogor is not None
    assert "&lt;5" in bogor.group()
    assert 'data-value="3.0"' not in bogor.group()
    # The trend's day counter (2) is hidden as well: no chart value, the API's marker instead.
    trend = re.search(r'id="t-flows-trend".*?</table>', html, flags=re.DOTALL)
    assert trend is not None
    assert "&lt;5" in trend.group()
    assert "Angka 1 sampai 4 ditampilkan sebagai &lt;5" in html


def test_the_live_route_sends_new_content_only_when_the_figures_moved() -> None:
    dashboard, _, read_model = apps({"32.71.01": 7})
    _, _, first = call(dashboard, "/dashboard/32.71/live")
    answer = json.loads(first)
    assert "html" in answer
    assert answer["as_of"] == "Data per 5 Maret 2026, 10.00.00 WIB"
    _, _, same = call(dashboard, f"/dashboard/32.71/live?v={answer['version']}")
    assert "html" not in json.loads(same)
    read_model.add({"32.71.01": {ACTIVE: 2}})
    read_model.set_offset("outcomes", 0, 9)
    _, _, moved = call(dashboard, f"/dashboard/32.71/live?v={answer['version']}")
    assert 'id="hl-active">9<' in json.loads(moved)["html"]


def test_the_csv_of_a_view_has_the_apis_columns_for_the_region_and_the_regions_below_it() -> None:
    dashboard, api, _ = apps({"32.71.01": 7, "32.71.02": 3})
    status, headers, body = call(dashboard, "/dashboard/32.71.csv")
    assert status == 200
    assert headers["content-type"].startswith("text/csv")
    assert 'filename="lindungi-32.71-' in headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    _, _, api_csv = call(api, "/regions.csv")
    assert list(rows[0]) == next(csv.reader(io.StringIO(api_csv.decode())))
    assert rows[0]["region_code"] == "32.71"
    assert {r["region_code"] for r in rows[1:]} == {k.code for k in REGIONS.children("32.71")}


def test_static_files_are_served_compressed_and_cached_by_digest_and_nothing_outside_them() -> None:
    dashboard, _, _ = apps({"32.71.01": 1})
    _, _, body = call(dashboard, "/dashboard")
    for script in SCRIPTS:
        url = re.search(rf'src="(/dashboard/static/{re.escape(script)}\?v=\w+)"', body.decode())
        assert url is not None, script
        status, headers, _ = call(dashboard, url.group(1).replace("&amp;", "&"), {"accept-encoding": "gzip"})
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert "immutable" in headers["cache-control"]
    assert call(dashboard, "/dashboard/static/../routes.py")[0] == 404
    assert call(dashboard, "/dashboard/static/vendor/README.md")[0] == 404


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/32", "/dashboard/32.71", "/dashboard/32.71.01"])
def test_every_resource_a_page_loads_is_served_by_the_service_itself(path: str) -> None:
    dashboard, _, _ = apps({"32.71.01": 1})
    status, _, body = call(dashboard, path)
    assert status == 200
    html = body.decode()
    loaded = re.findall(r'<(?:script|img|link)[^>]*(?:src|href)="([^"]+)"', html)
    assert loaded
    assert all(url.startswith(("/dashboard/", "data:")) for url in loaded), loaded
    assert not any("://" in url for url in loaded), loaded
