"""The NIK (Nomor Induk Kependudukan): 16 digits, `PP KK CC DDMMYY SSSS`.

- `PP KK CC`: province, regency/city and kecamatan of first registration (Kemendagri codes). The prefix keeps
  the region of first issue, so after a region split it may name a code that no longer exists: that is a
  warning (`NIK_REGION_UNKNOWN`), never a reason to reject on its own.
- `DDMMYY`: birth date; women have 40 added to the day (41-71). The two-digit year takes the most recent
  century that puts the date on or before `today`.
- `SSSS`: serial from 0001.

The parser never keeps the NIK itself: a parsed value may be logged or shown, the NIK may not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from services.registration.domain.violations import Violation
from shared.events import Sex
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from shared.regions import Regions

NIK_DIGITS = 16
FEMALE_DAY_OFFSET = 40  # women's birth day is stored as day + 40

# Digit positions of the birth date's parts, as a partner counts them (from 1): the language-neutral name of a
# part, which the finding carries instead of the digits.
_DAY, _MONTH, _DATE = "7-8", "9-10", "7-12"


@dataclass(frozen=True, slots=True)
class ParsedNik:
    """What a valid NIK says about its holder; codes are dotted Kemendagri codes (`32.71.01`)."""

    province_code: str
    regency_city_code: str
    kecamatan_code: str
    birth_date: date
    sex: Sex
    serial: int
    warnings: tuple[Violation, ...] = ()

    def matches_birth_date(self, stated: date) -> bool:
        """Day, month and two-digit year agree.

        The century inside a NIK is only inferred, so a worker born in 1925 has a NIK that reads as 2025; the
        stated birth date settles the century and is what age rules use.
        """
        bd = self.birth_date
        return (bd.day, bd.month, bd.year % 100) == (stated.day, stated.month, stated.year % 100)


def _is_ascii_digits(text: str) -> bool:
    # str.isdigit alone accepts superscripts and other scripts' digits, which are no NIK digits.
    return text.isascii() and text.isdigit()


def _birth_date(ddmmyy: str, today: date) -> tuple[date, Sex] | str:
    """The birth date and sex, or the NIK positions of the part of `DDMMYY` that is wrong (never its value)."""
    day, month, yy = int(ddmmyy[0:2]), int(ddmmyy[2:4]), int(ddmmyy[4:6])
    sex = Sex.MALE
    if day > FEMALE_DAY_OFFSET:
        day -= FEMALE_DAY_OFFSET
        sex = Sex.FEMALE
    if not 1 <= day <= 31:
        return _DAY
    if not 1 <= month <= 12:
        return _MONTH
    century = today.year - today.year % 100
    for year in (century + yy, century - 100 + yy):
        try:
            born = date(year, month, day)
        except ValueError:
            continue  # 29 February may exist in one century and not in the other (2000 vs 1900)
        if born <= today:
            return born, sex
    return _DATE


def not_digits_at(nik: str, shown: int = 5) -> str:
    """The 1-based positions of the characters that are not digits (the first `shown`, then a count): a
    partner finds the typo without the finding holding any of the NIK's characters."""
    positions = [str(i) for i, char in enumerate(nik, start=1) if not _is_ascii_digits(char)]
    more = len(positions) - shown
    return ", ".join(positions[:shown]) + (f" (+{more})" if more > 0 else "")


def parse_nik(nik: str, today: date, regions: Regions, *, field: str = "worker.nik") -> ParsedNik | list[Violation]:
    """Parse a NIK, or list every part that is invalid (`field` names the request field in the findings).

    An invalid NIK yields violations only; a valid one yields a `ParsedNik` whose `warnings` record an
    unknown region prefix.
    """
    violations: list[Violation] = []
    if len(nik) != NIK_DIGITS:
        violations.append(Violation(ReasonCode.NIK_LENGTH, field, str(len(nik)), str(NIK_DIGITS)))
    if not _is_ascii_digits(nik):
        violations.append(Violation(ReasonCode.NIK_NOT_DIGITS, field, not_digits_at(nik)))
    if violations:
        return violations

    born = _birth_date(nik[6:12], today)
    if isinstance(born, str):
        violations.append(Violation(ReasonCode.NIK_BIRTH_DATE_INVALID, field, born))
    serial = int(nik[12:16])
    if serial == 0:
        violations.append(Violation(ReasonCode.NIK_SERIAL_ZERO, field))
    if isinstance(born, str) or violations:
        return violations

    birth_date, sex = born
    province = nik[0:2]
    regency_city = f"{province}.{nik[2:4]}"
    kecamatan = f"{regency_city}.{nik[4:6]}"
    return ParsedNik(
        province_code=province,
        regency_city_code=regency_city,
        kecamatan_code=kecamatan,
        birth_date=birth_date,
        sex=sex,
        serial=serial,
        warnings=_region_warnings(province, regency_city, kecamatan, regions, field),
    )


def _region_warnings(
    province: str, regency_city: str, kecamatan: str, regions: Regions, field: str
) -> tuple[Violation, ...]:
    found = regions.get(kecamatan)
    if found is not None and found.level == "kecamatan":
        return ()
    # Name the widest level that is unknown: that is where the split (or the typo) happened.
    if province not in regions:
        unknown = province
    elif regency_city not in regions:
        unknown = regency_city
    else:
        unknown = kecamatan
    return (Violation(ReasonCode.NIK_REGION_UNKNOWN, field, unknown),)


def format_nik(kecamatan_code: str, birth_date: date, sex: Sex, serial: int) -> str:
    """The NIK that encodes these facts: the inverse of `parse_nik`, for tests and synthetic requests."""
    day = birth_date.day + (FEMALE_DAY_OFFSET if sex is Sex.FEMALE else 0)
    region = kecamatan_code.replace(".", "")
    return f"{region}{day:02d}{birth_date.month:02d}{birth_date.year % 100:02d}{serial:04d}"
