"""Age in whole years (usia) and the reporting age bands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.events import AgeBand

if TYPE_CHECKING:
    from datetime import date

# Lower bound of each band, oldest first, so the first bound not above the age wins.
_BANDS: tuple[tuple[int, AgeBand], ...] = (
    (60, AgeBand.FROM_60),
    (50, AgeBand.FROM_50),
    (40, AgeBand.FROM_40),
    (30, AgeBand.FROM_30),
    (20, AgeBand.FROM_20),
)


def age_on(birth_date: date, on: date) -> int:
    """Completed years on `on`. Someone born on 29 February turns a year older on 1 March in common years."""
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def age_band(birth_date: date, on: date) -> AgeBand:
    """The reporting band on `on`. Ages under 15 cannot be enrolled; they fall in the youngest band rather
    than raising, so that a report over old data never fails on one odd record."""
    age = age_on(birth_date, on)
    for lower, band in _BANDS:
        if age >= lower:
            return band
    return AgeBand.UNDER_20
