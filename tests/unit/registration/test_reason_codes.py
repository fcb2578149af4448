"""The reason-code vocabulary: complete, bilingual, documented, and safe to show."""

from __future__ import annotations

import re

import pytest

from services.registration.domain.reference import reason_codes_document, rule_references
from services.registration.domain.rules import MINIMUM_AGE, Limits
from shared import reasons
from shared.events import Segment
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


def test_a_reason_names_its_subject_and_limit_in_both_languages() -> None:
    reason = rejection(ReasonCode.PROGRAM_MANDATORY_MISSING, subject="JHT")
    assert (reason.subject, reason.limit) == ("JHT", None)
    assert reason.message_id == "Program wajib JHT belum dipilih."
    assert reason.message_en == "The mandatory program JHT is missing."
    age = rejection(ReasonCode.AGE_BELOW_WORKING, subject="PU", limit="18")
    assert "18 tahun" in age.message_id
    assert "not yet 18" in age.message_en


def test_a_fact_without_a_sentence_still_reaches_the_partner() -> None:
    reason = rejection(ReasonCode.WAGE_MISSING, subject="x")
    assert reason.message_id.endswith("(x)")
    assert reason.message_en.endswith("(x)")


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_sentence_fills_in(code: ReasonCode) -> None:
    for shape, (message_id, message_en) in REASONS[code].specific.items():
        subject = "SUBJ" if "subject" in shape else None
        limit = "LIM" if "limit" in shape else None
        reason = rejection(code, "some.field", subject, limit)
        for facts in (subject, limit):
            if facts:
                assert facts in reason.message_id
                assert facts in reason.message_en
        assert "{" not in reason.message_id + reason.message_en, (message_id, message_en)


def test_a_nik_in_a_subject_is_masked() -> None:
    reason = rejection(ReasonCode.SCHEMA_INVALID, subject="bad value 3271014506900001")
    assert "3271014506900001" not in reason.message_id + reason.message_en + (reason.subject or "")
    assert "3271**********01" in reason.message_en


def test_the_table_lists_every_code_once() -> None:
    table = markdown_table(rule_references())
    for code in ReasonCode:
        assert table.count(f"| `{code.value}` |") == 1


def test_every_rule_states_its_thresholds_and_basis() -> None:
    references = rule_references()
    assert set(references) == set(ReasonCode)
    for code, reference in references.items():
        assert reference.thresholds.strip(), code
        assert reference.basis.strip(), code


def test_the_minimum_ages_and_their_law_are_in_the_reference() -> None:
    row = next(line for line in reason_codes_document().splitlines() if "`AGE_BELOW_WORKING`" in line)
    assert "PU 18, BPU 15, JAKON 18, PMI 18 years" in row
    assert "UU 13/2003 art. 68" in row
    assert "UU 18/2017 art. 5" in row


def test_the_thresholds_follow_the_code() -> None:
    changed = Limits(minimum_age={**MINIMUM_AGE, Segment.BPU: 16}, max_backdate_days=7)
    references = rule_references(changed)
    assert "BPU 16" in references[ReasonCode.AGE_BELOW_WORKING].thresholds
    assert "7 days before today" in references[ReasonCode.COVERAGE_START_INVALID].thresholds


def test_the_committed_docs_match_the_module() -> None:
    assert reasons.DOCS_PATH.read_text(encoding="utf-8") == reason_codes_document(), (
        "reason codes or rules changed: run `make schemas` and commit docs/reason-codes.md"
    )


@pytest.mark.parametrize("code", list(ReasonCode))
def test_every_rejection_fits_the_contract(code: ReasonCode) -> None:
    reason = rejection(code, subject="x")
    assert reason.code == code.value
