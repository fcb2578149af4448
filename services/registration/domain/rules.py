"""Enrollment rules: every reason a partner's request cannot be accepted, found in one pass.

Each validator returns all violations, not the first, so a partner fixes a request once. The rules take
`today` and the region reference as parameters; they read no clock, no database and no broker. Figures that
come from regulations (rates, the program table, the BPU minimum income) are read from `rates.toml` through
`rates.RateTable`; limits that are policy choices are in `Limits`. The rules for changes to a participation
(update, termination, reactivation) are in `changes`, and share the checks here.

Decisions worth knowing:
- An invalid NIK is reported part by part, and the checks of the NIK against the stated birth date and sex
  are skipped until it is valid (they would only repeat the same problem).
- The NIK's two-digit year leaves the century open, so the stated birth date is compared on day, month and
  two-digit year, and age rules use the stated date.
- A domicile kecamatan outside the responsible regency/city is a warning (`KECAMATAN_NOT_IN_REGION`), not a
  rejection: commuting across a regency border is ordinary (a city's non-ASN staff living in the
  neighbouring kabupaten), and refusing them would leave workers uncovered. The registration service records
  the warning; reporting rolls the participant up under `region_code`.
- Ages are taken on the coverage start (or the update's effective date). The minimum age depends on the
  segment (`MINIMUM_AGE`, with the law behind each figure). There is no general upper age limit, as
  DOMAIN.md names none (`Limits.maximum_age` can set one); JKP is open only to a worker under 54 at
  registration (PP 37/2021), reported as `AGE_ABOVE_LIMIT` on `programs`.
- Every finding names its subject (the program, the NIK character, the region) and the limit it broke, so
  one code twice in an answer always says what differs; JKP's missing prerequisites are one finding each,
  like missing mandatory programs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from services.registration.domain.age import age_on
from services.registration.domain.nik import ParsedNik, parse_nik
from services.registration.domain.rates import RateNotInForceError, RateTable, load_rate_table
from services.registration.domain.violations import Violation
from shared.events import (
    Category,
    EmployerSize,
    EnrollmentRequest,
    FundingSource,
    Program,
    Segment,
)
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from collections.abc import Sequence

    from services.registration.domain.rates import ProgramRule
    from shared.regions import Regions

R = ReasonCode


#: The minimum age at coverage start per segment, and why (docs/reason-codes.md prints both):
#:
#: - PU 18: an employer may not employ a child, anyone under 18 (UU 13/2003 Ketenagakerjaan art. 68 with
#:   art. 1 point 26). Its exceptions (light work from 13 to 15, art. 69; work within schooling from 14, art.
#:   70; developing a talent, art. 71) are narrow, supervised arrangements, not employment a partner enrolls
#:   in bulk; a branch office handles them.
#: - JAKON 18: construction sites are hazardous work, one of the worst forms of child labour that UU 13/2003
#:   art. 74 forbids for anyone under 18 (Kepmenakertrans 235/MEN/2003 lists the hazardous work).
#: - PMI 18: a migrant worker must be at least 18 (UU 18/2017 Pelindungan PMI art. 5 letter a).
#: - BPU 15: a self-employed or informal worker has no employer, whom art. 68 binds; 15 is the general
#:   minimum age for work Indonesia declared when ratifying ILO Convention 138 (UU 20/1999), and the age from
#:   which BPS counts the working-age population. Refusing a 16-year-old street vendor would leave a
#:   vulnerable worker unprotected, which Inpres 2/2021 asks regions to avoid.
MINIMUM_AGE: dict[Segment, int] = {Segment.PU: 18, Segment.BPU: 15, Segment.JAKON: 18, Segment.PMI: 18}
MINIMUM_AGE_BASIS: dict[Segment, str] = {
    Segment.PU: "UU 13/2003 art. 68 jo. art. 1 angka 26 (no employment under 18)",
    Segment.BPU: "UU 20/1999 (ILO C138, minimum age 15); BPS working age",
    Segment.JAKON: "UU 13/2003 art. 74; Kepmenakertrans 235/MEN/2003 (hazardous work)",
    Segment.PMI: "UU 18/2017 art. 5 huruf a",
}


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits that are policy rather than regulation, kept together so a deployment can change them."""

    #: The minimum age (usia kerja) at coverage start, per segment (see `MINIMUM_AGE`).
    minimum_age: dict[Segment, int] = field(default_factory=lambda: dict(MINIMUM_AGE))
    #: The oldest age accepted for enrollment; None because no regulation in DOMAIN.md sets one.
    maximum_age: int | None = None
    #: JKP only for a worker under this age at registration (PP 37/2021 art. 4).
    jkp_age_limit: int = 54
    #: How far before today a coverage start or an effective date may lie (partners batch late).
    max_backdate_days: int = 31
    #: How far after today a coverage start or an effective date may lie.
    max_future_days: int = 92
    #: Terminations are often reported late (a death, a resignation found at month end): allow a year.
    termination_max_backdate_days: int = 366


