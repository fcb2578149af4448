"""`GET /rankings`, pure: pages, filters by province and level, order with regions without data last, and
bilingual 400s for parameters it cannot answer. The same routes against a real service are in
tests/integration/reporting."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.reporting.domain.counters import ACTIVE
from services.reporting.domain.coverage import CoveragePolicy
from services.reporting.domain.figures import Figures
from services.reporting.domain.read_model import ReadModel
from services.reporting.http import MAX_PAGE, RegionsApi
from shared.regions import load_regions

REGIONS = load_regions()
NOW = datetime(2026, 3, 5, 3, 0, tzinfo=UTC)
WITH_DATA = {"32.71": 100_000, "32.73": 100_000, "33.74": 50_000, "31.74": 10, "73.71": 1}


def api(active: dict[str, int] = WITH_DATA) -> RegionsApi:
    model = ReadModel()
    model.add({code: {ACTIVE: n} for code, n in active.items()})
    figures = Figures(model, CoveragePolicy(REGIONS, 0.69, 0.68), NOW)
    return RegionsApi(lambda: figures)


def get(app: RegionsApi, path: str) -> tuple[int, Any]:
    """One GET through the ASGI app, as a server would call it."""
    route, _, query = path.partition("?")
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": route, "query_string": query.encode(), "headers": []}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


def test_rankings_come_a_page_at_a_time_with_the_total_and_a_link_to_the_next_page() -> None:
    app = api()
    regencies = len(REGIONS.at_level("regency/city"))
    status, first = get(app, "/rankings")
    assert status == 200
    assert (first["total"], first["limit"], first["offset"], len(first["rankings"])) == (regencies, 50, 0, 50)
    assert first["next"] == "/rankings?scope=national&level=regency%2Fcity&limit=50&offset=50"
    _, last = get(app, f"/rankings?limit={MAX_PAGE}&offset={MAX_PAGE}")
    assert len(last["rankings"]) == regencies - MAX_PAGE
    assert last["next"] is None
    assert [r["position"] for r in last["rankings"]] == list(range(MAX_PAGE + 1, regencies + 1))
    pages = [get(app, f"/rankings?limit=100&offset={o}")[1]["rankings"] for o in range(0, regencies, 100)]
    whole = [r for page in pages for r in page]
    assert [r["rank_national"] for r in whole] == list(range(1, regencies + 1))
    assert get(app, f"/rankings?offset={regencies + 5}")[1]["rankings"] == []


def test_regions_with_data_come_first_by_coverage_and_those_without_data_last() -> None:
    _, body = get(api(), "/rankings?limit=8")
    rows = body["rankings"]
    assert [r["region_code"] for r in rows[:5]] == ["32.71", "32.73", "33.74", "31.74", "73.71"]
    assert [r["active"] for r in rows[5:]] == [0, 0, 0]
    ratios = [r["coverage"]["ratio"] for r in rows]
    assert ratios == sorted(ratios, reverse=True)


def test_a_province_filter_lists_its_regencies_and_cities_and_kind_narrows_it() -> None:
    app = api()
    _, jabar = get(app, "/rankings?province=32&limit=500")
    assert {r["province_code"] for r in jabar["rankings"]} == {"32"}
    assert jabar["total"] == len([r for r in REGIONS.at_level("regency/city") if r.code.startswith("32.")])
    assert jabar["scope"] == "32"
    assert get(app, "/rankings?scope=32&limit=500")[1]["rankings"] == jabar["rankings"]
    _, kota = get(app, "/rankings?province=32&kind=kota")
    assert [r["region_code"] for r in kota["rankings"][:2]] == ["32.71", "32.73"]
    assert all(r["kind"] == "kota" for r in kota["rankings"])


def test_provinces_are_ranked_on_request() -> None:
    _, body = get(api(), "/rankings?level=province&limit=500")
    rows = body["rankings"]
    assert body["total"] == len(rows) == len(REGIONS.at_level("province"))
    assert [r["level"] for r in rows] == ["province"] * len(rows)
    assert [r["region_code"] for r in rows[:4]] == ["32", "33", "31", "73"]
    assert [r["active"] > 0 for r in rows] == [True] * 4 + [False] * (len(rows) - 4)
    assert {(r["kind"], r["rank_in_province"]) for r in rows} == {(None, None)}
    assert [r["rank_national"] for r in rows] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=ten",
        "limit=+5",
        "offset=-1",
        "offset=1.5",
        "province=99",
        "province=32.71",
        "province=32&scope=33",
        "level=kecamatan",
        "level=national",
        "level=province&province=32",
        "level=province&kind=kota",
        "kind=desa",
    ],
)
def test_a_parameter_the_rankings_cannot_answer_is_a_400_in_both_languages(query: str) -> None:
    status, body = get(api(), f"/rankings?{query}")
    assert status == 400, query
    assert set(body["error"]) == {"message_id", "message_en"}
    assert body["error"]["message_id"] != body["error"]["message_en"]
