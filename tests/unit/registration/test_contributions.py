"""Contributions: the figures DOMAIN.md states, who pays, and the invariants every calculation keeps.

One module: its sections (one per segment, the invariants, the rate file) share the same request builders
and packaged rates; split, each part would need them all the same.
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from services.registration.domain.contributions import (
    IncompleteTermsError,
    calculate,
    placement_amount,
    tiered,
)
from services.registration.domain.rates import RateNotInForceError, RateTable, load_rate_table
from shared.events import (
    Category,
    Contributions,
    Employer,
    EmployerSize,
    EnrollmentRequest,
    FundingSource,
    Payer,
    Program,
    RiskLevel,
    Segment,
    Sex,
    Worker,
)

P = Program
ON = date(2025, 12, 1)
ALL_PU = [P.JKK, P.JKM, P.JHT, P.JP, P.JKP]
JP_CEILINGS = {
    2021: 8_754_600,
    2022: 9_077_600,
    2023: 9_559_600,
    2024: 10_042_300,
    2025: 10_547_400,
    2026: 11_086_300,
}
WORKER = Worker(nik="3271014506900001", full_name="Siti", birth_date=date(1990, 6, 5), sex=Sex.FEMALE)


def terms(segment: Segment, **changes: Any) -> EnrollmentRequest:
    """Terms for the calculator; built without validation so that any combination can be priced."""
    fields: dict[str, Any] = {
        "request_id": "c-1",
        "worker": WORKER,
        "region_code": "32.71",
        "segment": segment,
        "category": Category.FORMAL_EMPLOYEE,
        "employer": None,
        "programs": [P.JKK, P.JKM],
        "monthly_wage": None,
        "declared_income": None,
        "contract_value": None,
        "contract_months": None,
        "funding_source": FundingSource.EMPLOYER,
        "coverage_start": ON,
    }
    return EnrollmentRequest.model_construct(**(fields | changes))


def pu(wage: int, programs: list[Program] | None = None, **changes: Any) -> EnrollmentRequest:
    employer = Employer(
        registration_number="1", size=EmployerSize.LARGE, jkk_risk=changes.pop("risk", RiskLevel.VERY_LOW)
    )
    return terms(Segment.PU, monthly_wage=wage, employer=employer, programs=programs or ALL_PU, **changes)


def bpu(
    income: int, programs: list[Program] | None = None, funding: FundingSource = FundingSource.APBD
) -> EnrollmentRequest:
    return terms(
        Segment.BPU,
        category=Category.VULNERABLE,
        declared_income=income,
        programs=programs or [P.JKK, P.JKM],
        funding_source=funding,
    )


def rate_data() -> dict[str, Any]:
    """The packaged rate file as an operator sees it, ready to be edited."""
    text = resources.files("services.registration.domain").joinpath("rates.toml").read_text(encoding="utf-8")
    return tomllib.loads(text, parse_float=Decimal)


def rupiah(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def assert_consistent(c: Contributions) -> None:
    assert sum(c.by_program.values()) == sum(c.by_payer.values()) == c.total
    assert all(amount >= 0 for amount in [*c.by_program.values(), *c.by_payer.values()])


# --- BPU ----------------------------------------------------------------------------------------------------


def test_the_standard_package_for_vulnerable_workers() -> None:
    c = calculate(bpu(1_000_000), ON)
    assert c.by_program == {P.JKK: 10_000, P.JKM: 6_800}
    assert c.total == 16_800
    assert c.by_payer == {Payer.FUNDER: 16_800}


def test_the_standard_package_with_jht() -> None:
    c = calculate(bpu(1_000_000, [P.JKK, P.JKM, P.JHT]), ON)
    assert c.total == 36_800
    assert c.by_program[P.JHT] == 20_000


@given(st.sampled_from(FundingSource), st.dates(min_value=date(2015, 7, 1), max_value=date(2030, 12, 31)))
def test_the_standard_package_whoever_funds_it(funding: FundingSource, on: date) -> None:
    c = calculate(bpu(1_000_000, funding=funding), on)
    with_jht = calculate(bpu(1_000_000, [P.JKK, P.JKM, P.JHT], funding), on)
    assert (c.total, with_jht.total) == (16_800, 36_800)
    assert len(c.by_payer) == 1


def test_a_self_funded_bpu_worker_pays_everything() -> None:
    c = calculate(bpu(2_500_000, funding=FundingSource.SELF), ON)
    assert c.by_payer == {Payer.WORKER: 31_800}


# --- PU -----------------------------------------------------------------------------------------------------


def test_pu_shares_by_payer() -> None:
    c = calculate(pu(6_000_000, [P.JKK, P.JKM, P.JHT, P.JP], risk=RiskLevel.MEDIUM), ON)
    assert c.by_program == {P.JKK: 53_400, P.JKM: 18_000, P.JHT: 342_000, P.JP: 180_000}
    assert c.by_payer == {Payer.EMPLOYER: 53_400 + 18_000 + 222_000 + 120_000, Payer.WORKER: 120_000 + 60_000}
    assert_consistent(c)


@pytest.mark.parametrize(
    ("risk", "percent"),
    [
        (RiskLevel.VERY_LOW, "0.24"),
        (RiskLevel.LOW, "0.54"),
        (RiskLevel.MEDIUM, "0.89"),
        (RiskLevel.HIGH, "1.27"),
        (RiskLevel.VERY_HIGH, "1.74"),
    ],
)
def test_jkk_by_risk_level(risk: RiskLevel, percent: str) -> None:
    c = calculate(pu(7_777_777, [P.JKK, P.JKM], risk=risk), ON)
    assert c.by_program[P.JKK] == rupiah(Decimal(7_777_777) * Decimal(percent) / 100)


@pytest.mark.parametrize(("year", "ceiling"), JP_CEILINGS.items())
def test_the_jp_ceiling_changes_on_1_march(year: int, ceiling: int) -> None:
    rich = pu(50_000_000, [P.JKK, P.JKM, P.JP])
    on_day = calculate(rich, date(year, 3, 1))
    assert on_day.by_program[P.JP] == rupiah(Decimal(ceiling) * 2 / 100) + rupiah(Decimal(ceiling) / 100)
    if year > 2021:
        before = calculate(rich, date(year, 2, 28))
        previous = JP_CEILINGS[year - 1]
        assert before.by_program[P.JP] == rupiah(Decimal(previous) * 2 / 100) + rupiah(Decimal(previous) / 100)


def test_no_jp_before_the_first_known_ceiling() -> None:
    with pytest.raises(RateNotInForceError):
        calculate(pu(5_000_000, [P.JKK, P.JKM, P.JP]), date(2021, 2, 28))


def test_non_asn_staff_funded_by_apbd() -> None:
    c = calculate(pu(4_000_000, [P.JKK, P.JKM, P.JHT, P.JP], funding_source=FundingSource.APBD), ON)
    employer_share = 9_600 + 12_000 + 148_000 + 80_000
    assert c.by_payer == {Payer.WORKER: 80_000 + 40_000, Payer.FUNDER: employer_share}


def test_a_region_may_fund_the_worker_share_too() -> None:
    text = rate_data()
    text["policy"]["apbd_pays_worker_share"] = True
    generous = RateTable.model_validate(text)
    c = calculate(pu(4_000_000, [P.JKK, P.JKM, P.JHT, P.JP], funding_source=FundingSource.APBD), ON, generous)
    assert set(c.by_payer) == {Payer.FUNDER}
    assert c.total == calculate(pu(4_000_000, [P.JKK, P.JKM, P.JHT, P.JP]), ON).total


# --- JKP ----------------------------------------------------------------------------------------------------


def _jkp(wage: int, on: date) -> tuple[Contributions, Contributions]:
    return calculate(pu(wage), on), calculate(pu(wage, [P.JKK, P.JKM, P.JHT, P.JP]), on)


def test_jkp_is_0_46_percent_before_february_2025_and_0_36_percent_after() -> None:
    before, _ = _jkp(4_000_000, date(2025, 1, 31))
    after, _ = _jkp(4_000_000, date(2025, 2, 1))
    assert before.by_program[P.JKP] == 18_400  # 0.46 % of 4,000,000
    assert after.by_program[P.JKP] == 14_400  # 0.36 %
    assert before.by_payer[Payer.CENTRAL_GOVERNMENT] == after.by_payer[Payer.CENTRAL_GOVERNMENT] == 8_800


def test_jkp_costs_employer_and_worker_nothing_extra() -> None:
    with_jkp, without = _jkp(4_000_000, ON)
    assert with_jkp.by_payer[Payer.EMPLOYER] == without.by_payer[Payer.EMPLOYER]
    assert with_jkp.by_payer[Payer.WORKER] == without.by_payer[Payer.WORKER]
    assert with_jkp.by_program[P.JKK] == without.by_program[P.JKK] - 5_600  # 0.14 % moved to JKP
    assert with_jkp.total == without.total + with_jkp.by_payer[Payer.CENTRAL_GOVERNMENT]


def test_jkp_wages_are_capped_at_five_million() -> None:
    assert _jkp(20_000_000, ON)[0].by_program[P.JKP] == 18_000  # 0.36 % of 5,000,000


@given(
    st.integers(min_value=1_000_000, max_value=100_000_000),
    st.dates(min_value=date(2024, 6, 1), max_value=date(2025, 8, 31)),
)
def test_jkp_rate_around_the_change(wage: int, on: date) -> None:
    base = Decimal(min(wage, 5_000_000))
    moved = ["0.14", "0.10"] if on < date(2025, 2, 1) else ["0.14", "0"]
    expected = sum(rupiah(base * Decimal(p) / 100) for p in [*moved, "0.22"])
    with_jkp, without = _jkp(wage, on)
    assert with_jkp.by_program[P.JKP] == expected
    assert with_jkp.by_payer[Payer.EMPLOYER] == without.by_payer[Payer.EMPLOYER]


# --- JAKON and PMI ------------------------------------------------------------------------------------------


def test_jakon_tiers_are_marginal() -> None:
    table = load_rate_table().jakon[-1]
    # 100 m at 0.21 % + 400 m at 0.17 % + 500 m at 0.13 % + 1 bn at 0.11 %
    assert tiered(Decimal(2_000_000_000), table.jkk_tiers) == Decimal(2_640_000)
    assert tiered(Decimal(100_000_000), table.jkk_tiers) == Decimal(210_000)
    assert tiered(Decimal(0), table.jkk_tiers) == 0


def test_jakon_spreads_the_project_contribution_over_its_months() -> None:
    jakon = terms(Segment.JAKON, contract_value=2_000_000_000, contract_months=10, category=Category.CONSTRUCTION)
    c = calculate(jakon, ON)
    assert c.by_program == {P.JKK: 264_000, P.JKM: 26_000}
    assert c.by_payer == {Payer.EMPLOYER: 290_000}
    whole = calculate(jakon.model_copy(update={"contract_months": None}), ON)
    assert whole.total == 2_900_000


@pytest.mark.parametrize(
    ("months", "amount"),
    [
        (3, 108_000),
        (6, 108_000),
        (12, 189_000),
        (18, 189_000 + 6 * 13_500),
        (24, 332_500),
        (30, 332_500 + 6 * 13_500),
    ],
)
def test_pmi_placement_packages(months: int, amount: int) -> None:
    assert placement_amount(months, load_rate_table().pmi[-1]) == amount


def test_pmi_monthly_equivalent() -> None:
    c = calculate(terms(Segment.PMI, contract_months=24, funding_source=FundingSource.SELF), ON)
    assert c.total == rupiah((Decimal(37_500) + 332_500) / 24)
    assert c.by_payer == {Payer.WORKER: c.total}


# --- Invariants ---------------------------------------------------------------------------------------------

# From the first date every segment's rates are in force (PMI: Permenaker 4/2023).
dates = st.dates(min_value=date(2023, 3, 1), max_value=date(2027, 12, 31))


@st.composite
def any_terms(draw: st.DrawFn) -> EnrollmentRequest:
    segment = draw(st.sampled_from(Segment))
    funding = draw(st.sampled_from(FundingSource))
    if segment is Segment.PU:
        programs = [P.JKK, P.JKM, *draw(st.lists(st.sampled_from([P.JHT, P.JP, P.JKP]), unique=True))]
        return pu(
            draw(st.integers(min_value=1, max_value=200_000_000)),
            programs,
            risk=draw(st.sampled_from(RiskLevel)),
            funding_source=funding,
        )
    if segment is Segment.BPU:
        programs = [P.JKK, P.JKM, *draw(st.lists(st.just(P.JHT), max_size=1))]
        return bpu(draw(st.integers(min_value=0, max_value=50_000_000)), programs, funding)
    if segment is Segment.JAKON:
        return terms(
            segment,
            contract_value=draw(st.integers(min_value=1, max_value=10**13)),
            contract_months=draw(st.none() | st.integers(min_value=1, max_value=60)),
            funding_source=funding,
        )
    programs = [P.JKK, P.JKM, *draw(st.lists(st.just(P.JHT), max_size=1))]
    return terms(
        segment,
        contract_months=draw(st.integers(min_value=1, max_value=60)),
        programs=programs,
        funding_source=funding,
    )


@given(any_terms(), dates)
def test_every_split_adds_up_to_the_total(request: EnrollmentRequest, on: date) -> None:
    c = calculate(request, on)
    assert_consistent(c)
    assert set(c.by_program) == set(request.programs)
    assert c.as_of == on


@given(
    st.integers(min_value=1, max_value=200_000_000),
    st.dates(min_value=date(2021, 3, 1), max_value=date(2027, 12, 31)),
)
def test_the_jp_base_never_exceeds_the_ceiling(wage: int, on: date) -> None:
    ceiling = (
        JP_CEILINGS[on.year if on >= date(on.year, 3, 1) else on.year - 1] if on.year <= 2026 else JP_CEILINGS[2026]
    )
    jp = calculate(pu(wage, [P.JKK, P.JKM, P.JP]), on).by_program[P.JP]
    at_ceiling = calculate(pu(ceiling, [P.JKK, P.JKM, P.JP]), on).by_program[P.JP]
    assert jp <= at_ceiling
    if wage >= ceiling:
        assert jp == at_ceiling


# --- The rate file ------------------------------------------------------------------------------------------


def test_the_packaged_rates_load_once() -> None:
    assert load_rate_table() is load_rate_table()
    table = load_rate_table()
    assert table.version
    assert [c.amount for c in table.pu.jp_wage_ceiling] == [Decimal(v) for v in JP_CEILINGS.values()]
    assert str(table.pu.jkk[0].very_low) == "0.24"  # read as written, not as a binary float


def test_an_operator_correction_takes_effect_without_code() -> None:
    text = rate_data()
    text["bpu"][0]["jkm_amount"] = Decimal(7_000)
    corrected = RateTable.model_validate(text)
    assert calculate(bpu(1_000_000), ON, corrected).total == 17_000


@pytest.mark.parametrize(
    "breakage",
    [
        lambda t: t["pu"]["jkk"][0].update(very_lw=1),  # a typo in a key
        lambda t: t["pu"]["jkm"][0].update(employer=-1),
        lambda t: t["pu"]["jp_wage_ceiling"].append(dict(t["pu"]["jp_wage_ceiling"][0])),  # two versions, one date
        lambda t: t["jakon"][0]["jkk_tiers"].reverse(),
        lambda t: t.update(bpu=[]),
    ],
)
def test_a_broken_rate_file_fails_at_load(breakage: Any) -> None:
    text = rate_data()
    breakage(text)
    with pytest.raises(ValidationError):
        RateTable.model_validate(text)


def test_versions_may_be_listed_in_any_order() -> None:
    text = rate_data()
    text["pu"]["jp_wage_ceiling"].reverse()
    assert RateTable.model_validate(text).pu.jp_wage_ceiling == load_rate_table().pu.jp_wage_ceiling


def test_incomplete_terms_are_refused() -> None:
    with pytest.raises(IncompleteTermsError):
        calculate(terms(Segment.PU, monthly_wage=5_000_000), ON)  # no employer, so no JKK risk level
    with pytest.raises(IncompleteTermsError):
        calculate(terms(Segment.BPU), ON)
    with pytest.raises(IncompleteTermsError):
        calculate(terms(Segment.JAKON), ON)
    with pytest.raises(IncompleteTermsError):
        calculate(terms(Segment.PMI), ON)


def test_no_rate_before_the_first_version() -> None:
    with pytest.raises(RateNotInForceError):
        calculate(bpu(1_000_000), date(2015, 6, 30))
    assert calculate(bpu(1_000_000), date(2015, 7, 1)).total == 16_800


def test_the_program_table_per_employer_size() -> None:
    programs = load_rate_table().programs
    assert programs.rule(Segment.PU, EmployerSize.LARGE).mandatory == {P.JKK, P.JKM, P.JHT, P.JP}
    assert programs.rule(Segment.PU, EmployerSize.SMALL).mandatory == {P.JKK, P.JKM, P.JHT}
    assert programs.rule(Segment.PU, EmployerSize.MICRO).mandatory == {P.JKK, P.JKM}
    assert programs.rule(Segment.PU).mandatory == {P.JKK, P.JKM}
    assert programs.rule(Segment.PU).offered == set(Program)
    assert programs.rule(Segment.BPU).offered == {P.JKK, P.JKM, P.JHT}
    assert programs.rule(Segment.JAKON).offered == {P.JKK, P.JKM}
    assert programs.rule(Segment.PMI).offered == {P.JKK, P.JKM, P.JHT}


def test_a_date_between_versions_uses_the_older_one() -> None:
    rich = pu(20_000_000, [P.JKK, P.JKM, P.JP])
    late_february = calculate(rich, date(2026, 2, 28))
    march_before = calculate(rich, date(2025, 3, 1))
    assert late_february.by_program == march_before.by_program