DEFAULT_LIMITS = Limits()

#: The earliest coverage start a migration may carry: BPJS Ketenagakerjaan's programs under the 2015
#: regulations (PP 44/45/46 of 2015) began on 1 July 2015, the first date the rate file prices.
MIGRATION_EARLIEST = date(2015, 7, 1)

#: Which categories belong to which segment.
CATEGORIES: dict[Segment, frozenset[Category]] = {
    Segment.PU: frozenset({Category.FORMAL_EMPLOYEE, Category.NON_ASN_STAFF}),
    Segment.BPU: frozenset({Category.INFORMAL, Category.VULNERABLE}),
    Segment.JAKON: frozenset({Category.CONSTRUCTION}),
    Segment.PMI: frozenset({Category.MIGRANT}),
}

_PUBLIC_FUNDERS = frozenset(
    {FundingSource.APBD, FundingSource.APBN, FundingSource.APBDES, FundingSource.CSR, FundingSource.ZAKAT}
)

#: Funding sources allowed per segment and category (sumber pendanaan iuran):
#:
#: | segment | category        | allowed                                   |
#: |---------|-----------------|-------------------------------------------|
#: | PU      | FORMAL_EMPLOYEE | EMPLOYER                                  |
#: | PU      | NON_ASN_STAFF   | EMPLOYER, APBD (the region is the employer) |
#: | BPU     | INFORMAL        | SELF                                      |
#: | BPU     | VULNERABLE      | SELF, APBD, APBN, APBDES, CSR, ZAKAT      |
#: | JAKON   | CONSTRUCTION    | EMPLOYER (the contractor)                 |
#: | PMI     | MIGRANT         | SELF, EMPLOYER (the placement agency)     |
#:
#: Public budgets and charity pay only for vulnerable workers (pekerja rentan, Inpres 2/2021) and, through
#: APBD, for a region's own non-ASN staff. The request cannot show that a non-ASN worker's employer is the
#: government of `region_code`; the registration service checks that the partner may act for the region.
FUNDING: dict[tuple[Segment, Category], frozenset[FundingSource]] = {
    (Segment.PU, Category.FORMAL_EMPLOYEE): frozenset({FundingSource.EMPLOYER}),
    (Segment.PU, Category.NON_ASN_STAFF): frozenset({FundingSource.EMPLOYER, FundingSource.APBD}),
    (Segment.BPU, Category.INFORMAL): frozenset({FundingSource.SELF}),
    (Segment.BPU, Category.VULNERABLE): frozenset({FundingSource.SELF, *_PUBLIC_FUNDERS}),
    (Segment.JAKON, Category.CONSTRUCTION): frozenset({FundingSource.EMPLOYER}),
    (Segment.PMI, Category.MIGRANT): frozenset({FundingSource.SELF, FundingSource.EMPLOYER}),
}

