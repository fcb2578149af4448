"""Lifecycle decisions: a partner's request, the partner's authority and the current participation in,
one decision out (an outcome event, the participation after it, a history entry).

Pure: no I/O. The application layer (`services.registration.service`) fetches the facts in bulk, calls
`decide` for each request in order, and hands the decisions to the store and the broker. What a decision
works on and produces (partner, participation, history entry, decision) is in `participation`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.registration.domain.age import age_band
from services.registration.domain.budget import changing, ending, starting
from services.registration.domain.changes import (
    apply_update,
    check_transition,
    validate_reactivation,
    validate_termination,
    validate_update,
)
from services.registration.domain.contributions import calculate, past_contributions
from services.registration.domain.participation import (
    SOURCE,
    Context,
    Decision,
    HistoryEntry,
    ParticipantRecord,
    Partner,
    PartnerRight,
    RequestEvent,
    nik_of,
    participant_id,
    partner_id_of,
    request_key,
)
from services.registration.domain.rules import assess_enrollment
from services.registration.domain.violations import Violation
from shared.events import (
    Contact,
    EnrollmentRequest,
    EnrollmentRequested,
    Participant,
    ParticipantReactivated,
    ParticipantRegistered,
    ParticipantStatus,
    ParticipantTerminated,
    ParticipantUpdated,
    Reactivated,
    ReactivationRequested,
    Registered,
    Rejected,
    RequestAction,
    RequestRejected,
    Terminated,
    TerminationRequested,
    Updated,
    UpdateRequested,
)
from shared.privacy import mask_nik, nik_hash, scrub
from shared.reasons import ReasonCode
from shared.regions import NATIONAL_CODE

if TYPE_CHECKING:
    from services.registration.domain.budget import Charge, Reservation
    from shared.events import CloudEvent


def _rejected(event: RequestEvent, ctx: Context, violations: list[Violation], region: str | None = None) -> Decision:
    partner = partner_id_of(event.source)
    nik = nik_of(event)
    hashed = nik_hash(nik, ctx.nik_secret)
    data = event.data
    region_code = region or (data.region_code if isinstance(data, EnrollmentRequest) else None)
    outcome = RequestRejected(
        source=SOURCE,
        subject=data.request_id,
        time=ctx.now,
        data=Rejected(
            request_id=data.request_id,
            partner_id=partner,
            request_event_id=event.id,
            action=data.action,
            reasons=[v.to_rejection() for v in violations],
            region_code=region_code if region_code in ctx.regions else None,
            segment=data.segment,
            nik_masked=mask_nik(nik),
            nik_hash=hashed,
        ),
    )
    return Decision(request_key(partner, data.request_id), outcome, hashed, partner)


def _authority(partner: Partner | None, region_code: str, request: RequestEvent, ctx: Context) -> list[Violation]:
    """What the partner may not submit. An unknown or inactive partner may submit nothing."""
    if partner is None or not partner.active:
        return [Violation(ReasonCode.PARTNER_UNKNOWN, "source", partner_id_of(request.source))]
    found: list[Violation] = []
    if region_code not in ctx.regions or not partner.covers(region_code, ctx.regions):
        found.append(Violation(ReasonCode.PARTNER_REGION_NOT_ALLOWED, "region_code", region_code))
    if request.data.segment not in partner.segments:
        found.append(Violation(ReasonCode.PARTNER_SEGMENT_NOT_ALLOWED, "segment", request.data.segment.value))
    basis = request.data
    if isinstance(basis, EnrollmentRequest) and basis.funding_source not in partner.funding_sources:
        found.append(Violation(ReasonCode.PARTNER_FUNDING_NOT_ALLOWED, "funding_source", basis.funding_source.value))
    if isinstance(basis, EnrollmentRequest) and basis.migrated_from and PartnerRight.MIGRATION not in partner.rights:
        found.append(Violation(ReasonCode.PARTNER_MIGRATION_NOT_ALLOWED, "migrated_from", partner.partner_id))
    return found


def _snapshot(basis: EnrollmentRequest, pid: str, hashed: str, status: ParticipantStatus, ctx: Context) -> Participant:
    on = max(ctx.today, basis.coverage_start)
    worker = basis.worker
    region = ctx.regions.get(basis.region_code)
    province = region.parent_code if region is not None and region.parent_code else basis.region_code[:2]
    contact = None
    if worker.contact_consent and (worker.phone or worker.email):
        contact = Contact(phone=worker.phone, email=worker.email)
    return Participant(
        participant_id=pid,
        nik_hash=hashed,
        nik_masked=mask_nik(worker.nik),
        status=status,
        region_code=basis.region_code,
        province_code=province if province != NATIONAL_CODE else basis.region_code[:2],
        kecamatan_code=worker.domicile_kecamatan,
        segment=basis.segment,
        category=basis.category,
        programs=sorted(set(basis.programs)),
        funding_source=basis.funding_source,
        contributions=calculate(basis, on),
        sex=worker.sex,
        age_band=age_band(worker.birth_date, ctx.today),
        employer_registration_number=basis.employer.registration_number if basis.employer else None,
        coverage_start=basis.coverage_start,
        contact=contact,
        migrated_from=scrub(basis.migrated_from) if basis.migrated_from else None,
    )


def _past(basis: EnrollmentRequest, ctx: Context) -> dict[str, Any]:
    """A migration's past months, priced with the rates of each month; an ordinary enrollment has none."""
    if basis.migrated_from is None:
        return {}
    periods = past_contributions(basis, basis.coverage_start, ctx.today)
    return {
        "past_contributions": periods,
        "past_contributions_total": sum(p.months * p.monthly.total for p in periods),
    }


