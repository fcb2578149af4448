"""Reference data: Kemendagri region codes and population (see shared/data/README.md for the source).

Loaded once per process from the CSV files shipped in the package; lookups by code and by parent.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

NATIONAL_CODE = "ID"
Level = Literal["national", "province", "regency/city", "kecamatan"]


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    level: Level
    parent_code: str | None

    @property
    def is_kota(self) -> bool:
        """Regency/city digits 71-99 are kota (cities); 01-69 are kabupaten."""
        return self.level == "regency/city" and int(self.code[3:5]) >= 71


@dataclass(frozen=True, slots=True)
class Population:
    code: str
    male: int
    female: int
    total: int


class Regions:
    """The region hierarchy: nation -> 38 provinces -> 514 regencies/cities -> 7,285 kecamatan."""

    def __init__(self, regions: list[Region], population: dict[str, Population]) -> None:
        self._by_code = {r.code: r for r in regions}
        self._children: dict[str, list[Region]] = {}
        for region in regions:
            if region.parent_code is not None:
                self._children.setdefault(region.parent_code, []).append(region)
        self._population = population

    def get(self, code: str) -> Region | None:
        return self._by_code.get(code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def children(self, code: str) -> list[Region]:
        return list(self._children.get(code, ()))

    def at_level(self, level: Level) -> list[Region]:
        return [r for r in self._by_code.values() if r.level == level]

    def ancestors(self, code: str) -> list[Region]:
        """From the region itself up to the nation: `32.71.01` -> [32.71.01, 32.71, 32, ID]."""
        chain: list[Region] = []
        region = self._by_code.get(code)
        while region is not None:
            chain.append(region)
            region = self._by_code.get(region.parent_code) if region.parent_code else None
        return chain

    def population(self, code: str) -> Population | None:
        return self._population.get(code)


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files("shared").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def load_regions() -> Regions:
    regions = [Region(NATIONAL_CODE, "Indonesia", "national", None)]
    for row in _rows("regions.csv"):
        level: Level = "province" if row["level"] == "province" else "regency/city"
        regions.append(Region(row["code"], row["name"], level, row["parent_code"] or NATIONAL_CODE))
    regions.extend(Region(row["code"], row["name"], "kecamatan", row["parent_code"]) for row in _rows("districts.csv"))
    population: dict[str, Population] = {}
    for row in _rows("population.csv"):
        code = NATIONAL_CODE if row["code"] == "0" else row["code"]  # the file's national row is code 0
        population[code] = Population(code, int(row["male"]), int(row["female"]), int(row["total"]))
    return Regions(regions, population)