#: JKP needs these programs too (PP 37/2021 art. 4), plus JP where the employer is medium or large.
JKP_PREREQUISITES = frozenset({Program.JKK, Program.JKM, Program.JHT})
_JKP_NEEDS_JP = frozenset({EmployerSize.MEDIUM, EmployerSize.LARGE})


@dataclass(frozen=True, slots=True)
class Assessment:
    """The outcome of the enrollment rules: violations reject, warnings are recorded with the participant."""

    violations: tuple[Violation, ...]
    warnings: tuple[Violation, ...]
    nik: ParsedNik | None

    @property
    def accepted(self) -> bool:
        return not self.violations


# --- Enrollment --------------------------------------------------------------------------------------------


def assess_enrollment(
    request: EnrollmentRequest,
    today: date,
    regions: Regions,
    *,
    limits: Limits = DEFAULT_LIMITS,
    rates: RateTable | None = None,
) -> Assessment:
    """Every violation and warning of an enrollment request, in the order of the request's fields."""
    table = rates if rates is not None else load_rate_table()
    worker = request.worker
    found: list[Violation] = []

    parsed = parse_nik(worker.nik, today, regions)
    if isinstance(parsed, ParsedNik):
        found.extend(parsed.warnings)
        if not parsed.matches_birth_date(worker.birth_date):
            found.append(Violation(R.NIK_BIRTH_DATE_MISMATCH, "worker.birth_date"))
        if parsed.sex != worker.sex:
            found.append(Violation(R.NIK_SEX_MISMATCH, "worker.sex"))
    else:
        found.extend(parsed)
    found.extend(_age(request.segment, worker.birth_date, request.coverage_start, limits))
    found.extend(_regions(request, regions))
    found.extend(_category(request.segment, request.category))
    found.extend(_terms(request, table))
    employer_size = request.employer.size if request.employer is not None else None
    rule = table.programs.rule(request.segment, employer_size)
    age = age_on(worker.birth_date, request.coverage_start)
    found.extend(check_programs(rule, employer_size, request.programs, age, limits))
    found.extend(_funding(request.segment, request.category, request.funding_source))
    found.extend(_coverage_start(request, today, table, limits))

    return Assessment(
        violations=tuple(f for f in found if not f.is_warning),
        warnings=tuple(f for f in found if f.is_warning),
        nik=parsed if isinstance(parsed, ParsedNik) else None,
    )


def validate_enrollment(
    request: EnrollmentRequest,
    today: date,
    regions: Regions,
    *,
    limits: Limits = DEFAULT_LIMITS,
    rates: RateTable | None = None,
) -> list[Violation]:
    """Every violation of an enrollment request (warnings left out; see `assess_enrollment`)."""
    return list(assess_enrollment(request, today, regions, limits=limits, rates=rates).violations)


def _age(segment: Segment, birth_date: date, on: date, limits: Limits) -> list[Violation]:
    age = age_on(birth_date, on)
    found: list[Violation] = []
    minimum = limits.minimum_age[segment]
    if age < minimum:
        found.append(Violation(R.AGE_BELOW_WORKING, "worker.birth_date", segment.value, str(minimum)))
    if limits.maximum_age is not None and age > limits.maximum_age:
        found.append(Violation(R.AGE_ABOVE_LIMIT, "worker.birth_date", limit=str(limits.maximum_age)))
    return found


def _regions(request: EnrollmentRequest, regions: Regions) -> list[Violation]:
    found: list[Violation] = []
    region = regions.get(request.region_code)
    if region is None:
        found.append(Violation(R.REGION_UNKNOWN, "region_code", request.region_code))
    elif region.level != "regency/city":
        found.append(Violation(R.REGION_NOT_REGENCY_CITY, "region_code", request.region_code))
        region = None
    code = request.worker.domicile_kecamatan
    if code is not None:
        kecamatan = regions.get(code)
        if kecamatan is None or kecamatan.level != "kecamatan":
            found.append(Violation(R.KECAMATAN_UNKNOWN, "worker.domicile_kecamatan", code))
        elif region is not None and kecamatan.parent_code != region.code:
            found.append(
                Violation(
                    R.KECAMATAN_NOT_IN_REGION,
                    "worker.domicile_kecamatan",
                    kecamatan.parent_code,
                )
            )
    return found