def _masked_basis(basis: EnrollmentRequest) -> EnrollmentRequest:
    """The basis as stored: everything but the NIK, which is kept sealed elsewhere."""
    worker = basis.worker.model_copy(update={"nik": mask_nik(basis.worker.nik)})
    return basis.model_copy(update={"worker": worker})


def _with_nik(basis: EnrollmentRequest, nik: str) -> EnrollmentRequest:
    return basis.model_copy(update={"worker": basis.worker.model_copy(update={"nik": nik})})


def _history(decision_key: str, record: ParticipantRecord, event: RequestEvent, ctx: Context) -> HistoryEntry:
    return HistoryEntry(
        request_key=decision_key,
        participant_id=record.participant_id,
        version=record.version,
        action=event.data.action,
        status=record.status,
        partner_id=partner_id_of(event.source),
        request_id=event.data.request_id,
        request_event_id=event.id,
        requested_at=event.time,
        decided_at=ctx.now,
        snapshot=record.snapshot,
    )


def _accept(  # noqa: PLR0913, PLR0917 - a decision's parts
    event: RequestEvent,
    record: ParticipantRecord,
    outcome: CloudEvent[Any],
    ctx: Context,
    warnings: list[Violation],
    charge: Charge | None = None,
) -> Decision:
    partner = partner_id_of(event.source)
    key = request_key(partner, event.data.request_id)
    return Decision(
        key=key,
        outcome=outcome,
        outcome_key=record.nik_hash,
        partner_id=partner,
        participant=record,
        history=_history(key, record, event, ctx),
        warnings=tuple(w.code.value for w in warnings),
        charge=charge,
    )


def _reserving(record: ParticipantRecord, budget: tuple[Charge, Reservation] | None) -> ParticipantRecord:
    """The participation with what its budget now holds for it."""
    return record if budget is None else record.model_copy(update={"reserved": budget[1].recorded()})


def _charged(budget: tuple[Charge, Reservation] | None) -> dict[str, Any]:
    return {} if budget is None else {"budget": budget[0].event()}


