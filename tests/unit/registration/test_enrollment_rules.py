"""The enrollment rules: one case per reason code (and per way to reach it), all findings at once.

The rules for changes to a participation have their own module (test_change_rules.py); the count of every
domain code against a case, here, takes its tables too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from services.registration.domain.age import age_band, age_on
from services.registration.domain.nik import format_nik
from services.registration.domain.rules import (
    CATEGORIES,
    FUNDING,
    Limits,
    assess_enrollment,
    validate_enrollment,
)
from shared.events import (
    AgeBand,
    Category,
    Employer,
    EmployerSize,
    EnrollmentRequest,
    FundingSource,
    Program,
    RiskLevel,
    Segment,
    Sex,
)
from shared.reasons import ReasonCode
from tests.unit.registration.test_change_rules import TRANSITIONS, UPDATE_CASES

if TYPE_CHECKING:
    from shared.regions import Regions

R = ReasonCode
P = Program
TODAY = date(2025, 11, 24)

#: Codes only the registration service can give: they need the partner, the store or the raw message.
SERVICE_CODES = frozenset(
    {
        R.REQUEST_ID_CONFLICT,
        R.PARTNER_UNKNOWN,
        R.PARTNER_REGION_NOT_ALLOWED,
        R.PARTNER_SEGMENT_NOT_ALLOWED,
        R.PARTNER_FUNDING_NOT_ALLOWED,
        R.PARTNER_MIGRATION_NOT_ALLOWED,
        R.PARTNER_SOURCE_MISMATCH,
        R.SCHEMA_INVALID,
        R.SCHEMA_VERSION_UNSUPPORTED,
        R.EVENT_TYPE_UNKNOWN,
        # The budget side's: tested in test_budget.py and tests/integration/registration/test_budget_service.py.
        R.PARTNER_BUDGET_NOT_ALLOWED,
        R.BUDGET_EXHAUSTED,
        R.BUDGET_WORKER_CAP_REACHED,
        R.ALLOCATION_YEAR_CLOSED,
        R.HOLD_UNKNOWN,
        R.HOLD_SELF_DECISION,
        R.HOLD_REFUSED,
    }
)

Case = Callable[[Any], EnrollmentRequest]


def _female_nik(born: date, serial: int = 1) -> str:
    return format_nik("32.71.01", born, Sex.FEMALE, serial)


# (id, request, expected findings as (code, field), in the order the rules report them)
ENROLLMENT_CASES: list[tuple[str, Case, list[tuple[ReasonCode, str | None]]]] = [
    ("nik-length", lambda b: b.bpu(worker=b.worker(nik="327101450690")), [(R.NIK_LENGTH, "worker.nik")]),
    ("nik-not-digits", lambda b: b.bpu(worker=b.worker(nik="32710145069OOO01")), [(R.NIK_NOT_DIGITS, "worker.nik")]),
    (
        "nik-birth-date-invalid",
        lambda b: b.bpu(worker=b.worker(nik="3271017104900001")),
        [(R.NIK_BIRTH_DATE_INVALID, "worker.nik")],
    ),
    ("nik-serial-zero", lambda b: b.bpu(worker=b.worker(nik="3271014506900000")), [(R.NIK_SERIAL_ZERO, "worker.nik")]),
    (
        "nik-birth-date-mismatch",
        lambda b: b.bpu(worker=b.worker(nik=_female_nik(date(1990, 6, 6)))),
        [(R.NIK_BIRTH_DATE_MISMATCH, "worker.birth_date")],
    ),
    (
        "nik-sex-mismatch",
        lambda b: b.bpu(worker=b.worker(sex=Sex.MALE, nik=_female_nik(date(1990, 6, 5)))),
        [(R.NIK_SEX_MISMATCH, "worker.sex")],
    ),
    ("region-unknown", lambda b: b.bpu(region_code="32.69"), [(R.REGION_UNKNOWN, "region_code")]),
    ("region-is-province", lambda b: b.bpu(region_code="32"), [(R.REGION_NOT_REGENCY_CITY, "region_code")]),
    ("region-is-kecamatan", lambda b: b.bpu(region_code="32.71.01"), [(R.REGION_NOT_REGENCY_CITY, "region_code")]),
    (
        "kecamatan-unknown",
        lambda b: b.bpu(worker=b.worker(domicile_kecamatan="32.71.99")),
        [(R.KECAMATAN_UNKNOWN, "worker.domicile_kecamatan")],
    ),
    (
        "kecamatan-is-a-regency",
        lambda b: b.bpu(worker=b.worker(domicile_kecamatan="32.71")),
        [(R.KECAMATAN_UNKNOWN, "worker.domicile_kecamatan")],
    ),
    (
        "age-below-working",
        lambda b: b.bpu(worker=b.worker(birth_date=b.aged(14))),
        [(R.AGE_BELOW_WORKING, "worker.birth_date")],
    ),
    ("jkp-age-above-limit", lambda b: b.pu(worker=b.worker(birth_date=b.aged(54))), [(R.AGE_ABOVE_LIMIT, "programs")]),
    (
        "category-not-in-segment",
        lambda b: b.bpu(category=Category.FORMAL_EMPLOYEE),
        [(R.CATEGORY_NOT_IN_SEGMENT, "category")],
    ),
    ("jp-not-offered-to-bpu", lambda b: b.bpu(programs=[P.JKK, P.JKM, P.JP]), [(R.PROGRAM_NOT_OFFERED, "programs")]),
    ("jkp-not-offered-to-bpu", lambda b: b.bpu(programs=[P.JKK, P.JKM, P.JKP]), [(R.PROGRAM_NOT_OFFERED, "programs")]),
    (
        "jht-not-offered-to-jakon",
        lambda b: b.jakon(programs=[P.JKK, P.JKM, P.JHT]),
        [(R.PROGRAM_NOT_OFFERED, "programs")],
    ),
    ("jp-not-offered-to-pmi", lambda b: b.pmi(programs=[P.JKK, P.JKM, P.JP]), [(R.PROGRAM_NOT_OFFERED, "programs")]),
    ("jkm-mandatory", lambda b: b.bpu(programs=[P.JKK]), [(R.PROGRAM_MANDATORY_MISSING, "programs")]),
    (
        # JP is mandatory for a large employer and a JKP prerequisite: reported once, as mandatory.
        "jp-mandatory-for-large",
        lambda b: b.pu(programs=[P.JKK, P.JKM, P.JHT, P.JKP]),
        [(R.PROGRAM_MANDATORY_MISSING, "programs")],
    ),
    (
        "jht-mandatory-for-small",
        lambda b: b.pu(EmployerSize.SMALL, programs=[P.JKK, P.JKM]),
        [(R.PROGRAM_MANDATORY_MISSING, "programs")],
    ),
    ("program-duplicate", lambda b: b.bpu(programs=[P.JKK, P.JKM, P.JKK, P.JKK]), [(R.PROGRAM_DUPLICATE, "programs")]),
    (
        "jkp-without-jht",
        lambda b: b.pu(EmployerSize.MICRO, programs=[P.JKK, P.JKM, P.JKP]),
        [(R.JKP_PREREQUISITE_MISSING, "programs")],
    ),
    ("pu-employer-missing", lambda b: b.pu(employer=None), [(R.EMPLOYER_MISSING, "employer")]),
    ("jakon-employer-missing", lambda b: b.jakon(employer=None), [(R.EMPLOYER_MISSING, "employer")]),
    ("wage-missing", lambda b: b.pu(monthly_wage=None), [(R.WAGE_MISSING, "monthly_wage")]),
    ("wage-zero", lambda b: b.pu(monthly_wage=0), [(R.WAGE_MISSING, "monthly_wage")]),
    ("income-missing", lambda b: b.bpu(declared_income=None), [(R.INCOME_MISSING, "declared_income")]),
    ("income-below-minimum", lambda b: b.bpu(declared_income=999_999), [(R.INCOME_BELOW_MINIMUM, "declared_income")]),
    ("contract-value-missing", lambda b: b.jakon(contract_value=None), [(R.CONTRACT_VALUE_MISSING, "contract_value")]),
    ("contract-value-zero", lambda b: b.jakon(contract_value=0), [(R.CONTRACT_VALUE_MISSING, "contract_value")]),
    (
        "contract-months-missing",
        lambda b: b.pmi(contract_months=None),
        [(R.CONTRACT_MONTHS_MISSING, "contract_months")],
    ),
    ("wage-for-bpu", lambda b: b.bpu(monthly_wage=2_000_000), [(R.FIELD_NOT_APPLICABLE, "monthly_wage")]),
    ("income-for-pu", lambda b: b.pu(declared_income=2_000_000), [(R.FIELD_NOT_APPLICABLE, "declared_income")]),
    ("contract-value-for-pmi", lambda b: b.pmi(contract_value=1), [(R.FIELD_NOT_APPLICABLE, "contract_value")]),
    ("contract-months-for-bpu", lambda b: b.bpu(contract_months=12), [(R.FIELD_NOT_APPLICABLE, "contract_months")]),
    (
        "employer-for-bpu",
        lambda b: b.bpu(employer=Employer(registration_number="1", size=EmployerSize.MICRO)),
        [(R.FIELD_NOT_APPLICABLE, "employer")],
    ),
    (
        "apbd-for-an-informal-worker",
        lambda b: b.bpu(category=Category.INFORMAL),
        [(R.FUNDING_NOT_ALLOWED, "funding_source")],
    ),
    (
        "apbd-for-a-formal-employee",
        lambda b: b.pu(funding_source=FundingSource.APBD),
        [(R.FUNDING_NOT_ALLOWED, "funding_source")],
    ),
    (
        "self-for-jakon",
        lambda b: b.jakon(funding_source=FundingSource.SELF),
        [(R.FUNDING_NOT_ALLOWED, "funding_source")],
    ),
    (
        "coverage-start-too-early",
        lambda b: b.bpu(coverage_start=TODAY - timedelta(days=32)),
        [(R.COVERAGE_START_INVALID, "coverage_start")],
    ),
    (
        "coverage-start-too-late",
        lambda b: b.bpu(coverage_start=TODAY + timedelta(days=93)),
        [(R.COVERAGE_START_INVALID, "coverage_start")],
    ),
    (
        "everything-at-once",
        lambda b: b.bpu(
            worker=b.worker(nik="12", domicile_kecamatan="32.71.99"),
            region_code="32",
            category=Category.INFORMAL,
            programs=[P.JKK, P.JP, P.JP],
            declared_income=500_000,
            coverage_start=TODAY + timedelta(days=365),
        ),
        [
            (R.NIK_LENGTH, "worker.nik"),
            (R.REGION_NOT_REGENCY_CITY, "region_code"),
            (R.KECAMATAN_UNKNOWN, "worker.domicile_kecamatan"),
            (R.INCOME_BELOW_MINIMUM, "declared_income"),
            (R.PROGRAM_DUPLICATE, "programs"),
            (R.PROGRAM_NOT_OFFERED, "programs"),
            (R.PROGRAM_MANDATORY_MISSING, "programs"),
            (R.FUNDING_NOT_ALLOWED, "funding_source"),
            (R.COVERAGE_START_INVALID, "coverage_start"),
        ],
    ),
]

VALID_CASES: list[tuple[str, Case]] = [
    ("bpu-vulnerable-apbd", lambda b: b.bpu()),
    (
        "bpu-vulnerable-zakat-with-jht",
        lambda b: b.bpu(funding_source=FundingSource.ZAKAT, programs=[P.JKK, P.JKM, P.JHT]),
    ),
    ("bpu-informal-self", lambda b: b.bpu(category=Category.INFORMAL, funding_source=FundingSource.SELF)),
    ("pu-large-all-programs", lambda b: b.pu()),
    ("pu-large-without-jkp", lambda b: b.pu(programs=[P.JKK, P.JKM, P.JHT, P.JP])),
    ("pu-small-without-jp", lambda b: b.pu(EmployerSize.SMALL, programs=[P.JKK, P.JKM, P.JHT])),
    ("pu-micro-minimal", lambda b: b.pu(EmployerSize.MICRO, programs=[P.JKK, P.JKM])),
    ("pu-micro-with-jkp", lambda b: b.pu(EmployerSize.MICRO, programs=[P.JKK, P.JKM, P.JHT, P.JKP])),
    ("pu-jkp-at-53", lambda b: b.pu(worker=b.worker(birth_date=b.aged(53)))),
    ("pu-non-asn-apbd", lambda b: b.pu(category=Category.NON_ASN_STAFF, funding_source=FundingSource.APBD)),
    ("jakon", lambda b: b.jakon()),
    ("jakon-without-project-months", lambda b: b.jakon(contract_months=None)),
    ("pmi-self", lambda b: b.pmi()),
    ("pmi-placement-agency", lambda b: b.pmi(funding_source=FundingSource.EMPLOYER)),
    ("age-15", lambda b: b.bpu(worker=b.worker(birth_date=b.aged(15)))),
    ("no-upper-age-limit", lambda b: b.bpu(worker=b.worker(birth_date=b.aged(80)))),
    ("coverage-start-at-the-edges", lambda b: b.bpu(coverage_start=TODAY - timedelta(days=31))),
    ("coverage-start-today", lambda b: b.bpu(coverage_start=TODAY)),
    ("no-domicile", lambda b: b.bpu(worker=b.worker(domicile_kecamatan=None))),
]


def _findings(request: EnrollmentRequest, regions: Regions, **options: Any) -> list[tuple[ReasonCode, str | None]]:
    return [(v.code, v.field) for v in validate_enrollment(request, TODAY, regions, **options)]


@pytest.mark.parametrize(
    ("case", "expected"), [(c, e) for _, c, e in ENROLLMENT_CASES], ids=[i for i, _, _ in ENROLLMENT_CASES]
)
def test_enrollment_violations(
    case: Case, expected: list[tuple[ReasonCode, str | None]], build: Any, regions: Regions
) -> None:
    assert _findings(case(build), regions) == expected


@pytest.mark.parametrize("case", [c for _, c in VALID_CASES], ids=[i for i, _ in VALID_CASES])
def test_valid_enrollments(case: Case, build: Any, regions: Regions) -> None:
    assessment = assess_enrollment(case(build), TODAY, regions)
    assert assessment.violations == ()
    assert assessment.warnings == ()
    assert assessment.accepted


def test_a_configured_maximum_age(build: Any, regions: Regions) -> None:
    request = build.bpu(worker=build.worker(birth_date=build.aged(66)))
    assert _findings(request, regions, limits=Limits(maximum_age=65)) == [(R.AGE_ABOVE_LIMIT, "worker.birth_date")]
    assert _findings(request, regions, limits=Limits(maximum_age=66)) == []


def test_coverage_needs_rates_in_force(build: Any, regions: Regions) -> None:
    # Years ago, before the first BPU rate version: the coverage start is inside the window but unpriced.
    long_ago = date(2015, 3, 1)
    request = build.bpu(coverage_start=long_ago, worker=build.worker(birth_date=date(1980, 6, 5)))
    violations = validate_enrollment(request, long_ago, regions)
    assert [(v.code, v.subject) for v in violations] == [(R.COVERAGE_START_INVALID, "2015-03-01")]


def test_a_commuter_is_accepted_with_a_warning(build: Any, regions: Regions) -> None:
    # Domicile in Kota Bogor, responsible region Kabupaten Bogor.
    assessment = assess_enrollment(build.bpu(region_code="32.01"), TODAY, regions)
    assert assessment.accepted
    assert [(w.code, w.subject) for w in assessment.warnings] == [(R.KECAMATAN_NOT_IN_REGION, "32.71")]


def test_an_old_nik_prefix_is_accepted_with_a_warning(build: Any, regions: Regions) -> None:
    nik = format_nik("32.71.99", date(1990, 6, 5), Sex.FEMALE, 1)
    assessment = assess_enrollment(build.bpu(worker=build.worker(nik=nik)), TODAY, regions)
    assert assessment.accepted
    assert [w.code for w in assessment.warnings] == [R.NIK_REGION_UNKNOWN]
    assert assessment.nik is not None
    assert assessment.nik.kecamatan_code == "32.71.99"


def test_a_nik_from_1925_reads_as_2025_but_the_stated_date_decides(build: Any, regions: Regions) -> None:
    born = date(1925, 11, 1)
    request = build.bpu(worker=build.worker(birth_date=born))
    assessment = assess_enrollment(request, TODAY, regions)
    assert assessment.nik is not None
    assert assessment.nik.birth_date == date(2025, 11, 1)
    assert assessment.violations == ()


def test_violations_convert_to_the_contract(build: Any, regions: Regions) -> None:
    [violation] = validate_enrollment(build.bpu(declared_income=500_000), TODAY, regions)
    reason = violation.to_rejection()
    assert (reason.code, reason.field) == ("INCOME_BELOW_MINIMUM", "declared_income")
    assert reason.limit == "Rp1.000.000"
    assert reason.message_id.endswith("di bawah batas minimum Rp1.000.000.")
    assert reason.message_en.endswith("below the minimum of Rp1.000.000.")


def test_the_funding_matrix_covers_every_category() -> None:
    assert {c for cats in CATEGORIES.values() for c in cats} == set(Category)
    assert set(FUNDING) == {(s, c) for s, cats in CATEGORIES.items() for c in cats}
    public = {FundingSource.APBN, FundingSource.APBDES, FundingSource.CSR, FundingSource.ZAKAT}
    assert [key for key, allowed in FUNDING.items() if allowed & public] == [(Segment.BPU, Category.VULNERABLE)]


def test_every_domain_code_has_a_case() -> None:
    covered = {code for _, _, expected in ENROLLMENT_CASES for code, _ in expected}
    covered |= {code for _, _, expected in UPDATE_CASES for code, _ in expected}
    covered |= {code for _, _, code in TRANSITIONS if code is not None}
    # Tested on their own: the warnings (above) and the effective date of a change (test_change_rules.py).
    covered |= {R.NIK_REGION_UNKNOWN, R.KECAMATAN_NOT_IN_REGION, R.EFFECTIVE_DATE_INVALID}
    assert covered == set(ReasonCode) - SERVICE_CODES


# --- Age ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "on", "age"),
    [
        (date(1990, 6, 5), date(2025, 6, 4), 34),
        (date(1990, 6, 5), date(2025, 6, 5), 35),
        (date(2000, 2, 29), date(2025, 2, 28), 24),
        (date(2000, 2, 29), date(2025, 3, 1), 25),
        (date(2000, 2, 29), date(2024, 2, 29), 24),
    ],
)
def test_age_on(born: date, on: date, age: int) -> None:
    assert age_on(born, on) == age


@pytest.mark.parametrize(
    ("age", "band"),
    [
        (14, AgeBand.UNDER_20),
        (15, AgeBand.UNDER_20),
        (19, AgeBand.UNDER_20),
        (20, AgeBand.FROM_20),
        (29, AgeBand.FROM_20),
        (30, AgeBand.FROM_30),
        (45, AgeBand.FROM_40),
        (59, AgeBand.FROM_50),
        (60, AgeBand.FROM_60),
        (90, AgeBand.FROM_60),
    ],
)
def test_age_band(age: int, band: AgeBand, build: Any) -> None:
    assert age_band(build.aged(age, TODAY), TODAY) is band


def test_risk_is_carried_not_checked(build: Any, regions: Regions) -> None:
    employer = Employer(registration_number="1", size=EmployerSize.LARGE, jkk_risk=RiskLevel.VERY_HIGH)
    assert validate_enrollment(build.pu(employer=employer), TODAY, regions) == []


def _reasons(request: EnrollmentRequest, regions: Regions) -> list[Any]:
    return [v.to_rejection() for v in validate_enrollment(request, TODAY, regions)]


def test_each_missing_program_is_named(build: Any, regions: Regions) -> None:
    # The case: a non-ASN PU request with only JKK and JKM, for a large employer.
    request = build.pu(category=Category.NON_ASN_STAFF, funding_source=FundingSource.APBD, programs=[P.JKK, P.JKM])
    reasons = _reasons(request, regions)
    assert [(r.code, r.subject) for r in reasons] == [
        ("PROGRAM_MANDATORY_MISSING", "JHT"),
        ("PROGRAM_MANDATORY_MISSING", "JP"),
    ]
    assert [r.message_id for r in reasons] == ["Program wajib JHT belum dipilih.", "Program wajib JP belum dipilih."]
    assert [r.message_en for r in reasons] == [
        "The mandatory program JHT is missing.",
        "The mandatory program JP is missing.",
    ]


def test_each_missing_jkp_prerequisite_is_its_own_reason(build: Any, regions: Regions) -> None:
    reasons = _reasons(build.pu(EmployerSize.MICRO, programs=[P.JKK, P.JKM, P.JKP]), regions)
    assert [(r.code, r.subject) for r in reasons] == [("JKP_PREREQUISITE_MISSING", "JHT")]


#: Requests that break many rules at once, so that one code can come up more than once in an answer.
MANY_AT_ONCE: list[Case] = [
    lambda b: b.pu(programs=[P.JKP, P.JKP, P.JP, P.JP], worker=b.worker(nik="3271AB4506900001")),
    lambda b: b.pu(EmployerSize.MICRO, programs=[P.JKP], monthly_wage=None, declared_income=5, contract_value=9),
    lambda b: b.bpu(programs=[P.JP, P.JKP, P.JKK], employer=b.pu().employer, monthly_wage=1, contract_months=3),
    lambda b: b.jakon(programs=[P.JHT, P.JP, P.JKP], declared_income=1, monthly_wage=1),
    lambda b: b.pmi(programs=[P.JP, P.JP, P.JKP], region_code="32", worker=b.worker(domicile_kecamatan="99.99.99")),
]


@pytest.mark.parametrize("case", [c for _, c, _ in ENROLLMENT_CASES] + MANY_AT_ONCE)
def test_no_code_repeats_without_saying_what_differs(case: Case, build: Any, regions: Regions) -> None:
    reasons = _reasons(case(build), regions)
    facts = [(r.code, r.field, r.subject, r.limit) for r in reasons]
    assert len(set(facts)) == len(facts), facts
    for language in ("message_id", "message_en"):
        messages = [getattr(r, language) for r in reasons]
        assert len(set(messages)) == len(messages), messages


@pytest.mark.parametrize(
    ("segment_request", "too_young", "old_enough"),
    [
        (lambda b, born: b.pu(worker=b.worker(birth_date=born)), 17, 18),
        (lambda b, born: b.jakon(worker=b.worker(birth_date=born)), 17, 18),
        (lambda b, born: b.pmi(worker=b.worker(birth_date=born)), 17, 18),
        (lambda b, born: b.bpu(worker=b.worker(birth_date=born)), 14, 15),
    ],
    ids=["PU", "JAKON", "PMI", "BPU"],
)
def test_the_minimum_age_is_the_segments(
    segment_request: Callable[[Any, date], EnrollmentRequest],
    too_young: int,
    old_enough: int,
    build: Any,
    regions: Regions,
) -> None:
    young = _reasons(segment_request(build, build.aged(too_young)), regions)
    assert [(r.code, r.limit) for r in young] == [("AGE_BELOW_WORKING", str(old_enough))]
    assert f"belum berusia {old_enough} tahun" in young[0].message_id
    assert _reasons(segment_request(build, build.aged(old_enough)), regions) == []
