"""The dashboard's routes, one ASGI app mounted under `/dashboard` by app.py:

    GET /dashboard[/ID]               the nation
    GET /dashboard/{code}             a province, regency/city or kecamatan (shareable: `/dashboard/32.71`)
    GET /dashboard/{code}/live?v=...  what the page polls: the figures' version, the as-of time, and the new
                                      content when the version moved
    GET /dashboard/{code}.csv         the view as CSV: the region and the regions below it, the API's columns
    GET /dashboard/static/{file}      the stylesheet, the scripts, the charting library, the boundaries

Language: `?lang=id|en` (remembered in a cookie for the next page), else the cookie, else Bahasa Indonesia.
An unknown region is a 404 page in that language. The figures are the API's (`Figures` from the same read
model, with the same small-cell suppression); the page is rendered here, so it reads without JavaScript too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from faststream.asgi import AsgiResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.reporting.dashboard import views
from services.reporting.dashboard.assets import GEOMETRY, GEOMETRY_CODES_BY_NAME, SCRIPTS, Assets, maybe_compressed
from services.reporting.dashboard.i18n import LANGUAGES, WIB, Language, Words
from services.reporting.http import to_csv
from shared.regions import NATIONAL_CODE

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from faststream.asgi.types import ASGIApp, Receive, Scope, Send

    from services.reporting.domain.figures import Figures

PREFIX = "/dashboard"
TEMPLATES = Path(__file__).resolve().parent / "templates"
COOKIE = "lindungi_lang"
HTML = "text/html; charset=utf-8"


def _environment(assets: Assets) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        asset=assets.url,
        scripts=SCRIPTS,
        geometry=GEOMETRY,
        geometry_codes=json.dumps(GEOMETRY_CODES_BY_NAME),
        languages=LANGUAGES,
    )
    return env


class Dashboard:
    """`figures()` gives the read model at the moment of the request, as it does to the API."""

    def __init__(self, figures: Callable[[], Figures | None], assets: Assets | None = None) -> None:
        self.figures = figures
        self.assets = assets or Assets()
        self.templates = _environment(self.assets)

    def routes(self) -> list[tuple[str, ASGIApp]]:
        return [(PREFIX, self)]

    def with_fallback(self, fallback: ASGIApp) -> Callable[[Scope, Receive, Send], Coroutine[Any, Any, None]]:
        """`/dashboard/...` for an app that only matches exact paths; anything else goes to `fallback`."""

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith(PREFIX + "/"):
                await self(scope, receive, send)
            else:
                await fallback(scope, receive, send)

        return app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        lang = _language(query, headers.get("cookie", ""))
        if scope.get("method", "GET") not in {"GET", "HEAD"}:
            response = self._page("error.html", lang, 405, headers, here=PREFIX)
        else:
            response = self._route(unquote(scope["path"]), query, headers, lang)
        if query.get("lang") in LANGUAGES and (b"content-type", HTML.encode()) in response.raw_headers:
            response.raw_headers.append(
                (b"set-cookie", f"{COOKIE}={lang}; Path={PREFIX}; Max-Age=31536000; SameSite=Lax".encode())
            )
        await response(scope, receive, send)

    def _route(self, path: str, query: dict[str, str], headers: dict[str, str], lang: Language) -> AsgiResponse:
        rest = path.removeprefix(PREFIX).strip("/")
        if rest.startswith("static/"):
            return self._static(rest.removeprefix("static/"), query, headers)
        figures = self.figures()
        if figures is None:
            return self._page("not_ready.html", lang, 503, headers, here=path)
        code, _, tail = (rest or NATIONAL_CODE).partition("/")
        csv = code.endswith(".csv") and not tail
        code = code.removesuffix(".csv") if csv else code
        if not views.known(figures, code) or tail not in {"", "live"}:
            return self._page("not_found.html", lang, 404, headers, here=path, code=code)
        if csv:
            return self._csv(figures, code)
        if tail == "live":
            return self._live(figures, code, lang, query.get("v"), headers)
        page = views.page(figures, code, Words(lang))
        here = PREFIX if code == NATIONAL_CODE else f"{PREFIX}/{code}"
        return self._page("region.html", lang, 200, headers, here=here, page=page, version=views.version(figures))

    def _page(
        self, template: str, lang: Language, status: int, headers: Mapping[str, str], **context: Any
    ) -> AsgiResponse:
        words = Words(lang)
        body = self.templates.get_template(template).render(w=words, lang=lang, status=status, **context).encode()
        body, extra = maybe_compressed(body, headers.get("accept-encoding", ""))
        return AsgiResponse(body, status, {"content-type": HTML, "cache-control": "no-cache", **extra})

    def _live(
        self, figures: Figures, code: str, lang: Language, seen: str | None, headers: Mapping[str, str]
    ) -> AsgiResponse:
        words = Words(lang)
        current = views.version(figures)
        when = words.moment(figures.as_of)
        answer: dict[str, Any] = {"version": current, "when": when, "as_of": words("as_of", when=when)}
        if seen != current:
            page = views.page(figures, code, words)
            answer["html"] = self.templates.get_template("live.html").render(w=words, lang=lang, page=page)
        body, extra = maybe_compressed(
            json.dumps(answer, ensure_ascii=False).encode(), headers.get("accept-encoding", "")
        )
        return AsgiResponse(
            body, 200, {"content-type": "application/json; charset=utf-8", "cache-control": "no-store", **extra}
        )

    @staticmethod
    def _csv(figures: Figures, code: str) -> AsgiResponse:
        day = datetime.now(UTC).astimezone(WIB).date().isoformat()
        body = to_csv([figures.region(code), *figures.children(code)]).encode()
        return AsgiResponse(
            body,
            200,
            {
                "content-type": "text/csv; charset=utf-8",
                "content-disposition": f'attachment; filename="lindungi-{code}-{day}.csv"',
            },
        )

    def _static(self, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> AsgiResponse:
        asset = self.assets.get(path)
        if asset is None:
            return AsgiResponse(b"not found", 404, {"content-type": "text/plain; charset=utf-8"})
        cache = "public, max-age=31536000, immutable" if query.get("v") == asset.digest else "no-cache"
        common = {"content-type": asset.content_type, "cache-control": cache, "vary": "accept-encoding"}
        if "gzip" in headers.get("accept-encoding", ""):
            return AsgiResponse(asset.compressed, 200, {**common, "content-encoding": "gzip"})
        return AsgiResponse(asset.body, 200, common)


def _language(query: Mapping[str, str], cookie_header: str) -> Language:
    asked = query.get("lang")
    if asked is None:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(cookie_header)
        except CookieError:  # a malformed header is no preference
            return "id"
        morsel = cookies.get(COOKIE)
        asked = morsel.value if morsel is not None else None
    return "en" if asked == "en" else "id"
