"""The dashboard's words: both languages for every message, the notification templates' wording where the two
overlap, and numbers as Indonesians and the notifications write them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from string import Formatter

import pytest
from jinja2 import Environment, FileSystemLoader

from services.notification.templates import TEMPLATE_DIR, percent, rupiah
from services.reporting.dashboard.i18n import CATEGORIES, FUNDERS, LEVELS, SEGMENTS, TEXT, Words
from shared.events import Category, FundingSource, Segment

LABELS = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=False)  # noqa: S701 - plain text
LABELS.filters["rupiah"] = rupiah


def macros(lang: str) -> object:
    return LABELS.get_template(f"_labels.{lang}.j2").module


@pytest.mark.parametrize("lang", ["id", "en"])
def test_labels_the_notifications_also_use_are_worded_as_the_templates_word_them(lang: str) -> None:
    labels = macros(lang)
    for segment in Segment:
        assert SEGMENTS[lang][segment.value] == str(labels.segment(segment.value)).strip()  # type: ignore[attr-defined]
    for category in Category:
        assert CATEGORIES[lang][category.value] == str(labels.category(category.value)).strip()  # type: ignore[attr-defined]
    for level, word in LEVELS[lang].items():
        assert word == str(labels.level(level)).strip()  # type: ignore[attr-defined]
    for source in FundingSource:
        # The templates name the funding region ("APBD Kota Bogor"); the dashboard's label is the budget itself.
        worded = str(labels.funder(source.value, "X", False)).strip()  # type: ignore[attr-defined]  # noqa: FBT003
        assert FUNDERS[lang][source.value] == re.sub(r"( of)? X$", "", worded)


def test_every_message_has_both_languages_with_the_same_placeholders() -> None:
    for key, (indonesian, english) in TEXT.items():
        assert indonesian.strip()
        assert english.strip()
        fields = [{name for _, name, _, _ in Formatter().parse(text) if name} for text in (indonesian, english)]
        assert fields[0] == fields[1], key


def test_numbers_in_indonesian_and_english_as_the_notifications_write_them() -> None:
    id_, en = Words("id"), Words("en")
    assert id_.count(12_345) == "12.345"
    assert en.count(12_345) == "12,345"
    assert id_.rupiah(1_234_567) == "Rp1.234.567" == rupiah(1_234_567, "id")
    assert en.rupiah(1_234_567) == "Rp1,234,567" == rupiah(1_234_567, "en")
    assert id_.percent(0.125, digits=1) == "12,5%" == percent(12.5, "id")
    assert en.percent(0.125, digits=1) == "12.5%" == percent(12.5, "en")
    assert id_.count("<5") == "<5"
    assert id_.rupiah("<5") == "disembunyikan (di bawah 5 peserta)"
    moment = datetime(2026, 12, 31, 17, 30, tzinfo=UTC)
    assert id_.moment(moment) == "1 Januari 2027, 00.30.00 WIB"
    assert en.moment(moment) == "1 January 2027, 00:30:00 WIB"
    assert id_.period("day/2026-03-05") == "5 Maret 2026"
    assert en.period("month/2026-03") == "March 2026"
