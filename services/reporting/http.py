"""The read API: the same figures as the published snapshots, computed from the same read model.

    GET /regions[?level=...]               regions with data (summary rows)
    GET /regions/{code}                    one region's full figures
    GET /regions/{code}/children           its children's full figures, and what is counted at its own level
    GET /rankings?scope=national|<prov>[&kind=kota|kabupaten][&level=province][&limit=50&offset=0]
                                           the barometer, a page at a time (`province=` is `scope=`)
    GET /regions.csv[?level=...]           every region with data, one flat row each
    GET /budgets[?region=32.71&year=2027]  APBD/APBDes budgets: allocation, reserved, spent to date, remaining,
                                           runway, the cost of full coverage (a region's own, not its children's)
    GET /budgets.csv[?region=...&year=...] the same, one flat row per budget

Errors carry a message in Bahasa Indonesia and in English. The shapes of the answers (JSON rows, CSV columns)
are the API's and live here; the figures in them come from the domain.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import parse_qs, unquote, urlencode

from faststream.asgi import AsgiResponse

from services.reporting.domain.counters import level_of
from services.reporting.domain.figures import rank_provinces
from shared.events.aggregates import FullCoverage
from shared.regions import Level

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable, Mapping

    from faststream.asgi.types import ASGIApp, Receive, Scope, Send

    from services.reporting.domain.figures import Figures, Ranked
    from shared.events import RegionAggregate
    from shared.events.aggregates import BudgetFigures
    from shared.regions import Regions

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
        "level": row.level,
        "province_code": row.province_code,
        "kind": None if row.level == "province" else "kota" if row.kota else "kabupaten",
        "active": row.active,
        "coverage": row.coverage.model_dump(mode="json"),
        "rank_national": row.rank_national,
        "rank_in_province": None if row.level == "province" else row.rank_in_province,
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
        **_flat("migrations", aggregate.migrations),
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


def budget_csv_row(budget: BudgetFigures) -> dict[str, Any]:
    """A budget as one flat row: the full-coverage figures prefixed `full_coverage_`, blanks for none."""
    row = budget.model_dump(mode="json", exclude={"full_coverage"})
    full = budget.full_coverage.model_dump(mode="json") if budget.full_coverage is not None else {}
    for name in FullCoverage.model_fields:  # the same columns whether or not this budget has the figures
        row[f"full_coverage_{name}"] = full.get(name)
    return {key: "" if value is None else value for key, value in row.items()}


def budgets_csv(budgets: Iterable[BudgetFigures]) -> str:
    rows = [budget_csv_row(b) for b in budgets]
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()


DEFAULT_PAGE = 50
MAX_PAGE = 500
MAX_DIGITS = 9  # an offset beyond any list, still a small int
Kind = Literal["kota", "kabupaten"]
RankedLevel = Literal["regency/city", "province"]


class BadParameterError(ValueError):
    """A query parameter the API cannot answer, said in Bahasa Indonesia and in English."""

    def __init__(self, message_id: str, message_en: str) -> None:
        super().__init__(message_en)
        self.message_id = message_id
        self.message_en = message_en


def _count(query: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    # Digits only: int() would also take "+5", " 5" and "5_0".
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= MAX_DIGITS else -1
    if value < low or (high is not None and value > high):
        upper = f" dan paling banyak {high}" if high is not None else ""
        upper_en = f" and at most {high}" if high is not None else ""
        raise BadParameterError(
            f"{name} harus bilangan bulat paling sedikit {low}{upper}",
            f"{name} must be a whole number of at least {low}{upper_en}",
        )
    return value


@dataclass(frozen=True)
class RankingQuery:
    """What `GET /rankings` was asked: which list (regencies/cities nationally or of one province, optionally
    only kota or kabupaten; or the provinces) and which page of it."""

    scope: str = "national"
    kind: Kind | None = None
    level: RankedLevel = "regency/city"
    limit: int = DEFAULT_PAGE
    offset: int = 0

    @classmethod
    def parse(cls, query: Mapping[str, str], regions: Regions) -> RankingQuery:
        """`province=32` is `scope=32` under the name a reader looks for; both at once must agree."""
        scope = query.get("scope", "national")
        province = query.get("province")
        if province is not None:
            if province not in regions or level_of(province) != "province":
                raise BadParameterError("province harus kode provinsi", "province must be a province code")
            if "scope" in query and scope != province:
                raise BadParameterError(
                    "scope dan province berbeda; pakai salah satu", "scope and province differ; give one of them"
                )
            scope = province
        if scope != "national" and (scope not in regions or level_of(scope) != "province"):
            raise BadParameterError(
                "scope harus `national` atau kode provinsi", "scope must be `national` or a province code"
            )
        kind = _kind(query.get("kind"))
        level = query.get("level", "regency/city")
        if level not in {"regency/city", "province"}:
            raise BadParameterError(
                "level peringkat harus `regency/city` atau `province`",
                "the level of a ranking must be `regency/city` or `province`",
            )
        if level == "province" and (scope != "national" or kind is not None):
            raise BadParameterError(
                "peringkat provinsi hanya nasional, tanpa kind",
                "provinces are ranked nationally only, without kind",
            )
        return cls(
            scope=scope,
            kind=kind,
            level="province" if level == "province" else "regency/city",
            limit=_count(query, "limit", DEFAULT_PAGE, 1, MAX_PAGE),
            offset=_count(query, "offset", 0, 0, None),
        )

    def page_href(self, offset: int) -> str:
        """The same list from `offset` on, with this page's size."""
        params = {"scope": self.scope, "kind": self.kind, "level": self.level, "limit": self.limit, "offset": offset}
        return "/rankings?" + urlencode({k: v for k, v in params.items() if v is not None})


