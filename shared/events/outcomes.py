"""Outcomes: what registration decided about a request, and the participation it leaves (no NIK in clear)."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from shared.events.budget import BudgetCharge, BudgetKey
from shared.events.envelope import CloudEvent, Frozen
from shared.events.vocabulary import (
    AgeBand,
    Category,
    FundingSource,
    ParticipantStatus,
    Payer,
    Program,
    RegionCode,
    RequestAction,
    RequestId,
    Rupiah,
    Segment,
    Sex,
    TerminationReason,
)


class Contributions(Frozen):
    """Monthly contribution in Rupiah, split by program and by payer; both splits add up to `total`."""

    as_of: date
    by_program: dict[Program, Rupiah]
    by_payer: dict[Payer, Rupiah]
    total: Rupiah


class ContributionPeriod(Frozen):
    """Months of a past coverage in which the monthly contribution stayed the same (the rates, the JP wage
    ceiling and the terms in force on each month's first day, the coverage start for its first month)."""

    first_month: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2023-03"])
    last_month: str = Field(pattern=r"^\d{4}-\d{2}$", examples=["2024-02"])
    months: int = Field(ge=1)
    monthly: Contributions


class Contact(Frozen):
    """Present only when the worker consented to be contacted."""

    phone: str | None = None
    email: str | None = None
    language: Literal["id", "en"] = "id"


class Participant(Frozen):
    """A participation as reporting and notification need it: one NIK in one segment."""

    participant_id: str = Field(description="stable id: keyed hash of NIK and segment")
    nik_hash: str = Field(description="HMAC-SHA256 of the NIK; the join key across events")
    nik_masked: str = Field(examples=["3271**********01"])
    status: ParticipantStatus
    region_code: RegionCode = Field(description="regency/city responsible")
    province_code: RegionCode
    kecamatan_code: RegionCode | None = Field(default=None, description="domicile kecamatan, if known")
    segment: Segment
    category: Category
    programs: list[Program]
    funding_source: FundingSource
    contributions: Contributions
    sex: Sex
    age_band: AgeBand
    employer_registration_number: str | None = None
    coverage_start: date
    contact: Contact | None = None
    migrated_from: str | None = Field(
        default=None,
        description="the system an existing participation was moved from: reporting counts it as migrated, "
        "not as a new enrollment, and the worker gets no welcome message",
    )


class RejectionReason(Frozen):
    code: str = Field(description="stable reason code; see shared/reasons.py and docs")
    field: str | None = Field(default=None, description="the request field at fault, dotted")
    subject: str | None = Field(
        default=None,
        description="what exactly is wrong, language-neutral: a program code, the 1-based positions of NIK "
        "characters, a region code, a funding source; never the NIK itself",
    )
    limit: str | None = Field(
        default=None, description="the threshold, window or allowed values the request broke, language-neutral"
    )
    message_id: str = Field(description="Bahasa Indonesia")
    message_en: str


class OutcomeBase(Frozen):
    request_id: RequestId
    partner_id: str
    request_event_id: str = Field(description="id of the request event this answers")
    version: int = Field(ge=1, description="participant version after this change; orders a participant's events")
    warnings: list[RejectionReason] = Field(
        default_factory=list, description="what registration noticed but accepted, e.g. an old NIK region prefix"
    )
    budget: BudgetCharge | None = Field(
        default=None, description="what this decision reserved on (or released from) a public budget"
    )


class Registered(OutcomeBase):
    participant: Participant
    past_contributions: list[ContributionPeriod] = Field(
        default_factory=list,
        description="a migration only: the contribution of every month from the coverage start to the month "
        "before registration, in periods of equal amounts; their sum is `past_contributions_total`",
    )
    past_contributions_total: int = Field(default=0, ge=0, description="Rupiah over all past months")
    approved_by: str | None = Field(
        default=None, description="the partner that approved this enrollment after the budget held it"
    )


class Updated(OutcomeBase):
    participant: Participant
    previous: Participant = Field(description="the participation before the change, so aggregates can move it")


class Terminated(OutcomeBase):
    participant: Participant
    previous: Participant
    reason: TerminationReason


class Reactivated(OutcomeBase):
    participant: Participant
    previous: Participant


class Rejected(Frozen):
    request_id: str
    partner_id: str
    request_event_id: str
    action: RequestAction | None = None
    reasons: list[RejectionReason] = Field(min_length=1)
    region_code: RegionCode | None = None
    segment: Segment | None = None
    nik_masked: str | None = None
    nik_hash: str | None = None


class Held(Frozen):
    """An enrollment the budget cannot carry: not rejected, not applied, waiting for a second principal."""

    request_id: RequestId
    partner_id: str
    request_event_id: str
    action: RequestAction
    reasons: list[RejectionReason] = Field(min_length=1)
    region_code: RegionCode
    segment: Segment
    nik_masked: str
    nik_hash: str
    budget: BudgetKey
    required: Rupiah = Field(description="what the enrollment would reserve to the end of the fiscal year")
    available: int = Field(description="what the allocation had left (negative after a downward revision)")


class HoldResolution(StrEnum):
    APPROVED = "APPROVED"  # the request is decided again, with the budget re-checked
    REFUSED = "REFUSED"  # the request ends rejected with HOLD_REFUSED


class HoldDecided(Frozen):
    """A second principal's verdict, recorded; the held request's own outcome follows on its own."""

    request_id: RequestId = Field(description="the deciding partner's id for the decision")
    partner_id: str = Field(description="the deciding partner")
    request_event_id: str
    held_partner_id: str
    held_request_id: RequestId
    resolution: HoldResolution
    budget: BudgetKey
    note: str | None = None


class ParticipantRegistered(CloudEvent[Registered]):
    type: Literal["id.lindungi.participant.registered"] = "id.lindungi.participant.registered"


class ParticipantUpdated(CloudEvent[Updated]):
    type: Literal["id.lindungi.participant.updated"] = "id.lindungi.participant.updated"


class ParticipantTerminated(CloudEvent[Terminated]):
    type: Literal["id.lindungi.participant.terminated"] = "id.lindungi.participant.terminated"


class ParticipantReactivated(CloudEvent[Reactivated]):
    type: Literal["id.lindungi.participant.reactivated"] = "id.lindungi.participant.reactivated"


class RequestRejected(CloudEvent[Rejected]):
    type: Literal["id.lindungi.request.rejected"] = "id.lindungi.request.rejected"


class RequestHeld(CloudEvent[Held]):
    type: Literal["id.lindungi.request.held"] = "id.lindungi.request.held"


class HoldDecidedEvent(CloudEvent[HoldDecided]):
    type: Literal["id.lindungi.hold.decided"] = "id.lindungi.hold.decided"


Outcome = Annotated[
    ParticipantRegistered
    | ParticipantUpdated
    | ParticipantTerminated
    | ParticipantReactivated
    | RequestRejected
    | RequestHeld
    | HoldDecidedEvent,
    Field(discriminator="type"),
]
outcome_adapter: TypeAdapter[Outcome] = TypeAdapter(Outcome)
