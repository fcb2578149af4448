"""The read API: the same figures as the published snapshots, computed from the same read model.

    GET /regions[?level=...]               regions with data (summary rows)
    GET /regions/{code}                    one region's full figures
    GET /regions/{code}/children           its children's full figures, and what is counted at its own level
    GET /rankings?scope=national|<prov>[&kind=kota|kabupaten]   the barometer
    GET /regions.csv[?level=...]           every region with data, one flat row each

Errors carry a message in Bahasa Indonesia and in English. The shapes of the answers (JSON rows, CSV columns)
are the API's and live here; the figures in them come from the domain.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import parse_qs, unquote

from faststream.asgi import AsgiResponse

from services.reporting.domain.counters import level_of
from shared.regions import Level

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Mapping

    from faststream.asgi.types import ASGIApp, Receive, Scope, Send

    from services.reporting.domain.figures import Figures, Ranked
    from shared.events import RegionAggregate

LEVELS: tuple[str, ...] = get_args(Level)
PREFIX = "/regions/"


def _json(body: object, status: int = 200) -> AsgiResponse:
    return AsgiResponse(
        json.dumps(body, default=str, ensure_ascii=False).encode(),
        status,
        headers={"content-type": "application/json; charset=utf-8"},
    )


def _error(status: int, message_id: str, message_en: str) -> AsgiResponse:
    return _json({"error": {"message_id": message_id, "message_en": message_en}}, status)


def _summary(aggregate: RegionAggregate) -> dict[str, Any]:
    return {
        "region_code": aggregate.region_code,
        "region_name": aggregate.region_name,
        "level": aggregate.level,
        "parent_code": aggregate.parent_code,
        "active": aggregate.active,
        "coverage_ratio": aggregate.coverage.ratio if aggregate.coverage else None,
        "rank_national": aggregate.rank_national,
        "href": f"/regions/{aggregate.region_code}",
    }


def _ranked(row: Ranked) -> dict[str, Any]:
    return {
        "region_code": row.region_code,
        "region_name": row.region_name,
        "province_code": row.province_code,
        "kind": "kota" if row.kota else "kabupaten",
        "active": row.active,
        "coverage": row.coverage.model_dump(mode="json"),
        "rank_national": row.rank_national,
        "rank_in_province": row.rank_in_province,
    }


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}_{key}": value for key, value in values.items()}


def csv_row(aggregate: RegionAggregate) -> dict[str, Any]:
    coverage = aggregate.coverage
    return {
        "region_code": aggregate.region_code,
        "region_name": aggregate.region_name,
        "level": aggregate.level,
        "parent_code": aggregate.parent_code or "",
        "as_of": aggregate.as_of.isoformat(),
        "business_date": aggregate.business_date.isoformat() if aggregate.business_date else "",
        "active": aggregate.active,
        **_flat("enrollments", aggregate.enrollments),
        **_flat("terminations", aggregate.terminations),
        **_flat("reactivations", aggregate.reactivations),
        **_flat("segment", aggregate.by_segment),
        **_flat("category", aggregate.by_category),
        **_flat("program", aggregate.by_program),
        **_flat("funding_source", aggregate.by_funding_source),
        **_flat("sex", aggregate.by_sex),
        **_flat("age_band", aggregate.by_age_band),
        **_flat("monthly_contributions_payer", aggregate.monthly_contributions_by_payer),
        **_flat("monthly_contributions_funding_source", aggregate.monthly_contributions_by_funding_source),
        **_flat("annual_contributions_funding_source", aggregate.annual_contributions_by_funding_source),
        "rejections": aggregate.rejections,
        "coverage_denominator": coverage.denominator if coverage else "",
        "coverage_denominator_source": coverage.denominator_source if coverage else "",
        "coverage_ratio": coverage.ratio if coverage else "",
        "coverage_target_ratio": coverage.target_ratio if coverage and coverage.target_ratio is not None else "",
        "coverage_distance_to_target": (
            coverage.distance_to_target if coverage and coverage.distance_to_target is not None else ""
        ),
        "rank_in_province": aggregate.rank_in_province or "",
        "rank_national": aggregate.rank_national or "",
    }


def to_csv(aggregates: Iterable[RegionAggregate]) -> str:
    rows = [csv_row(a) for a in aggregates]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


class RegionsApi:
    """One ASGI app for every read route; `figures()` gives the read model at the moment of the request."""

    def __init__(self, figures: Callable[[], Figures | None]) -> None:
        self.figures = figures

    def routes(self) -> list[tuple[str, ASGIApp]]:
        return [("/regions", self), ("/regions.csv", self), ("/rankings", self)]

    def with_fallback(self, fallback: ASGIApp) -> Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]:
        """`/regions/{code}...` for an app that only matches exact paths; anything else goes to `fallback`."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith(PREFIX):
                await self(scope, receive, send)
            else:
                await fallback(scope, receive, send)

        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method", "GET") not in {"GET", "HEAD"}:
            response = _error(405, "metode tidak diizinkan", "method not allowed")
        else:
            query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
            response = self._route(unquote(scope["path"]), query)
        await response(scope, receive, send)

    def _route(self, path: str, query: dict[str, str]) -> AsgiResponse:
        level = query.get("level")
        if level is not None and level not in LEVELS:
            return _error(400, f"level harus salah satu dari {LEVELS}", f"level must be one of {LEVELS}")
        figures = self.figures()
        if figures is None:
            return _error(503, "layanan belum siap", "not ready")
        if path == "/regions":
            return _json({"as_of": figures.as_of, "regions": [_summary(a) for a in self._with_data(figures, level)]})
        if path == "/regions.csv":
            body = to_csv(self._with_data(figures, level)).encode()
            return AsgiResponse(body, 200, headers={"content-type": "text/csv; charset=utf-8"})
        if path == "/rankings":
            return self._rankings(figures, query)
        return self._region(figures, path)

    def _region(self, figures: Figures, path: str) -> AsgiResponse:
        code, _, rest = path.removeprefix(PREFIX).partition("/")
        if not self._known(figures, code):
            return _error(404, f"wilayah {code!r} tidak dikenal", f"unknown region {code!r}")
        if rest == "":
            return _json(figures.region(code).model_dump(mode="json"))
        if rest == "children":
            return _json(
                {
                    "region": code,
                    "children": [c.model_dump(mode="json") for c in figures.children(code)],
                    # Children plus this part equal the region (participants without a kecamatan, ...).
                    "unassigned": figures.unassigned(code).model_dump(mode="json"),
                }
            )
        return _error(404, "alamat tidak dikenal", "not found")

    @staticmethod
    def _known(figures: Figures, code: str) -> bool:
        return code in figures.policy.regions or code in figures.model.codes()

    @staticmethod
    def _with_data(figures: Figures, level: str | None) -> list[RegionAggregate]:
        codes = sorted(figures.model.codes(), key=lambda c: (LEVELS.index(level_of(c)), c))
        return [figures.region(c) for c in codes if level is None or level_of(c) == level]

    @staticmethod
    def _rankings(figures: Figures, query: dict[str, str]) -> AsgiResponse:
        scope = query.get("scope", "national")
        if scope != "national" and (scope not in figures.policy.regions or level_of(scope) != "province"):
            return _error(
                400,
                "scope harus `national` atau kode provinsi",
                "scope must be `national` or a province code",
            )
        kind: Literal["kota", "kabupaten"] | None
        match query.get("kind"):
            case None:
                kind = None
            case "kota":
                kind = "kota"
            case "kabupaten":
                kind = "kabupaten"
            case _:
                return _error(400, "kind harus `kota` atau `kabupaten`", "kind must be `kota` or `kabupaten`")
        rows = figures.ranking(scope, kind)
        # `position` is the place in this list (e.g. among kota only); the ranks count every regency/city.
        return _json(
            {
                "as_of": figures.as_of,
                "scope": scope,
                "kind": kind,
                "rankings": [{"position": i, **_ranked(r)} for i, r in enumerate(rows, start=1)],
            }
        )
