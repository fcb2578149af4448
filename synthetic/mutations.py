"""Spoiling a request on purpose: mutations that each break exactly one rule, labelled with its reason code.

A mutation is picked among those that apply to the draft's segment; one time in four a second one follows,
from another group and among those that leave every other rule alone, so that the expected codes are exactly
what the rules find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from services.registration.domain.age import age_on
from services.registration.domain.rules import CATEGORIES, DEFAULT_LIMITS, FUNDING
from shared.events import Category, EmployerSize, FundingSource, Segment, Sex
from shared.reasons import ReasonCode
from synthetic.mix import JHT, JKK, JKM, JKP, JP, TEXT

if TYPE_CHECKING:
    from collections.abc import Callable

    from synthetic.drafts import Draft, Maker

R = ReasonCode


def spoil(maker: Maker, d: Draft) -> tuple[ReasonCode, ...]:
    """Break one rule (and, one time in four, a second independent one); return the codes expected."""
    random_ = maker.random
    applicable = [m for m in _MUTATIONS if m.applies(d)]
    first = applicable[int(random_() * len(applicable))]
    codes = [first.apply(maker, d)]
    if random_() < 0.25:
        seconds = [m for m in _SECONDARY if m.group != first.group and m.applies(d)]
        if seconds:
            codes.append(seconds[int(random_() * len(seconds))].apply(maker, d))
    return tuple(sorted(codes))


@dataclass(frozen=True, slots=True)
class _Mutation:
    code: ReasonCode
    group: str  # at most one mutation per group, so that two never interact
    segments: frozenset[Segment]
    change: Callable[[Maker, Draft], None]
    condition: Callable[[Draft], bool] | None = None

    def applies(self, d: Draft) -> bool:
        return d.segment in self.segments and (self.condition is None or self.condition(d))

    def apply(self, maker: Maker, d: Draft) -> ReasonCode:
        self.change(maker, d)
        return self.code


_ALL = frozenset(Segment)


def _nik_length(m: Maker, d: Draft) -> None:
    d.nik = d.nik[:-1] if m.rng.random() < 0.5 else d.nik + "1"


def _nik_not_digits(m: Maker, d: Draft) -> None:
    at = int(m.rng.random() * 16)
    # No whitespace: a file reader may rightly trim it, which would turn this into a length error.
    d.nik = d.nik[:at] + m.rng.choice("OIl-.") + d.nik[at + 1 :]


def _nik_birth_date_invalid(m: Maker, d: Draft) -> None:
    ddmm = m.rng.choice(("3204", "0005", "0000", "7213", "3104", "7104", "3002", "1513", "4000"))
    d.nik = d.nik[:6] + ddmm + d.nik[10:]


def _nik_serial_zero(_: Maker, d: Draft) -> None:
    d.nik = d.nik[:12] + "0000"


def _nik_birth_date_mismatch(m: Maker, d: Draft) -> None:
    stated = d.birth
    d.birth = stated + timedelta(days=1 + int(m.rng.random() * 20))
    d.renik()  # the NIK now encodes another day...
    d.birth = stated  # ...than the one stated


def _nik_sex_mismatch(_: Maker, d: Draft) -> None:
    d.sex = Sex.MALE if d.sex is Sex.FEMALE else Sex.FEMALE


def _region_unknown(m: Maker, d: Draft) -> None:
    d.region_code = m.world.unknown_regency[d.regency.province]


def _region_not_regency_city(m: Maker, d: Draft) -> None:
    d.region_code = d.regency.province if m.rng.random() < 0.5 else d.kecamatan


def _kecamatan_unknown(m: Maker, d: Draft) -> None:
    d.domicile = d.regency.unknown_kecamatan if m.rng.random() < 0.7 else d.regency.code


def _age_below_working(m: Maker, d: Draft) -> None:
    d.birth = d.coverage_start - timedelta(days=int((5 + m.rng.random() * 8.5) * 365.2425))
    d.renik()


def _jkp_age_above_limit(m: Maker, d: Draft) -> None:
    d.birth = d.coverage_start - timedelta(days=int((56 + m.rng.random() * 7) * 365.2425))
    d.renik()
    d.programs = [JKK, JKM, JHT, JP, JKP]


def _jkp_eligible_age(d: Draft) -> bool:
    return age_on(d.birth, d.coverage_start) + 1 < DEFAULT_LIMITS.jkp_age_limit


def _jkp_prerequisite_missing(_: Maker, d: Draft) -> None:
    assert d.employer is not None  # noqa: S101 - every PU draft has an employer until a mutation drops it
    d.employer["size"] = TEXT[EmployerSize.MICRO]
    d.programs = [JKK, JKM, JKP]


def _program_not_offered(_: Maker, d: Draft) -> None:
    d.programs.append(JHT if d.segment is Segment.JAKON else JP)


def _program_mandatory_missing(_: Maker, d: Draft) -> None:
    d.programs.remove(JKM)


def _program_duplicate(_: Maker, d: Draft) -> None:
    d.programs.append(JKK)


def _employer_missing(_: Maker, d: Draft) -> None:
    d.employer = None


def _wage_missing(_: Maker, d: Draft) -> None:
    d.monthly_wage = None


def _income_missing(_: Maker, d: Draft) -> None:
    d.declared_income = None


def _income_below_minimum(m: Maker, d: Draft) -> None:
    d.declared_income = 1000 * int(100 + m.rng.random() * 899)


def _contract_value_missing(_: Maker, d: Draft) -> None:
    d.contract_value = None


def _contract_months_missing(_: Maker, d: Draft) -> None:
    d.contract_months = None


def _field_not_applicable(_: Maker, d: Draft) -> None:
    if d.segment is Segment.PU:
        d.declared_income = 1_000_000
    else:
        d.monthly_wage = 2_000_000


def _category_not_in_segment(m: Maker, d: Draft) -> None:
    others = sorted(c for c in Category if c not in CATEGORIES[d.segment])
    d.category = others[int(m.rng.random() * len(others))]


def _funding_not_allowed(m: Maker, d: Draft) -> None:
    allowed = FUNDING[(d.segment, d.category)]
    others = sorted(f for f in FundingSource if f not in allowed)
    d.funding = others[int(m.rng.random() * len(others))]


def _coverage_start_invalid(m: Maker, d: Draft) -> None:
    limits = DEFAULT_LIMITS
    if m.rng.random() < 0.5:
        d.coverage_start = m.today + timedelta(days=limits.max_future_days + 1 + int(m.rng.random() * 60))
    else:
        d.coverage_start = m.today - timedelta(days=limits.max_backdate_days + 1 + int(m.rng.random() * 200))


_ONLY_PU = frozenset({Segment.PU})
_ONLY_BPU = frozenset({Segment.BPU})

_MUTATIONS: tuple[_Mutation, ...] = (
    _Mutation(R.NIK_LENGTH, "nik", _ALL, _nik_length),
    _Mutation(R.NIK_NOT_DIGITS, "nik", _ALL, _nik_not_digits),
    _Mutation(R.NIK_BIRTH_DATE_INVALID, "nik", _ALL, _nik_birth_date_invalid),
    _Mutation(R.NIK_SERIAL_ZERO, "nik", _ALL, _nik_serial_zero),
    _Mutation(R.NIK_BIRTH_DATE_MISMATCH, "nik", _ALL, _nik_birth_date_mismatch),
    _Mutation(R.NIK_SEX_MISMATCH, "nik", _ALL, _nik_sex_mismatch),
    _Mutation(R.REGION_UNKNOWN, "region", _ALL, _region_unknown),
    _Mutation(R.REGION_NOT_REGENCY_CITY, "region", _ALL, _region_not_regency_city),
    _Mutation(R.KECAMATAN_UNKNOWN, "kecamatan", _ALL, _kecamatan_unknown),
    _Mutation(R.AGE_BELOW_WORKING, "age", _ALL, _age_below_working),
    _Mutation(R.AGE_ABOVE_LIMIT, "age", _ONLY_PU, _jkp_age_above_limit),
    _Mutation(R.CATEGORY_NOT_IN_SEGMENT, "category", _ALL, _category_not_in_segment),
    _Mutation(
        R.PROGRAM_NOT_OFFERED,
        "programs",
        frozenset({Segment.BPU, Segment.JAKON, Segment.PMI}),
        _program_not_offered,
    ),
    _Mutation(R.PROGRAM_MANDATORY_MISSING, "programs", _ALL, _program_mandatory_missing),
    _Mutation(R.PROGRAM_DUPLICATE, "programs", _ALL, _program_duplicate),
    _Mutation(R.JKP_PREREQUISITE_MISSING, "programs", _ONLY_PU, _jkp_prerequisite_missing, _jkp_eligible_age),
    _Mutation(R.EMPLOYER_MISSING, "employer", frozenset({Segment.PU, Segment.JAKON}), _employer_missing),
    _Mutation(R.WAGE_MISSING, "money", _ONLY_PU, _wage_missing),
    _Mutation(R.INCOME_MISSING, "money", _ONLY_BPU, _income_missing),
    _Mutation(R.INCOME_BELOW_MINIMUM, "money", _ONLY_BPU, _income_below_minimum),
    _Mutation(R.CONTRACT_VALUE_MISSING, "money", frozenset({Segment.JAKON}), _contract_value_missing),
    _Mutation(R.CONTRACT_MONTHS_MISSING, "money", frozenset({Segment.PMI}), _contract_months_missing),
    _Mutation(R.FIELD_NOT_APPLICABLE, "extra", frozenset({Segment.PU, Segment.BPU}), _field_not_applicable),
    _Mutation(R.FUNDING_NOT_ALLOWED, "funding", _ALL, _funding_not_allowed),
    _Mutation(R.COVERAGE_START_INVALID, "coverage", _ALL, _coverage_start_invalid),
)

# Mutations that leave every other rule alone whatever was broken first: candidates for a second break.
_SECONDARY: tuple[_Mutation, ...] = tuple(
    m
    for m in _MUTATIONS
    if m.code
    in {
        R.NIK_SEX_MISMATCH,
        R.REGION_UNKNOWN,
        R.REGION_NOT_REGENCY_CITY,
        R.KECAMATAN_UNKNOWN,
        R.PROGRAM_DUPLICATE,
        R.WAGE_MISSING,
        R.INCOME_MISSING,
        R.INCOME_BELOW_MINIMUM,
        R.CONTRACT_VALUE_MISSING,
        R.CONTRACT_MONTHS_MISSING,
        R.COVERAGE_START_INVALID,
    }
)

#: The codes the generator can label a request with.
GENERATED_CODES: frozenset[ReasonCode] = frozenset(m.code for m in _MUTATIONS)