def _base(event: RequestEvent, version: int) -> dict[str, Any]:
    return {
        "request_id": event.data.request_id,
        "partner_id": partner_id_of(event.source),
        "request_event_id": event.id,
        "version": version,
    }


def _enroll(
    event: EnrollmentRequested, partner: Partner | None, current: ParticipantRecord | None, ctx: Context
) -> Decision:
    basis = event.data
    assessment = assess_enrollment(basis, ctx.today, ctx.regions)
    errors = _authority(partner, basis.region_code, event, ctx) + list(assessment.violations)
    if not errors:
        transition = check_transition(RequestAction.ENROLL, current.status if current else None, event.data.segment)
        errors = [transition] if transition else []
    if errors:
        return _rejected(event, ctx, errors)
    pid = participant_id(basis.worker.nik, basis.segment, ctx.nik_secret)
    hashed = nik_hash(basis.worker.nik, ctx.nik_secret)
    # Enrolling a terminated participation again starts new terms on the same record.
    version = 1 if current is None else current.version + 1
    record = ParticipantRecord(
        participant_id=pid,
        nik_hash=hashed,
        version=version,
        status=ParticipantStatus.ACTIVE,
        snapshot=_snapshot(basis, pid, hashed, ParticipantStatus.ACTIVE, ctx),
        basis=_masked_basis(basis),
        full_name=basis.worker.full_name,
        nik=basis.worker.nik,
    )
    budget = starting(basis, basis.coverage_start, current, ctx)
    record = _reserving(record, budget)
    outcome = ParticipantRegistered(
        source=SOURCE,
        subject=pid,
        time=ctx.now,
        data=Registered(
            **_base(event, version),
            participant=record.snapshot,
            warnings=[w.to_rejection() for w in assessment.warnings],
            **_past(basis, ctx),
            **_charged(budget),
        ),
    )
    return _accept(event, record, outcome, ctx, list(assessment.warnings), budget[0] if budget else None)


def _existing(
    event: UpdateRequested | TerminationRequested | ReactivationRequested,
    partner: Partner | None,
    current: ParticipantRecord | None,
    ctx: Context,
) -> list[Violation]:
    """Authority over the participation as it stands, then whether the action fits its state."""
    if partner is None or not partner.active:
        return [Violation(ReasonCode.PARTNER_UNKNOWN, "source", partner_id_of(event.source))]
    if current is not None:
        errors = _authority(partner, current.snapshot.region_code, event, ctx)
        if errors:
            return errors
    transition = check_transition(event.data.action, current.status if current else None, event.data.segment)
    return [transition] if transition else []


def _update(
    event: UpdateRequested, partner: Partner | None, current: ParticipantRecord | None, ctx: Context
) -> Decision:
    region = current.snapshot.region_code if current else None
    errors = _existing(event, partner, current, ctx)
    if errors or current is None:
        return _rejected(event, ctx, errors, region)
    terms = _with_nik(current.basis, event.data.nik)
    errors = validate_update(event.data, ctx.today, ctx.regions, current=terms)
    if errors:
        return _rejected(event, ctx, errors, region)
    basis = apply_update(terms, event.data)
    version = current.version + 1
    snapshot = _snapshot(basis, current.participant_id, current.nik_hash, ParticipantStatus.ACTIVE, ctx)
    record = current.model_copy(update={"version": version, "snapshot": snapshot, "basis": _masked_basis(basis)})
    budget = changing(current, basis, event.data.effective_date, ctx)
    record = _reserving(record, budget)
    outcome = ParticipantUpdated(
        source=SOURCE,
        subject=current.participant_id,
        time=ctx.now,
        data=Updated(**_base(event, version), participant=snapshot, previous=current.snapshot, **_charged(budget)),
    )
    return _accept(event, record, outcome, ctx, [], budget[0] if budget else None)


