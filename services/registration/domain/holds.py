"""Holds, verdicts and allocations: the decisions of the budget side, pure like `decisions`.

- `held`: an enrollment (or a reactivation, or an update that costs more) the budget cannot carry is neither
  rejected nor applied: it becomes a `RequestHeld` answer, and its charge opens a hold on the ledger.
- `decide_verdict`: a second principal of the region (a partner with the `budget` right over the budget's
  region, never the partner that sent the request) approves or refuses a held request. The verdict is recorded
  (`HoldDecidedEvent`) and the held request goes back to intake with it (`Forward`), so that it is decided
  again in order with the worker's other requests, on the partition of its NIK.
- `reconsider`: the held request decided again on its verdict. A refusal ends it rejected (`HOLD_REFUSED`);
  an approval decides it like a new request, with the budget checked again by the application layer.
- `decide_allocation`: a finance office's allocation, checked against its authority; the ledger numbers the
  versions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from services.registration.domain.budget import Charge, token
from services.registration.domain.participation import (
    SOURCE,
    Context,
    Decision,
    Forward,
    Partner,
    PartnerRight,
    Reconsidered,
    Verdict,
    partner_id_of,
    request_key,
)
from services.registration.domain.violations import Violation
from shared.events import (
    AllocationRecorded,
    AllocationRecordedEvent,
    AllocationRequested,
    BudgetKey,
    Held,
    HoldDecided,
    HoldDecidedEvent,
    HoldDecisionRequested,
    HoldResolution,
    HoldVerdict,
    Rejected,
    RequestHeld,
    RequestRejected,
)
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from services.registration.domain.ledger import Shortfall

HOLD_MARK = {HoldResolution.APPROVED: "APPROVED", HoldResolution.REFUSED: "REFUSED"}


def held(decision: Decision, shortfall: Shortfall, budget: BudgetKey, *, reopen: bool = True) -> Decision:
    """The decision an accepted request becomes when its budget cannot carry it: answered, not applied."""
    record, data = decision.participant, decision.outcome.data
    if record is None or decision.history is None:
        raise ValueError("only a decision that changes a participation can be held")
    reason = Violation(shortfall.code, "funding_source", budget.key, shortfall.limit).to_rejection()
    outcome = RequestHeld(
        source=SOURCE,
        subject=data.request_id,
        time=decision.outcome.time,
        data=Held(
            request_id=data.request_id,
            partner_id=data.partner_id,
            request_event_id=data.request_event_id,
            action=decision.history.action,
            reasons=[reason],
            region_code=record.snapshot.region_code,
            segment=record.snapshot.segment,
            nik_masked=record.snapshot.nik_masked,
            nik_hash=record.nik_hash,
            budget=budget,
            required=shortfall.required,
            available=shortfall.available,
        ),
    )
    # The hold is the held request's own: a request held again on an approval keeps the hold it has.
    held_key = decision.key.split("#", 1)[0]
    charge = Charge(budget).with_hold(held_key, shortfall.required, opens=True) if reopen else Charge(budget)
    return Decision(
        key=decision.key,
        outcome=outcome,
        outcome_key=record.nik_hash,
        partner_id=decision.partner_id,
        history=replace(decision.history, hold="HELD"),
        charge=charge,
        verdict=decision.verdict,
    )


def _rejected_verdict(event: HoldDecisionRequested, ctx: Context, violation: Violation) -> Decision:
    partner = partner_id_of(event.source)
    outcome = RequestRejected(
        source=SOURCE,
        subject=event.data.request_id,
        time=ctx.now,
        data=Rejected(
            request_id=event.data.request_id,
            partner_id=partner,
            request_event_id=event.id,
            reasons=[violation.to_rejection()],
        ),
    )
    return Decision(request_key(partner, event.data.request_id), outcome, partner, partner)


def budget_authority(partner: Partner | None, region_code: str, ctx: Context, claimed: str) -> Violation | None:
    """A budget principal: a known, active partner with the `budget` right over the budget's region."""
    if partner is None or not partner.active:
        return Violation(ReasonCode.PARTNER_UNKNOWN, "source", claimed)
    if PartnerRight.BUDGET not in partner.rights or not partner.covers(region_code, ctx.regions):
        return Violation(ReasonCode.PARTNER_BUDGET_NOT_ALLOWED, "region_code", region_code)
    return None


def decide_verdict(event: HoldDecisionRequested, partner: Partner | None, hold: Held | None, ctx: Context) -> Decision:
    """A verdict on a held request (`hold`: the held answer, if the request is held and waiting)."""
    data, decider = event.data, partner_id_of(event.source)
    held_key = request_key(data.held_partner_id, data.held_request_id)
    if hold is None:
        return _rejected_verdict(event, ctx, Violation(ReasonCode.HOLD_UNKNOWN, None, held_key[:200]))
    wrong = budget_authority(partner, hold.budget.region_code, ctx, decider)
    if wrong is not None:
        return _rejected_verdict(event, ctx, wrong)
    if decider == hold.partner_id:
        return _rejected_verdict(event, ctx, Violation(ReasonCode.HOLD_SELF_DECISION, None, decider))
    resolution = HoldResolution.APPROVED if data.verdict is HoldVerdict.APPROVE else HoldResolution.REFUSED
    key = request_key(decider, data.request_id)
    outcome = HoldDecidedEvent(
        source=SOURCE,
        subject=data.request_id,
        time=ctx.now,
        data=HoldDecided(
            request_id=data.request_id,
            partner_id=decider,
            request_event_id=event.id,
            held_partner_id=hold.partner_id,
            held_request_id=hold.request_id,
            resolution=resolution,
            budget=hold.budget,
            note=data.note,
        ),
    )
    verdict = Verdict(resolution, decider, key, hold.budget, hold.required)
    return Decision(key, outcome, hold.nik_hash, decider, forward=Forward(held_key, verdict))