def _category(segment: Segment, category: Category) -> list[Violation]:
    if category in CATEGORIES[segment]:
        return []
    allowed = ", ".join(sorted(c.value for c in CATEGORIES[segment]))
    return [Violation(R.CATEGORY_NOT_IN_SEGMENT, "category", category.value, allowed)]


def not_applicable(field: str, segment: Segment) -> Violation:
    """A field the segment has no use for: left out rather than silently ignored."""
    return Violation(R.FIELD_NOT_APPLICABLE, field, segment.value)


def _terms(request: EnrollmentRequest, table: RateTable) -> list[Violation]:
    """The figures the contribution is computed from: each segment needs its own and no other's."""
    return [
        *_employer(request),
        *_wage(request),
        *_income(request, table),
        *_contract(request),
    ]


def _employer(request: EnrollmentRequest) -> list[Violation]:
    if request.segment in {Segment.PU, Segment.JAKON} and request.employer is None:
        return [Violation(R.EMPLOYER_MISSING, "employer", request.segment.value)]
    if request.segment == Segment.BPU and request.employer is not None:
        return [not_applicable("employer", request.segment)]
    return []  # PMI may name the placement agency as employer, or not


def _wage(request: EnrollmentRequest) -> list[Violation]:
    if request.segment == Segment.PU:
        return [] if request.monthly_wage else [Violation(R.WAGE_MISSING, "monthly_wage")]
    return [] if request.monthly_wage is None else [not_applicable("monthly_wage", request.segment)]


def _income(request: EnrollmentRequest, table: RateTable) -> list[Violation]:
    if request.segment == Segment.BPU:
        return check_declared_income(request.declared_income, request.coverage_start, table, required=True)
    return [] if request.declared_income is None else [not_applicable("declared_income", request.segment)]


def _contract(request: EnrollmentRequest) -> list[Violation]:
    """JAKON needs the contract value; PMI the placement contract's months. JAKON may give its project's
    months too: the project's contribution is then spread over them."""
    segment = request.segment
    found: list[Violation] = []
    if segment == Segment.JAKON:
        if not request.contract_value:
            found.append(Violation(R.CONTRACT_VALUE_MISSING, "contract_value"))
    elif request.contract_value is not None:
        found.append(not_applicable("contract_value", segment))
    if segment == Segment.PMI:
        if request.contract_months is None:
            found.append(Violation(R.CONTRACT_MONTHS_MISSING, "contract_months"))
    elif segment != Segment.JAKON and request.contract_months is not None:
        found.append(not_applicable("contract_months", segment))
    return found


def check_declared_income(income: int | None, on: date, table: RateTable, *, required: bool) -> list[Violation]:
    """A BPU worker's declared income: given where required, and not below the minimum in force on `on`."""
    if income is None:
        return [Violation(R.INCOME_MISSING, "declared_income")] if required else []
    try:
        minimum = table.bpu_in_force(on).minimum_declared_income
    except RateNotInForceError:
        return []  # the date itself is reported as out of range
    if income < minimum:
        return [Violation(R.INCOME_BELOW_MINIMUM, "declared_income", limit=f"Rp{int(minimum):,}".replace(",", "."))]
    return []


def check_programs(
    rule: ProgramRule,
    employer_size: EmployerSize | None,
    programs: Sequence[Program],
    age: int | None,
    limits: Limits,
) -> list[Violation]:
    """The program table's rule for the segment (and PU employer size), then JKP's own conditions."""
    found, missing = _program_table(rule, programs)
    if Program.JKP in programs and Program.JKP in rule.offered:
        found.extend(_jkp(frozenset(programs) | missing, employer_size, age, limits))
    return found