def _kind(raw: str | None) -> Kind | None:
    match raw:
        case None:
            return None
        case "kota":
            return "kota"
        case "kabupaten":
            return "kabupaten"
        case _:
            raise BadParameterError("kind harus `kota` atau `kabupaten`", "kind must be `kota` or `kabupaten`")


class RegionsApi:
    """One ASGI app for every read route; `figures()` gives the read model at the moment of the request."""

    def __init__(self, figures: Callable[[], Figures | None]) -> None:
        self.figures = figures

    def routes(self) -> list[tuple[str, ASGIApp]]:
        return [
            ("/regions", self),
            ("/regions.csv", self),
            ("/rankings", self),
            ("/budgets", self),
            ("/budgets.csv", self),
        ]

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
        if path in {"/regions", "/regions.csv"}:
            return self._regions(figures, level, csv=path.endswith(".csv"))
        if path == "/rankings":
            return self._rankings(figures, query)
        if path in {"/budgets", "/budgets.csv"}:
            return self._budgets(figures, query, csv=path.endswith(".csv"))
        return self._region(figures, path)

    def _regions(self, figures: Figures, level: str | None, *, csv: bool) -> AsgiResponse:
        if csv:
            body = to_csv(self._with_data(figures, level)).encode()
            return AsgiResponse(body, 200, headers={"content-type": "text/csv; charset=utf-8"})
        return _json({"as_of": figures.as_of, "regions": [_summary(a) for a in self._with_data(figures, level)]})

    def _budgets(self, figures: Figures, query: dict[str, str], *, csv: bool) -> AsgiResponse:
        region = query.get("region")
        if region is not None and not self._known(figures, region):
            return _error(404, f"wilayah {region!r} tidak dikenal", f"unknown region {region!r}")
        try:
            year = _count(query, "year", 0, 2015, 2100) if "year" in query else None
        except BadParameterError as error:
            return _error(400, error.message_id, error.message_en)
        budgets = figures.budget_list(region, year)
        if csv:
            body = budgets_csv(budgets).encode()
            return AsgiResponse(body, 200, headers={"content-type": "text/csv; charset=utf-8"})
        return _json({"as_of": figures.as_of, "budgets": [b.model_dump(mode="json") for b in budgets]})

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
        return code in figures.policy.regions or code in figures.model.codes() or code in figures.with_budgets()

    @staticmethod
    def _with_data(figures: Figures, level: str | None) -> list[RegionAggregate]:
        codes = sorted(figures.model.codes(), key=lambda c: (LEVELS.index(level_of(c)), c))
        return [figures.region(c) for c in codes if level is None or level_of(c) == level]

    @staticmethod
    def _rankings(figures: Figures, query: dict[str, str]) -> AsgiResponse:
        try:
            wanted = RankingQuery.parse(query, figures.policy.regions)
        except BadParameterError as error:
            return _error(400, error.message_id, error.message_en)
        if wanted.level == "province":
            rows = rank_provinces(figures.model, figures.policy)
        else:
            rows = figures.ranking(wanted.scope, wanted.kind)
        page = rows[wanted.offset : wanted.offset + wanted.limit]
        following = wanted.offset + len(page)
        # `position` is the place in the whole list (e.g. among kota only), not in the page; the ranks count
        # every regency/city. The envelope only gains fields, so a caller reading `rankings` keeps working.
        return _json(
            {
                "as_of": figures.as_of,
                "scope": wanted.scope,
                "kind": wanted.kind,
                "level": wanted.level,
                "total": len(rows),
                "limit": wanted.limit,
                "offset": wanted.offset,
                "next": wanted.page_href(following) if following < len(rows) else None,
                "rankings": [{"position": i, **_ranked(r)} for i, r in enumerate(page, start=wanted.offset + 1)],
            }
        )
