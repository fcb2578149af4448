"""The reason-code vocabulary: complete, bilingual, documented, and safe to show."""

from __future__ import annotations

import re

import pytest

from shared import reasons
from shared.reasons import MESSAGES, REASONS, ReasonCode, Severity, markdown_table, rejection


def test_every_code_has_both_messages() -> None:
    assert set(REASONS) == set(ReasonCode) == set(MESSAGES)
    for code, text in REASONS.items():
        assert text.message_id.strip(), code
        assert text.message_en.strip(), code
        assert text.message_id != text.message_en, f"{code}: the Indonesian message is a copy of the English one"


def test_codes_are_stable_upper_snake_names() -> None:
    for code in ReasonCode:
        assert code.value == code.name
        assert re.fullmatch(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)*", code.value)


def test_only_region_findings_are_warnings() -> None:
    warnings = {code for code in ReasonCode if code.severity is Severity.WARNING}
    assert warnings == {ReasonCode.NIK_REGION_UNKNOWN, ReasonCode.KECAMATAN_NOT_IN_REGION}


def test_message_defaults_to_indonesian() -> None:
    code = ReasonCode.NIK_LENGTH
    assert code.message() == code.message("id") == MESSAGES[code][0]
    assert code.message("en") == MESSAGES[code][1]


def test_rejection_uses_the_codes_field_unless_given() -> None:
    reason = rejection(ReasonCode.WAGE_MISSING)
    assert reason.code == "WAGE_MISSING"
    assert reason.field == "monthly_wage"
    assert reason.message_id == REASONS[ReasonCode.WAGE_MISSING].message_id
    assert rejection(ReasonCode.NIK_LENGTH, field="nik").field == "nik"


def test_rejection_appends_the_detail_to_both_messages() -> None:
    reason = rejection(ReasonCode.PROGRAM_NOT_OFFERED, detail="JP")
    assert reason.message_id.endswith("(JP)")
    assert reason.message_en.endswith("(JP)")


def test_a_nik_in_a_detail_is_masked() -> None:
    reason = rejection(ReasonCode.SCHEMA_INVALID, detail="bad value 3271014506900001")
    assert "3271014506900001" not in reason.message_id + reason.message_en
    assert "3271**********01" in reason.message_en


def test_the_table_lists_every_code_once() -> None:
    table = markdown_table()
    for code in ReasonCode:
        assert table.count(f"| `{code.value}` |") == 1


def test_the_committed_docs_match_the_module() -> None:
    assert reasons.DOCS_PATH.read_text(encoding="utf-8") == markdown_table(), (
        "reason codes changed: run `python -m shared.reasons` and commit docs/reason-codes.md"
    )


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_rejection_fits_the_contract(code: ReasonCode) -> None:
    reason = rejection(code, detail="x")
    assert reason.code == code.value