def refused(request: Reconsidered, ctx: Context) -> Decision:
    """A held request refused by the second principal: rejected, and its hold closed."""
    event, verdict = request.event, request.verdict
    partner = partner_id_of(event.source)
    outcome = RequestRejected(
        source=SOURCE,
        subject=event.data.request_id,
        time=ctx.now,
        data=Rejected(
            request_id=event.data.request_id,
            partner_id=partner,
            request_event_id=event.id,
            action=event.data.action,
            reasons=[Violation(ReasonCode.HOLD_REFUSED, None, verdict.decided_by).to_rejection()],
            segment=event.data.segment,
        ),
    )
    charge = Charge(verdict.budget).with_hold(request.held_key, verdict.required, opens=False)
    return Decision(request.key, outcome, partner, partner, charge=charge, verdict=verdict)


def approved(decision: Decision, request: Reconsidered) -> Decision:
    """A held request decided again on an approval: under the reconsidered key, naming who approved it. Its
    hold is closed whatever the decision (a rejection now ends the request too); the application layer holds
    it again, instead, when the budget still cannot carry it."""
    verdict = request.verdict
    outcome: Any = decision.outcome
    if hasattr(outcome.data, "approved_by"):
        outcome = outcome.model_copy(
            update={"data": outcome.data.model_copy(update={"approved_by": verdict.decided_by})}
        )
    history = decision.history
    if history is not None:
        history = replace(history, request_key=request.key, decided_by=verdict.decided_by, hold="APPROVED")
    base = decision.charge or Charge(verdict.budget)
    charge = (
        replace(base, holds={token(request.held_key): -verdict.required}) if base.budget == verdict.budget else base
    )
    return replace(decision, key=request.key, outcome=outcome, history=history, charge=charge, verdict=verdict)


def approved_stale(decision: Decision, ctx: Context) -> Decision:
    """A verdict that arrives after the hold was closed (two principals approved at once): the later one is
    answered to its principal, and the held request keeps the answer it has."""
    verdict = decision.verdict
    if verdict is None:
        raise ValueError("only a request decided on a verdict can be stale")
    outcome = RequestRejected(
        source=SOURCE,
        subject=verdict.decision_key,
        time=ctx.now,
        data=Rejected(
            request_id=verdict.decision_key.split(":", 1)[1],
            partner_id=verdict.decided_by,
            request_event_id=decision.outcome.id,
            reasons=[Violation(ReasonCode.HOLD_UNKNOWN, None, decision.key.split("#", 1)[0][:200]).to_rejection()],
        ),
    )
    return Decision(decision.key, outcome, verdict.decided_by, verdict.decided_by, verdict=verdict)


def decide_allocation(event: AllocationRequested, partner: Partner | None, ctx: Context) -> Decision:
    """A finance office's allocation, provisionally version 1: the ledger numbers it (`Ledger.declare`)."""
    data, declarer = event.data, partner_id_of(event.source)
    key = request_key(declarer, data.request_id)
    budget = BudgetKey(region_code=data.region_code, fiscal_year=data.fiscal_year, funding_source=data.funding_source)
    problems: list[Violation] = []
    if data.region_code not in ctx.regions:
        problems.append(Violation(ReasonCode.REGION_UNKNOWN, "region_code", data.region_code))
    else:
        wrong = budget_authority(partner, data.region_code, ctx, declarer)
        if wrong is not None:
            problems.append(wrong)
    if data.fiscal_year < ctx.today.year:
        problems.append(
            Violation(ReasonCode.ALLOCATION_YEAR_CLOSED, "fiscal_year", str(data.fiscal_year), str(ctx.today.year))
        )
    if data.effective_date.year != data.fiscal_year:
        problems.append(
            Violation(
                ReasonCode.EFFECTIVE_DATE_INVALID,
                "effective_date",
                None,
                f"{data.fiscal_year}-01-01..{data.fiscal_year}-12-31",
            )
        )
    if problems:
        outcome = RequestRejected(
            source=SOURCE,
            subject=data.request_id,
            time=ctx.now,
            data=Rejected(
                request_id=data.request_id,
                partner_id=declarer,
                request_event_id=event.id,
                reasons=[p.to_rejection() for p in problems],
                region_code=data.region_code if data.region_code in ctx.regions else None,
            ),
        )
        return Decision(key, outcome, budget.key, declarer)
    outcome_ = AllocationRecordedEvent(
        source=SOURCE,
        subject=budget.key,
        time=ctx.now,
        data=AllocationRecorded(
            **budget.model_dump(),
            version=1,
            amount=data.amount,
            worker_cap=data.worker_cap,
            effective_date=data.effective_date,
            dprd_decision=data.dprd_decision,
            declared_by=declarer,
            request_id=data.request_id,
        ),
    )
    return Decision(key, outcome_, budget.key, declarer)
