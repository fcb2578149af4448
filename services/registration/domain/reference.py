"""The reference a partner reads in `docs/reason-codes.md`: every rule's thresholds and legal basis.

The figures come from the objects the rules use (`Limits`, `MINIMUM_AGE`, the rate file, the category,
funding and program tables), so the document cannot drift from the code: `python -m
services.registration.domain.reference` rewrites it and a test compares the committed copy.
"""

from __future__ import annotations

from datetime import date

from services.registration.domain.nik import FEMALE_DAY_OFFSET, NIK_DIGITS
from services.registration.domain.rates import RateTable, load_rate_table
from services.registration.domain.rules import (
    CATEGORIES,
    DEFAULT_LIMITS,
    FUNDING,
    JKP_PREREQUISITES,
    MIGRATION_EARLIEST,
    MINIMUM_AGE_BASIS,
    Limits,
)
from shared.events import EmployerSize, Program, Segment
from shared.reasons import DOCS_PATH, ReasonCode, RuleReference, markdown_table

R = ReasonCode
_NIK_BASIS = "UU 24/2013 Administrasi Kependudukan art. 13 (one NIK per resident); structure per Dukcapil"
_REGIONS_BASIS = "Kepmendagri 300.2.2-2138/2025 (region codes; shared/data/README.md)"
_CONTRACT_BASIS = "the Lindungi contract (docs/asyncapi/, docs/schemas/)"
_PERPRES = "Perpres 109/2013 art. 6"


def _codes(programs: frozenset[Program]) -> str:
    return ", ".join(p.value for p in Program if p in programs) or "none"


def _program_rules(table: RateTable) -> str:
    rules = [(f"PU {size.value.lower()}", table.programs.rule(Segment.PU, size)) for size in EmployerSize]
    rules += [(s.value, table.programs.rule(s)) for s in (Segment.BPU, Segment.JAKON, Segment.PMI)]
    return "; ".join(f"{name}: {_codes(rule.mandatory)} (optional {_codes(rule.optional)})" for name, rule in rules)


def _window(limits: Limits) -> str:
    return f"{limits.max_backdate_days} days before today to {limits.max_future_days} days after"


def _earliest_rates(table: RateTable) -> date:
    return min(v.effective_from for v in (*table.pu.jkk, *table.bpu, *table.jakon, *table.pmi))


def _ages(limits: Limits) -> tuple[str, str]:
    ordered = sorted(limits.minimum_age.items(), key=lambda item: list(Segment).index(item[0]))
    thresholds = ", ".join(f"{segment.value} {age}" for segment, age in ordered) + " years on the coverage start"
    basis = "; ".join(f"{segment.value}: {MINIMUM_AGE_BASIS[segment]}" for segment, _ in ordered)
    return thresholds, basis


def _funding() -> str:
    return "; ".join(
        f"{segment.value}/{category.value}: {', '.join(sorted(f.value for f in allowed))}"
        for (segment, category), allowed in FUNDING.items()
    )


