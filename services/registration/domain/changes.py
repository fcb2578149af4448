"""Rules for changes to a participation: updates, terminations, reactivations, and which action fits which
state of a participation.

Like the enrollment rules (`rules`), every validator returns all violations at once, and takes `today` and the
region reference as parameters. A change request names the participation by NIK and segment; its NIK only
needs to be well formed (the region warning was recorded at enrollment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.registration.domain.age import age_on
from services.registration.domain.nik import ParsedNik, parse_nik
from services.registration.domain.rates import load_rate_table
from services.registration.domain.rules import (
    DEFAULT_LIMITS,
    Limits,
    check_declared_income,
    check_programs,
    not_applicable,
    outside_window,
)
from services.registration.domain.violations import Violation
from shared.events import ParticipantStatus, RequestAction, Segment
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from datetime import date

    from services.registration.domain.rates import RateTable
    from shared.events import (
        EnrollmentRequest,
        ReactivationRequest,
        TerminationRequest,
        UpdateRequest,
    )
    from shared.regions import Regions

R = ReasonCode


def _nik_violations(nik: str, today: date, regions: Regions) -> list[Violation]:
    # The region warning was recorded at enrollment; a change request only needs a well-formed NIK to find
    # the participant by.
    parsed = parse_nik(nik, today, regions, field="nik")
    return [] if isinstance(parsed, ParsedNik) else parsed


def _effective_date(
    effective: date, today: date, back_days: int, limits: Limits, current: EnrollmentRequest | None
) -> list[Violation]:
    outside = outside_window(effective, today, back_days, limits.max_future_days)
    if outside is not None:
        return [Violation(R.EFFECTIVE_DATE_INVALID, "effective_date", limit=outside)]
    if current is not None and effective < current.coverage_start:
        return [Violation(R.EFFECTIVE_DATE_INVALID, "effective_date", current.coverage_start.isoformat())]
    return []


def validate_update(  # noqa: PLR0913 - the options are keyword-only with defaults; an options object would hide them
    request: UpdateRequest,
    today: date,
    regions: Regions,
    *,
    current: EnrollmentRequest | None = None,
    limits: Limits = DEFAULT_LIMITS,
    rates: RateTable | None = None,
) -> list[Violation]:
    """Every violation of an update request.

    Without `current` (the participation's terms as they stand) only the request's own content is checked;
    with it, the program table uses the employer's size, JKP the worker's age, and the effective date must
    not precede the coverage start.
    """
    table = rates if rates is not None else load_rate_table()
    segment = request.segment
    found = _nik_violations(request.nik, today, regions)
    changes = (
        request.monthly_wage,
        request.declared_income,
        request.programs,
        request.phone,
        request.email,
        request.contact_consent,
    )
    if all(change is None for change in changes):
        found.append(Violation(R.UPDATE_EMPTY))

    if request.monthly_wage is not None:
        if segment != Segment.PU:
            found.append(not_applicable("monthly_wage", segment))
        elif request.monthly_wage == 0:
            found.append(Violation(R.WAGE_MISSING, "monthly_wage"))
    if request.declared_income is not None:
        if segment != Segment.BPU:
            found.append(not_applicable("declared_income", segment))
        else:
            found.extend(check_declared_income(request.declared_income, request.effective_date, table, required=False))
    if request.programs is not None:
        employer = current.employer if current is not None else None
        size = employer.size if employer is not None else None
        age = age_on(current.worker.birth_date, request.effective_date) if current is not None else None
        rule = table.programs.rule(segment, size)
        found.extend(check_programs(rule, size, request.programs, age, limits))
    found.extend(_effective_date(request.effective_date, today, limits.max_backdate_days, limits, current))
    return found


def validate_termination(
    request: TerminationRequest,
    today: date,
    regions: Regions,
    *,
    current: EnrollmentRequest | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Violation]:
    """Every violation of a termination request; terminations may be backdated further than enrollments."""
    found = _nik_violations(request.nik, today, regions)
    found.extend(_effective_date(request.effective_date, today, limits.termination_max_backdate_days, limits, current))
    return found


def validate_reactivation(
    request: ReactivationRequest,
    today: date,
    regions: Regions,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> list[Violation]:
    """Every violation of a reactivation request (the participation resumes on its previous terms)."""
    found = _nik_violations(request.nik, today, regions)
    found.extend(_effective_date(request.effective_date, today, limits.max_backdate_days, limits, None))
    return found


def apply_update(current: EnrollmentRequest, update: UpdateRequest) -> EnrollmentRequest:
    """The participation's terms after an update: fields the update leaves out stay as they are.

    Contributions after the change are `calculate(apply_update(current, update), update.effective_date)`.
    """
    worker_changes = {
        name: value
        for name, value in (
            ("phone", update.phone),
            ("email", update.email),
            ("contact_consent", update.contact_consent),
        )
        if value is not None
    }
    changes: dict[str, object] = {
        name: value
        for name, value in (
            ("monthly_wage", update.monthly_wage),
            ("declared_income", update.declared_income),
            ("programs", list(update.programs) if update.programs is not None else None),
        )
        if value is not None
    }
    if worker_changes:
        changes["worker"] = current.worker.model_copy(update=worker_changes)
    return current.model_copy(update=changes)


def check_transition(action: RequestAction, status: ParticipantStatus | None, segment: Segment) -> Violation | None:
    """Whether an action fits the participation's state (None: no participation in this segment yet).

    | action     | none    | ACTIVE         | TERMINATED     |
    |------------|---------|----------------|----------------|
    | ENROLL     | ok      | ALREADY_ACTIVE | ok (new terms) |
    | UPDATE     | UNKNOWN | ok             | NOT_ACTIVE     |
    | TERMINATE  | UNKNOWN | ok             | NOT_ACTIVE     |
    | REACTIVATE | UNKNOWN | ALREADY_ACTIVE | ok             |

    Enrolling a terminated participant again is allowed because a new job comes with new terms, which a
    reactivation (previous terms) cannot carry.
    """
    field, subject = ("worker.nik" if action is RequestAction.ENROLL else "nik"), segment.value
    if status is None:
        return None if action is RequestAction.ENROLL else Violation(R.PARTICIPANT_UNKNOWN, field, subject)
    if status is ParticipantStatus.ACTIVE:
        if action in {RequestAction.ENROLL, RequestAction.REACTIVATE}:
            return Violation(R.PARTICIPANT_ALREADY_ACTIVE, field, subject)
        return None
    if action in {RequestAction.UPDATE, RequestAction.TERMINATE}:
        return Violation(R.PARTICIPANT_NOT_ACTIVE, field, subject)
    return None
