"""Coverage: the share of a region's workforce that is protected, against the official figures an operator
loads (workforce, target) or an estimate from the population.

The operator's file of official figures is parsed here too (`parse_targets`): every problem is reported, in
Bahasa Indonesia and in English, before anything is stored. Pure: no I/O.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from shared.events import Coverage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from shared.regions import Regions


@dataclass(frozen=True)
class Target:
    """Official figures an operator loads for a region: its workforce and/or its coverage target."""

    region_code: str
    workforce: int | None = None
    target_ratio: float | None = None


class TargetStore(Protocol):
    async def load_targets(self) -> dict[str, Target]: ...


@dataclass(frozen=True)
class CoveragePolicy:
    """Denominator: the official workforce if loaded, else population x working-age share x participation."""

    regions: Regions
    working_age_share: float
    labour_force_participation: float
    default_target_ratio: float | None = None
    targets: Mapping[str, Target] = field(default_factory=dict)

    def denominator(self, code: str) -> tuple[int, Literal["estimate", "official"]] | None:
        target = self.targets.get(code)
        if target is not None and target.workforce is not None:
            return target.workforce, "official"
        population = self.regions.population(code)
        if population is None:
            return None  # kecamatan: population.csv stops at regency/city level
        return round(population.total * self.working_age_share * self.labour_force_participation), "estimate"

    def coverage(self, code: str, active: int) -> Coverage | None:
        denominator = self.denominator(code)
        if denominator is None or denominator[0] <= 0:
            return None
        workforce, source = denominator
        target = self.targets.get(code)
        target_ratio = (
            target.target_ratio if target is not None and target.target_ratio is not None else self.default_target_ratio
        )
        distance = None
        if target_ratio is not None:
            # round() first: 0.7 * 10 is 7.000000000000001 in binary floating point.
            distance = max(0, math.ceil(round(target_ratio * workforce, 6)) - active)
        return Coverage(
            denominator=workforce,
            denominator_source=source,
            ratio=round(active / workforce, 6),
            target_ratio=target_ratio,
            distance_to_target=distance,
        )


# --- Official figures file ----------------------------------------------------------------------------------


class TargetsFileError(ValueError):
    """Lines of an operator's targets file that cannot be used: every problem, in both languages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_targets(text: str, regions: Regions) -> list[Target]:
    """`region_code,workforce,target_ratio` (either figure may be blank; a ratio may be `0.6` or `60%`)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"region_code", "workforce", "target_ratio"} - set(reader.fieldnames or ())
    if missing:
        raise TargetsFileError([f"kolom tidak ada / missing columns: {', '.join(sorted(missing))}"])
    targets: list[Target] = []
    problems: list[str] = []
    for line, row in enumerate(reader, start=2):
        try:
            targets.append(_target(row, regions))
        except ValueError as error:
            problems.append(f"baris {line} / line {line}: {error}")
    if problems:
        raise TargetsFileError(problems)
    return targets


def _target(row: Mapping[str, str | None], regions: Regions) -> Target:
    code = (row["region_code"] or "").strip()
    if code not in regions:
        raise ValueError(f"kode wilayah tidak dikenal / unknown region code {code!r}")
    workforce, ratio = _workforce(row["workforce"]), _ratio(row["target_ratio"])
    if workforce is None and ratio is None:
        raise ValueError("baris kosong / neither workforce nor target_ratio given")
    return Target(code, workforce, ratio)


def _workforce(raw: str | None) -> int | None:
    text = (raw or "").strip().replace("_", "")
    if not text:
        return None
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"angkatan kerja harus bilangan bulat positif / workforce must be a positive integer: {raw!r}")
    return int(text)


def _ratio(raw: str | None) -> float | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 1:
        raise ValueError(f"target harus di antara 0 dan 1 (atau 0-100%) / target must be in (0, 1] or %: {raw!r}")
    return value