def rule_references(limits: Limits = DEFAULT_LIMITS, rates: RateTable | None = None) -> dict[ReasonCode, RuleReference]:
    """Thresholds and basis of every rule the registration service applies, by the code it rejects with."""
    table = rates if rates is not None else load_rate_table()
    bpu = table.bpu[-1]
    ages, ages_basis = _ages(limits)
    maximum = f"{limits.maximum_age} years" if limits.maximum_age is not None else "no general limit"
    prerequisites = _codes(frozenset(JKP_PREREQUISITES))
    ref = RuleReference
    return {
        R.NIK_LENGTH: ref(f"exactly {NIK_DIGITS} characters", _NIK_BASIS),
        R.NIK_NOT_DIGITS: ref("ASCII digits 0-9 only; the reason names each other character's position", _NIK_BASIS),
        R.NIK_BIRTH_DATE_INVALID: ref(
            f"positions 7-12 DDMMYY, day 01-31 (women {FEMALE_DAY_OFFSET + 1}-{FEMALE_DAY_OFFSET + 31}), month 01-12",
            _NIK_BASIS,
        ),
        R.NIK_SERIAL_ZERO: ref("positions 13-16 from 0001", _NIK_BASIS),
        R.NIK_REGION_UNKNOWN: ref("positions 1-6 against the current region list", _REGIONS_BASIS),
        R.NIK_BIRTH_DATE_MISMATCH: ref("day, month and two-digit year agree with positions 7-12", _NIK_BASIS),
        R.NIK_SEX_MISMATCH: ref(f"women's NIK birth day is the day plus {FEMALE_DAY_OFFSET}", _NIK_BASIS),
        R.REGION_UNKNOWN: ref("a code of the region list", _REGIONS_BASIS),
        R.REGION_NOT_REGENCY_CITY: ref("level regency/city (`PP.KK`)", f"{_REGIONS_BASIS}; Inpres 2/2021"),
        R.KECAMATAN_UNKNOWN: ref("a kecamatan code (`PP.KK.CC`)", _REGIONS_BASIS),
        R.KECAMATAN_NOT_IN_REGION: ref("the kecamatan's regency/city is `region_code`", _REGIONS_BASIS),
        R.AGE_BELOW_WORKING: ref(ages, ages_basis),
        R.AGE_ABOVE_LIMIT: ref(
            f"enrollment: {maximum}; JKP: under {limits.jkp_age_limit} at registration",
            "JKP: PP 37/2021 art. 4; enrollment: a deployment's policy (`Limits.maximum_age`)",
        ),
        R.CATEGORY_NOT_IN_SEGMENT: ref(
            "; ".join(f"{s.value}: {', '.join(sorted(c.value for c in cs))}" for s, cs in CATEGORIES.items()),
            "Perpres 109/2013 (segments); Inpres 2/2021 (vulnerable workers, non-ASN staff)",
        ),
        R.PROGRAM_NOT_OFFERED: ref(_program_rules(table), table.programs.regulation),
        R.PROGRAM_MANDATORY_MISSING: ref(_program_rules(table), table.programs.regulation),
        R.PROGRAM_DUPLICATE: ref("each program once", _CONTRACT_BASIS),
        R.JKP_PREREQUISITE_MISSING: ref(
            f"{prerequisites}; JP too for medium and large employers", "PP 37/2021 art. 4 (JKP)"
        ),
        R.EMPLOYER_MISSING: ref("PU and JAKON name the employer", f"{_PERPRES}; PP 44/2015"),
        R.WAGE_MISSING: ref("PU: monthly wage above Rp0", "PP 44/2015 art. 16 (contributions on the wage)"),
        R.INCOME_MISSING: ref("BPU: declared monthly income", "Permenaker 5/2021 (BPU contributions)"),
        R.INCOME_BELOW_MINIMUM: ref(
            f"BPU: at least Rp{int(bpu.minimum_declared_income):,}".replace(",", ".") + f" from {bpu.effective_from}",
            bpu.regulation,
        ),
        R.CONTRACT_VALUE_MISSING: ref("JAKON: contract value above Rp0", "PP 44/2015 as amended by PP 49/2020"),
        R.CONTRACT_MONTHS_MISSING: ref("PMI: placement contract months, 1 or more", "Permenaker 4/2023 art. 18"),
        R.FIELD_NOT_APPLICABLE: ref(
            "employer: not BPU; monthly_wage: PU only; declared_income: BPU only; contract_value: JAKON only; "
            "contract_months: JAKON and PMI only",
            _CONTRACT_BASIS,
        ),
        R.FUNDING_NOT_ALLOWED: ref(_funding(), "Inpres 2/2021; Permendagri 27/2021 and 84/2022 (APBD)"),
        R.COVERAGE_START_INVALID: ref(
            f"{_window(limits)}; a migration: {MIGRATION_EARLIEST} to today; rates in force on the date (from "
            f"{_earliest_rates(table)})",
            "a policy window for late batches (`Limits`); migrations: PP 44/2015, 45/2015 and 46/2015 in force "
            "from 2015-07-01; rates: services/registration/domain/rates.toml",
        ),
        R.EFFECTIVE_DATE_INVALID: ref(
            f"{_window(limits)} (terminations: {limits.termination_max_backdate_days} days before); "
            "not before the coverage start",
            "a policy window for late batches (`Limits`)",
        ),
        R.UPDATE_EMPTY: ref("at least one change", _CONTRACT_BASIS),
        R.PARTICIPANT_UNKNOWN: ref("a participation of the NIK in the segment", _CONTRACT_BASIS),
        R.PARTICIPANT_ALREADY_ACTIVE: ref("one active participation per NIK and segment", _CONTRACT_BASIS),
        R.PARTICIPANT_NOT_ACTIVE: ref("update and terminate need an active participation", _CONTRACT_BASIS),
        R.REQUEST_ID_CONFLICT: ref("a request_id names one request per partner", _CONTRACT_BASIS),
        R.PARTNER_UNKNOWN: ref("a registered, active partner", "docs/operations.md (partner registry)"),
        R.PARTNER_REGION_NOT_ALLOWED: ref("a region the partner covers", "Inpres 2/2021 (each region its own)"),
        R.PARTNER_SEGMENT_NOT_ALLOWED: ref("a segment the partner is registered for", "docs/operations.md"),
        R.PARTNER_FUNDING_NOT_ALLOWED: ref("a funding source the partner may use", "docs/operations.md"),
        R.PARTNER_MIGRATION_NOT_ALLOWED: ref(
            "`migrated_from` only from a partner with the `migration` right", "docs/operations.md (partner registry)"
        ),
        R.PARTNER_SOURCE_MISMATCH: ref(
            "`source` names the partner whose topic the request arrived on",
            "docs/security.md (one intake topic per partner, WRITE for that partner's principal only)",
        ),
        R.PARTNER_BUDGET_NOT_ALLOWED: ref(
            "allocations and verdicts only from a partner with the `budget` right over the budget's region",
            "Permendagri 27/2021 and 84/2022 (the region's finance office manages its APBD)",
        ),
        R.BUDGET_EXHAUSTED: ref(
            "APBD/APBDes-funded: the funder's contributions from the coverage start to 31 December, added to "
            "what is reserved, at most the allocation in force (exact Rupiah)",
            "Inpres 2/2021 (regions budget the contributions); Permendagri 27/2021, 84/2022 (APBD); the DPRD decision",
        ),
        R.BUDGET_WORKER_CAP_REACHED: ref(
            "at most the allocation's cap in workers, when its DPRD decision sets one",
            "the DPRD decision behind the allocation",
        ),
        R.ALLOCATION_YEAR_CLOSED: ref("the current fiscal year (WIB) or later", "UU 17/2003 art. 4 (fiscal year)"),
        R.HOLD_UNKNOWN: ref("a request held over the budget and still waiting", _CONTRACT_BASIS),
        R.HOLD_SELF_DECISION: ref(
            "the deciding partner is not the one that sent the held request (maker-checker)",
            "PP 12/2019 (regional financial management: separation of duties)",
        ),
        R.HOLD_REFUSED: ref("a second principal of the region refused the held request", _CONTRACT_BASIS),
        R.SCHEMA_INVALID: ref("the request schema", _CONTRACT_BASIS),
        R.SCHEMA_VERSION_UNSUPPORTED: ref("schemaversion 1", _CONTRACT_BASIS),
        R.EVENT_TYPE_UNKNOWN: ref("a request type of the contract", _CONTRACT_BASIS),
    }


def reason_codes_document() -> str:
    return markdown_table(rule_references())


if __name__ == "__main__":
    DOCS_PATH.write_text(reason_codes_document(), encoding="utf-8")
    print(f"wrote {DOCS_PATH}")  # noqa: T201 - a one-line confirmation for the developer who ran it