def _program_table(rule: ProgramRule, programs: Sequence[Program]) -> tuple[list[Violation], frozenset[Program]]:
    """Findings in the table's terms, and the mandatory programs found missing."""
    chosen, offered = frozenset(programs), rule.offered
    if len(chosen) == len(programs) and chosen <= offered and rule.mandatory <= chosen:
        return [], frozenset()  # nearly every request: nothing to report, and no finding to build
    # One finding per repeated program, however often it repeats.
    repeated = {p for i, p in enumerate(programs) if p in programs[:i]}
    found = [Violation(R.PROGRAM_DUPLICATE, "programs", p.value) for p in Program if p in repeated]
    found.extend(
        Violation(R.PROGRAM_NOT_OFFERED, "programs", p.value) for p in Program if p in chosen and p not in offered
    )
    missing = frozenset(p for p in Program if p in rule.mandatory and p not in chosen)
    found.extend(Violation(R.PROGRAM_MANDATORY_MISSING, "programs", p.value) for p in Program if p in missing)
    return found, missing


def _jkp(
    reported: frozenset[Program], employer_size: EmployerSize | None, age: int | None, limits: Limits
) -> list[Violation]:
    """JKP (PP 37/2021 art. 4): under 54 at registration, and enrolled in its prerequisite programs.

    `reported` holds the chosen programs and those already reported as missing, so that a prerequisite that
    is mandatory anyway is not reported twice.
    """
    found: list[Violation] = []
    if age is not None and age >= limits.jkp_age_limit:
        found.append(Violation(R.AGE_ABOVE_LIMIT, "programs", Program.JKP.value, str(limits.jkp_age_limit)))
    needed = JKP_PREREQUISITES | ({Program.JP} if employer_size in _JKP_NEEDS_JP else frozenset())
    found.extend(
        Violation(R.JKP_PREREQUISITE_MISSING, "programs", p.value) for p in Program if p in needed and p not in reported
    )
    return found


def _funding(segment: Segment, category: Category, funding: FundingSource) -> list[Violation]:
    allowed = FUNDING.get((segment, category))
    if allowed is None:
        # The category is wrong for the segment (reported already): accept what any category of it allows.
        allowed = frozenset().union(*(FUNDING[(segment, c)] for c in CATEGORIES[segment]))
    if funding in allowed:
        return []
    permitted = ", ".join(f.value for f in FundingSource if f in allowed)
    return [Violation(R.FUNDING_NOT_ALLOWED, "funding_source", funding.value, permitted)]


def outside_window(on: date, today: date, back_days: int, ahead_days: int) -> str | None:
    """None when `on` lies in the window around `today`, else the window as a violation's detail."""
    earliest, latest = today - timedelta(days=back_days), today + timedelta(days=ahead_days)
    if earliest <= on <= latest:
        return None
    return f"{earliest.isoformat()} – {latest.isoformat()}"


def _coverage_start(request: EnrollmentRequest, today: date, table: RateTable, limits: Limits) -> list[Violation]:
    """Within the window around today; a migration may reach back to any day with rates, but not ahead: an
    existing participation has already started."""
    if request.migrated_from is not None:
        back_days, ahead_days = (today - MIGRATION_EARLIEST).days, 0
    else:
        back_days, ahead_days = limits.max_backdate_days, limits.max_future_days
    outside = outside_window(request.coverage_start, today, back_days, ahead_days)
    if outside is not None:
        return [Violation(R.COVERAGE_START_INVALID, "coverage_start", limit=outside)]
    if not table.in_force_for(request.segment, request.programs, request.coverage_start):
        return [Violation(R.COVERAGE_START_INVALID, "coverage_start", request.coverage_start.isoformat())]
    return []