def _terminate(
    event: TerminationRequested, partner: Partner | None, current: ParticipantRecord | None, ctx: Context
) -> Decision:
    region = current.snapshot.region_code if current else None
    errors = _existing(event, partner, current, ctx)
    if not errors and current is not None:
        errors = validate_termination(event.data, ctx.today, ctx.regions, current=current.basis)
    if errors or current is None:
        return _rejected(event, ctx, errors, region)
    version = current.version + 1
    snapshot = current.snapshot.model_copy(update={"status": ParticipantStatus.TERMINATED})
    record = current.model_copy(
        update={"version": version, "status": ParticipantStatus.TERMINATED, "snapshot": snapshot}
    )
    budget = ending(current, event.data.effective_date, ctx)
    record = _reserving(record, budget)
    outcome = ParticipantTerminated(
        source=SOURCE,
        subject=current.participant_id,
        time=ctx.now,
        data=Terminated(
            **_base(event, version),
            participant=snapshot,
            previous=current.snapshot,
            reason=event.data.reason,
            **_charged(budget),
        ),
    )
    return _accept(event, record, outcome, ctx, [], budget[0] if budget else None)


def _reactivate(
    event: ReactivationRequested, partner: Partner | None, current: ParticipantRecord | None, ctx: Context
) -> Decision:
    region = current.snapshot.region_code if current else None
    errors = _existing(event, partner, current, ctx)
    if not errors:
        errors = validate_reactivation(event.data, ctx.today, ctx.regions)
    if errors or current is None:
        return _rejected(event, ctx, errors, region)
    version = current.version + 1
    # The participation resumes on its previous terms, at today's rates.
    basis = _with_nik(current.basis, event.data.nik)
    snapshot = _snapshot(basis, current.participant_id, current.nik_hash, ParticipantStatus.ACTIVE, ctx)
    record = current.model_copy(update={"version": version, "status": ParticipantStatus.ACTIVE, "snapshot": snapshot})
    budget = starting(basis, event.data.effective_date, current, ctx)
    record = _reserving(record, budget)
    outcome = ParticipantReactivated(
        source=SOURCE,
        subject=current.participant_id,
        time=ctx.now,
        data=Reactivated(**_base(event, version), participant=snapshot, previous=current.snapshot, **_charged(budget)),
    )
    return _accept(event, record, outcome, ctx, [], budget[0] if budget else None)


def decide(event: RequestEvent, partner: Partner | None, current: ParticipantRecord | None, ctx: Context) -> Decision:
    """The one entry point: route by request kind."""
    match event:
        case EnrollmentRequested():
            return _enroll(event, partner, current, ctx)
        case UpdateRequested():
            return _update(event, partner, current, ctx)
        case TerminationRequested():
            return _terminate(event, partner, current, ctx)
        case ReactivationRequested():
            return _reactivate(event, partner, current, ctx)


def schema_rejection(  # noqa: PLR0913 - the facts salvaged from an unreadable request
    *,
    event_id: str,
    partner_id: str,
    request_id: str,
    code: ReasonCode,
    subject: str,
    ctx: Context,
    limit: str | None = None,
    action: RequestAction | None = None,
    field: str | None = None,
) -> Decision:
    """A request that is readable enough to answer (partner and request id known) but not valid."""
    outcome = RequestRejected(
        source=SOURCE,
        subject=request_id,
        time=ctx.now,
        data=Rejected(
            request_id=request_id,
            partner_id=partner_id,
            request_event_id=event_id,
            action=action,
            reasons=[Violation(code, field, subject, limit).to_rejection()],
        ),
    )
    return Decision(request_key(partner_id, request_id), outcome, partner_id, partner_id)


# Re-exported: callers that decide (the service, the benchmarks) take the values a decision works on from here.
__all__ = [
    "Context",
    "Decision",
    "HistoryEntry",
    "ParticipantRecord",
    "Partner",
    "RequestEvent",
    "decide",
    "nik_of",
    "participant_id",
    "partner_id_of",
    "request_key",
    "schema_rejection",
]
