"""The page's own files: the stylesheet, the script, the charting library vendored from the npm lockfile, and
the province boundaries. Served by the reporting service itself, never from a CDN: the page works on a
machine with no internet.

Each file is read once, at the first request for it, and answered gzip-compressed to a browser that accepts
it. URLs carry the file's digest (`?v=`), so a browser may keep a file for a year and still never runs an
old script against a new page.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
}
# The charting library and what it needs, in the order the page loads them (vendor/README.md says where each
# comes from): d3 first, Observable Plot's UMD build expects the global `d3`.
SCRIPTS = ("vendor/d3.min.js", "vendor/plot.umd.min.js", "vendor/topojson-client.min.js", "dashboard.js")
# Where each vendored file comes from: npm package and path inside it (`make dashboard-vendor` copies them).
VENDORED = {
    "vendor/d3.min.js": ("d3", "dist/d3.min.js"),
    "vendor/plot.umd.min.js": ("@observablehq/plot", "dist/plot.umd.min.js"),
    "vendor/topojson-client.min.js": ("topojson-client", "dist/topojson-client.min.js"),
}
GEOMETRY = "geo/provinces.topo.json"
# The boundary file numbers the four provinces split from Papua in 2022 with their parent's code (geo/README.md):
# their shapes are joined to Kemendagri codes by name instead.
GEOMETRY_CODES_BY_NAME = {
    "Papua Selatan": "93",
    "Papua Tengah": "94",
    "Papua Pegunungan": "95",
    "Papua Barat Daya": "96",
}
COMPRESS_ABOVE = 1024  # bytes: below this, gzip's header costs more than it saves


@dataclass(frozen=True)
class Asset:
    path: str
    body: bytes

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.body).hexdigest()[:16]

    @cached_property
    def compressed(self) -> bytes:
        return gzip.compress(self.body, compresslevel=9, mtime=0)

    @property
    def content_type(self) -> str:
        return TYPES[Path(self.path).suffix]


class Assets:
    def __init__(self, root: Path = STATIC) -> None:
        self.root = root
        self._loaded: dict[str, Asset] = {}

    def get(self, path: str) -> Asset | None:
        """A file under static/ with a served suffix; nothing outside it (`..` and the like are refused)."""
        if path in self._loaded:
            return self._loaded[path]
        file = (self.root / path).resolve()
        if file.suffix not in TYPES or not file.is_relative_to(self.root) or not file.is_file():
            return None
        asset = Asset(path, file.read_bytes())
        self._loaded[path] = asset
        return asset

    def url(self, path: str) -> str:
        asset = self.get(path)
        if asset is None:
            raise FileNotFoundError(f"services/reporting/dashboard/static/{path}")
        return f"/dashboard/static/{path}?v={asset.digest}"


def maybe_compressed(body: bytes, accept_encoding: str) -> tuple[bytes, dict[str, str]]:
    """The body gzip-compressed when the client accepts it and it is worth it, with the headers that say so."""
    if len(body) < COMPRESS_ABOVE or "gzip" not in accept_encoding:
        return body, {"vary": "accept-encoding"}
    return gzip.compress(body, compresslevel=6), {"content-encoding": "gzip", "vary": "accept-encoding"}
