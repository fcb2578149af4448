"""Figures: a measure over several runs (median, min, max), rates read off progress, latency percentiles."""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence


@dataclass
class Figure:
    """One measure taken once per run; shown as the median with the min and max of the runs."""

    unit: str
    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def format(self, digits: int | None = None) -> str:
        if not self.values:
            return "n/a"
        text = _number(self.median, digits) + _unit(self.unit)
        if len(self.values) > 1:
            text += f" ({_number(min(self.values), digits)}–{_number(max(self.values), digits)})"
        return text


def ratios(ours: Figure, baseline: Figure, unit: str = "x") -> Figure:
    """Run by run: each run's ratio against the baseline measured in that same run."""
    return Figure(unit, [a / b if b else math.inf for a, b in zip(ours.values, baseline.values, strict=True)])


def _unit(unit: str) -> str:
    if unit in {"x", "%"}:
        return unit
    return f" {unit}" if unit else ""


def _number(value: float, digits: int | None) -> str:
    if math.isinf(value):
        return "∞"
    if digits is None:
        digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}"


def mib(size: float) -> float:
    return size / 1024 / 1024


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile; infinity counts as a value (a request never answered in the window)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Rate:
    """Progress over time: the rate after warm-up and the wall time from start to done (or to the deadline)."""

    rate: float  # units per second, from the warm-up mark to done
    wall: float  # seconds from start to done
    counted: int  # units counted in the rate
    done: int  # units done when it ended
    complete: bool = True  # False: the time budget ran out first; the rate covers what was done


class Timeout(RuntimeError):  # noqa: N818 - reads as what happened
    pass


async def watch(  # noqa: PLR0913 - keyword-only knobs of one measurement
    progress: Callable[[], Awaitable[int]],
    target: int,
    *,
    within: float,
    warmup: float = 0.01,
    interval: float = 0.2,
    check: Callable[[], None] | None = None,
    observe: Callable[[int], Awaitable[None]] | None = None,
    started: float | None = None,
    partial: bool = True,
) -> Rate:
    """Poll `progress()` until it reaches `target`; the rate counts from the first poll past `warmup` of it.

    Start-up and warm-up (connections, the first fetch, caches) are outside the rate; `wall` includes them.
    `observe` is called with the progress at every poll (to sample memory, say). When
    `within` seconds pass first, the rate of what was done is returned (`complete` False), or with `partial` off,
    Timeout is raised.
    """
    start = started if started is not None else time.monotonic()
    deadline = time.monotonic() + within
    warm_at: float | None = None
    warm_count = 0
    while True:
        count = await progress()
        now = time.monotonic()
        if observe is not None:
            await observe(count)
        if warm_at is None and count >= max(1, int(target * warmup)):
            warm_at, warm_count = now, count
        if count >= target:
            break
        if now > deadline:
            if not partial or warm_at is None or now <= warm_at:
                raise Timeout(f"{count} of {target} after {within:.0f}s")
            return Rate((count - warm_count) / (now - warm_at), now - start, count - warm_count, count, complete=False)
        if check is not None:
            check()
        await asyncio.sleep(interval)
    if warm_at is None or now <= warm_at:
        # Too small to leave warm-up out (a smoke run): the whole span, start-up included.
        return Rate(count / max(now - start, 1e-9), now - start, count, count)
    return Rate((count - warm_count) / (now - warm_at), now - start, count - warm_count, count)
