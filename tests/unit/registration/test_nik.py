"""The NIK: parsing, every way it can be invalid, and properties over generated NIKs."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from services.registration.domain.nik import ParsedNik, format_nik, parse_nik
from shared.events import Sex
from shared.reasons import ReasonCode
from shared.regions import load_regions

if TYPE_CHECKING:
    from services.registration.domain.violations import Violation
    from shared.regions import Regions

TODAY = date(2025, 11, 24)
R = ReasonCode

_REGIONS = load_regions()
KECAMATAN = sorted(r.code for r in _REGIONS.at_level("kecamatan"))


def codes(result: ParsedNik | list[Violation]) -> list[ReasonCode]:
    assert isinstance(result, list), f"expected violations, got {result}"
    return [v.code for v in result]


def test_a_womans_nik(regions: Regions) -> None:
    parsed = parse_nik("3271014506900001", TODAY, regions)
    assert parsed == ParsedNik("32", "32.71", "32.71.01", date(1990, 6, 5), Sex.FEMALE, 1)


def test_a_mans_nik(regions: Regions) -> None:
    parsed = parse_nik("3271010506900123", TODAY, regions)
    assert isinstance(parsed, ParsedNik)
    assert (parsed.sex, parsed.birth_date, parsed.serial) == (Sex.MALE, date(1990, 6, 5), 123)


def test_the_century_puts_the_birth_date_in_the_past(regions: Regions) -> None:
    # 01-12-25 is after TODAY in 2025, so it is 1925; 24-11-25 is TODAY itself, so 2025.
    older = parse_nik("3271010112250001", TODAY, regions)
    newborn = parse_nik("3271012411250001", TODAY, regions)
    assert isinstance(older, ParsedNik)
    assert isinstance(newborn, ParsedNik)
    assert older.birth_date == date(1925, 12, 1)
    assert newborn.birth_date == date(2025, 11, 24)


def test_29_february_of_year_00_is_2000(regions: Regions) -> None:
    parsed = parse_nik("3271012902000001", TODAY, regions)
    assert isinstance(parsed, ParsedNik)
    assert parsed.birth_date == date(2000, 2, 29)


@pytest.mark.parametrize("nik", ["", "327101450690000", "32710145069000011", "3271 0145 0690 0001"])
def test_length(nik: str, regions: Regions) -> None:
    assert R.NIK_LENGTH in codes(parse_nik(nik, TODAY, regions))


@pytest.mark.parametrize(
    ("nik", "positions"),
    [
        ("32710145069000O1", "15"),
        ("3271014506-00001", "11"),
        ("32710145069A0001", "12"),  # the case: a letter at position 12, not "digits 7-12"
        ("A271014506900001", "1"),
        ("３２71014506900001", "1, 2"),  # full-width digits are no NIK digits
        ("32710145069000٠1", "15"),  # neither are Arabic-Indic ones, though str.isdigit() accepts them
        ("ABCDEFGH45069001", "1, 2, 3, 4, 5 (+3)"),  # the first five, then how many more
    ],
)
def test_not_digits_names_the_exact_positions(nik: str, positions: str, regions: Regions) -> None:
    result = parse_nik(nik, TODAY, regions)
    assert isinstance(result, list)
    assert [(v.code, v.subject) for v in result] == [(R.NIK_NOT_DIGITS, positions)]


def test_the_message_points_at_the_character(regions: Regions) -> None:
    [violation] = parse_nik("32710145069A0001", TODAY, regions)  # type: ignore[misc]
    reason = violation.to_rejection()
    assert "karakter ke-12 " in reason.message_id
    assert "position 12 " in reason.message_en
    assert "7" not in reason.message_id + reason.message_en


def test_wrong_length_and_letters_are_both_reported(regions: Regions) -> None:
    assert codes(parse_nik("32710A", TODAY, regions)) == [R.NIK_LENGTH, R.NIK_NOT_DIGITS]


@pytest.mark.parametrize(
    ("ddmmyy", "part"),
    [
        ("000690", "7-8"),  # the day
        ("320690", "7-8"),
        ("400690", "7-8"),  # between a man's 31 and a woman's 41
        ("720690", "7-8"),  # a woman's 32nd
        ("051390", "9-10"),  # the month
        ("050090", "9-10"),
        ("310490", "7-12"),  # 31 April: the date as a whole
        ("710490", "7-12"),  # a woman born on 31 April
        ("300290", "7-12"),
        ("290201", "7-12"),  # 29 February in neither 1901 nor 2001
    ],
)
def test_impossible_birth_dates(ddmmyy: str, part: str, regions: Regions) -> None:
    result = parse_nik(f"327101{ddmmyy}0001", TODAY, regions)
    assert isinstance(result, list)
    assert [(v.code, v.subject) for v in result] == [(R.NIK_BIRTH_DATE_INVALID, part)]


def test_serial_zero(regions: Regions) -> None:
    assert codes(parse_nik("3271014506900000", TODAY, regions)) == [R.NIK_SERIAL_ZERO]


def test_every_invalid_part_is_reported(regions: Regions) -> None:
    assert codes(parse_nik("3271013206900000", TODAY, regions)) == [
        R.NIK_BIRTH_DATE_INVALID,
        R.NIK_SERIAL_ZERO,
    ]


def test_the_field_can_be_named(regions: Regions) -> None:
    result = parse_nik("1", TODAY, regions, field="nik")
    assert isinstance(result, list)
    assert {v.field for v in result} == {"nik"}


@pytest.mark.parametrize(
    ("nik", "unknown"),
    [
        ("9971014506900001", "99"),  # no province 99
        ("3269014506900001", "32.69"),  # Jawa Barat has no regency 69
        ("3271994506900001", "32.71.99"),  # Kota Bogor has no kecamatan 99
    ],
)
def test_an_unknown_region_prefix_is_only_a_warning(nik: str, unknown: str, regions: Regions) -> None:
    parsed = parse_nik(nik, TODAY, regions)
    assert isinstance(parsed, ParsedNik)
    assert [(w.code, w.subject, w.is_warning) for w in parsed.warnings] == [(R.NIK_REGION_UNKNOWN, unknown, True)]


def test_the_parsed_value_never_holds_the_nik(regions: Regions) -> None:
    parsed = parse_nik("3271014506900001", TODAY, regions)
    assert "3271014506900001" not in repr(parsed)


def test_birth_date_agreement_ignores_the_century() -> None:
    parsed = ParsedNik("32", "32.71", "32.71.01", date(2025, 1, 1), Sex.MALE, 1)
    assert parsed.matches_birth_date(date(1925, 1, 1))
    assert not parsed.matches_birth_date(date(1925, 1, 2))


# --- Properties ---------------------------------------------------------------------------------------------

# Within the last 99 years the two-digit year is unambiguous: the parser must give back the very date.
birth_dates = st.dates(min_value=TODAY.replace(year=TODAY.year - 99), max_value=TODAY)
sexes = st.sampled_from(Sex)
serials = st.integers(min_value=1, max_value=9999)
kecamatan = st.sampled_from(KECAMATAN)


@given(kecamatan, birth_dates, sexes, serials)
def test_a_generated_nik_parses_back_to_what_it_encodes(code: str, born: date, sex: Sex, serial: int) -> None:
    parsed = parse_nik(format_nik(code, born, sex, serial), TODAY, _REGIONS)
    assert parsed == ParsedNik(code[:2], code[:5], code, born, sex, serial)


valid_niks = st.builds(format_nik, kecamatan, birth_dates, sexes, serials)


@given(valid_niks, st.integers(min_value=0, max_value=15), st.text(alphabet="0123456789", min_size=1, max_size=8))
def test_a_nik_of_another_length_is_rejected(nik: str, cut: int, extra: str) -> None:
    for wrong in (nik[:cut], nik + extra):
        assert R.NIK_LENGTH in codes(parse_nik(wrong, TODAY, _REGIONS))


@given(
    valid_niks,
    st.integers(min_value=0, max_value=15),
    st.characters(exclude_characters="0123456789", exclude_categories=["Cs"]),
)
def test_a_nik_with_a_non_digit_is_rejected(nik: str, at: int, char: str) -> None:
    assert codes(parse_nik(nik[:at] + char + nik[at + 1 :], TODAY, _REGIONS)) == [R.NIK_NOT_DIGITS]


@given(valid_niks)
def test_serial_0000_is_rejected(nik: str) -> None:
    assert codes(parse_nik(nik[:12] + "0000", TODAY, _REGIONS)) == [R.NIK_SERIAL_ZERO]


def _valid_day_month(day: int, month: int, yy: int) -> bool:
    for year in (2000 + yy, 1900 + yy):
        try:
            if date(year, month, day) <= TODAY:
                return True
        except ValueError:
            continue
    return False


@given(
    kecamatan,
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=0, max_value=99),
    serials,
)
def test_no_impossible_birth_date_is_accepted(code: str, dd: int, mm: int, yy: int, serial: int) -> None:
    day = dd - 40 if dd > 40 else dd
    assume(not _valid_day_month(day, mm, yy) if 1 <= day <= 31 and 1 <= mm <= 12 else True)
    nik = f"{code.replace('.', '')}{dd:02d}{mm:02d}{yy:02d}{serial:04d}"
    assert codes(parse_nik(nik, TODAY, _REGIONS)) == [R.NIK_BIRTH_DATE_INVALID]


@given(kecamatan, st.dates(min_value=date(1930, 1, 1), max_value=date(2030, 12, 31)), sexes, serials)
def test_a_parsed_birth_date_is_never_after_today(code: str, born: date, sex: Sex, serial: int) -> None:
    parsed = parse_nik(format_nik(code, born, sex, serial), TODAY, _REGIONS)
    assert isinstance(parsed, ParsedNik)
    assert parsed.birth_date <= TODAY
    assert parsed.matches_birth_date(born)
    assert TODAY - parsed.birth_date < timedelta(days=100 * 366)
