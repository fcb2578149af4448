"""The rules for changes to a participation (services/registration/domain/changes.py): updates, terminations,
reactivations, and which action fits which state; one case per reason code, all findings at once."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from services.registration.domain.changes import (
    apply_update,
    check_transition,
    validate_reactivation,
    validate_termination,
    validate_update,
)
from shared.events import (
    EmployerSize,
    ParticipantStatus,
    Program,
    ReactivationRequest,
    RequestAction,
    Segment,
    TerminationReason,
    TerminationRequest,
    UpdateRequest,
)
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from shared.regions import Regions

R = ReasonCode
P = Program
TODAY = date(2025, 11, 24)
EARLIER = date(2025, 11, 1)  # a coverage start before TODAY, for changes to a running participation
NIK = "3271014506900001"


def update(**changes: Any) -> UpdateRequest:
    fields: dict[str, Any] = {
        "request_id": "u-1",
        "nik": NIK,
        "segment": Segment.BPU,
        "effective_date": TODAY,
    }
    return UpdateRequest(**(fields | changes))


UPDATE_CASES: list[tuple[str, UpdateRequest, list[tuple[ReasonCode, str | None]]]] = [
    ("income", update(declared_income=1_500_000), []),
    ("contact", update(phone="+6281234567890", contact_consent=True), []),
    ("empty", update(), [(R.UPDATE_EMPTY, None)]),
    ("bad-nik", update(nik="1234", phone="+62811"), [(R.NIK_LENGTH, "nik")]),
    ("wage-for-bpu", update(monthly_wage=3_000_000), [(R.FIELD_NOT_APPLICABLE, "monthly_wage")]),
    (
        "income-for-pu",
        update(segment=Segment.PU, declared_income=1),
        [(R.FIELD_NOT_APPLICABLE, "declared_income")],
    ),
    ("wage-zero", update(segment=Segment.PU, monthly_wage=0), [(R.WAGE_MISSING, "monthly_wage")]),
    ("income-too-low", update(declared_income=900_000), [(R.INCOME_BELOW_MINIMUM, "declared_income")]),
    ("jp-for-bpu", update(programs=[P.JKK, P.JKM, P.JP]), [(R.PROGRAM_NOT_OFFERED, "programs")]),
    ("no-jkm", update(programs=[P.JKK, P.JHT]), [(R.PROGRAM_MANDATORY_MISSING, "programs")]),
    (
        "too-late",
        update(phone="+62811", effective_date=TODAY + timedelta(days=93)),
        [(R.EFFECTIVE_DATE_INVALID, "effective_date")],
    ),
]


@pytest.mark.parametrize(
    ("request_", "expected"), [(u, e) for _, u, e in UPDATE_CASES], ids=[i for i, _, _ in UPDATE_CASES]
)
def test_update_violations(
    request_: UpdateRequest, expected: list[tuple[ReasonCode, str | None]], regions: Regions
) -> None:
    assert [(v.code, v.field) for v in validate_update(request_, TODAY, regions)] == expected


def test_an_update_against_the_current_terms(build: Any, regions: Regions) -> None:
    current = build.pu(EmployerSize.MICRO, programs=[P.JKK, P.JKM], coverage_start=EARLIER)
    jkp_alone = update(segment=Segment.PU, programs=[P.JKK, P.JKM, P.JKP])
    with_jht = update(segment=Segment.PU, programs=[P.JKK, P.JKM, P.JHT, P.JKP])
    assert [v.code for v in validate_update(jkp_alone, TODAY, regions, current=current)] == [R.JKP_PREREQUISITE_MISSING]
    assert validate_update(with_jht, TODAY, regions, current=current) == []
    # Without the current terms the employer's size is unknown: what holds for every size is checked.
    assert [v.code for v in validate_update(jkp_alone, TODAY, regions)] == [R.JKP_PREREQUISITE_MISSING]


def test_jkp_added_later_checks_the_age_on_the_effective_date(build: Any, regions: Regions) -> None:
    current = build.pu(
        programs=[P.JKK, P.JKM, P.JHT, P.JP],
        worker=build.worker(birth_date=build.aged(54, TODAY)),
        coverage_start=EARLIER,
    )
    request = update(segment=Segment.PU, programs=[P.JKK, P.JKM, P.JHT, P.JP, P.JKP])
    assert [(v.code, v.field) for v in validate_update(request, TODAY, regions, current=current)] == [
        (R.AGE_ABOVE_LIMIT, "programs")
    ]


def test_an_update_cannot_take_effect_before_the_coverage(build: Any, regions: Regions) -> None:
    current = build.bpu(coverage_start=TODAY)
    request = update(phone="+62811", effective_date=TODAY - timedelta(days=1))
    assert [v.code for v in validate_update(request, TODAY, regions, current=current)] == [R.EFFECTIVE_DATE_INVALID]


def test_apply_update_changes_only_what_is_given(build: Any) -> None:
    current = build.bpu()
    after = apply_update(current, update(declared_income=2_000_000, phone="+62811", programs=[P.JKK, P.JKM, P.JHT]))
    assert after.declared_income == 2_000_000
    assert after.programs == [P.JKK, P.JKM, P.JHT]
    assert after.worker.phone == "+62811"
    assert after.worker.nik == current.worker.nik
    assert after.coverage_start == current.coverage_start
    assert apply_update(current, update(contact_consent=False)).worker.contact_consent is False
    assert apply_update(current, update(email="a@example.com")).declared_income == current.declared_income


def termination(**changes: Any) -> TerminationRequest:
    fields: dict[str, Any] = {
        "request_id": "t-1",
        "nik": NIK,
        "segment": Segment.BPU,
        "reason": TerminationReason.DECEASED,
        "effective_date": TODAY,
    }
    return TerminationRequest(**(fields | changes))


def test_terminations_may_be_reported_late(regions: Regions) -> None:
    assert validate_termination(termination(effective_date=TODAY - timedelta(days=200)), TODAY, regions) == []
    late = termination(effective_date=TODAY - timedelta(days=400))
    assert [v.code for v in validate_termination(late, TODAY, regions)] == [R.EFFECTIVE_DATE_INVALID]


def test_a_termination_before_the_coverage_start(build: Any, regions: Regions) -> None:
    current = build.bpu(coverage_start=TODAY)
    early = termination(effective_date=TODAY - timedelta(days=3))
    assert [v.code for v in validate_termination(early, TODAY, regions, current=current)] == [R.EFFECTIVE_DATE_INVALID]


def test_a_termination_needs_a_valid_nik(regions: Regions) -> None:
    assert [(v.code, v.field) for v in validate_termination(termination(nik="x" * 16), TODAY, regions)] == [
        (R.NIK_NOT_DIGITS, "nik")
    ]


def test_reactivations(regions: Regions) -> None:
    request = ReactivationRequest(request_id="r-1", nik=NIK, segment=Segment.BPU, effective_date=TODAY)
    assert validate_reactivation(request, TODAY, regions) == []
    backdated = request.model_copy(update={"effective_date": TODAY - timedelta(days=60)})
    assert [v.code for v in validate_reactivation(backdated, TODAY, regions)] == [R.EFFECTIVE_DATE_INVALID]


A = RequestAction
S = ParticipantStatus
TRANSITIONS: list[tuple[RequestAction, ParticipantStatus | None, ReasonCode | None]] = [
    (A.ENROLL, None, None),
    (A.ENROLL, S.ACTIVE, R.PARTICIPANT_ALREADY_ACTIVE),
    (A.ENROLL, S.TERMINATED, None),
    (A.UPDATE, None, R.PARTICIPANT_UNKNOWN),
    (A.UPDATE, S.ACTIVE, None),
    (A.UPDATE, S.TERMINATED, R.PARTICIPANT_NOT_ACTIVE),
    (A.TERMINATE, None, R.PARTICIPANT_UNKNOWN),
    (A.TERMINATE, S.ACTIVE, None),
    (A.TERMINATE, S.TERMINATED, R.PARTICIPANT_NOT_ACTIVE),
    (A.REACTIVATE, None, R.PARTICIPANT_UNKNOWN),
    (A.REACTIVATE, S.ACTIVE, R.PARTICIPANT_ALREADY_ACTIVE),
    (A.REACTIVATE, S.TERMINATED, None),
]


@pytest.mark.parametrize(("action", "status", "expected"), TRANSITIONS)
def test_transitions(action: RequestAction, status: ParticipantStatus | None, expected: ReasonCode | None) -> None:
    violation = check_transition(action, status, Segment.BPU)
    assert (violation.code if violation else None) == expected
