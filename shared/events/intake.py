"""Intake: partners' requests, the only events that carry a NIK in clear."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from shared.events.envelope import CloudEvent, Frozen
from shared.events.vocabulary import (
    Category,
    EmployerSize,
    FundingSource,
    Program,
    RegionCode,
    RequestAction,
    RequestId,
    RiskLevel,
    Rupiah,
    Segment,
    Sex,
    TerminationReason,
)


class Employer(Frozen):
    registration_number: str = Field(min_length=1, max_length=64, description="NPP at BPJS or the NIB")
    size: EmployerSize
    jkk_risk: RiskLevel = RiskLevel.VERY_LOW


class Worker(Frozen):
    nik: str = Field(description="16-digit NIK; validated by the registration rules, not by the schema")
    full_name: str = Field(min_length=1, max_length=200)
    birth_date: date
    sex: Sex
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    contact_consent: bool = False
    domicile_kecamatan: RegionCode | None = None


class EnrollmentRequest(Frozen):
    action: Literal[RequestAction.ENROLL] = RequestAction.ENROLL
    request_id: RequestId
    worker: Worker
    region_code: RegionCode = Field(description="the regency/city responsible for the worker")
    segment: Segment
    category: Category
    employer: Employer | None = None
    programs: list[Program] = Field(min_length=1)
    monthly_wage: Rupiah | None = Field(default=None, description="PU: wage the contribution is based on")
    declared_income: Rupiah | None = Field(default=None, description="BPU: declared monthly income")
    contract_value: Rupiah | None = Field(default=None, description="JAKON: project contract value")
    contract_months: int | None = Field(default=None, ge=1, le=60, description="PMI: placement contract length")
    funding_source: FundingSource
    coverage_start: date
    migrated_from: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="set when a region moves an existing participation from another system (its name, e.g. "
        "`SIPP 2019`): the coverage start may then lie years back, the past months' contributions are computed "
        "with the rates of each month, and the partner needs the `migration` right",
    )


class UpdateRequest(Frozen):
    """Changes to an active participation; fields left out stay as they are."""

    action: Literal[RequestAction.UPDATE] = RequestAction.UPDATE
    request_id: RequestId
    nik: str
    segment: Segment
    monthly_wage: Rupiah | None = None
    declared_income: Rupiah | None = None
    programs: list[Program] | None = None
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    contact_consent: bool | None = None
    effective_date: date


class TerminationRequest(Frozen):
    action: Literal[RequestAction.TERMINATE] = RequestAction.TERMINATE
    request_id: RequestId
    nik: str
    segment: Segment
    reason: TerminationReason
    effective_date: date


class ReactivationRequest(Frozen):
    action: Literal[RequestAction.REACTIVATE] = RequestAction.REACTIVATE
    request_id: RequestId
    nik: str
    segment: Segment
    effective_date: date


class EnrollmentRequested(CloudEvent[EnrollmentRequest]):
    type: Literal["id.lindungi.enrollment.requested"] = "id.lindungi.enrollment.requested"


class UpdateRequested(CloudEvent[UpdateRequest]):
    type: Literal["id.lindungi.update.requested"] = "id.lindungi.update.requested"


class TerminationRequested(CloudEvent[TerminationRequest]):
    type: Literal["id.lindungi.termination.requested"] = "id.lindungi.termination.requested"


class ReactivationRequested(CloudEvent[ReactivationRequest]):
    type: Literal["id.lindungi.reactivation.requested"] = "id.lindungi.reactivation.requested"


PartnerRequest = Annotated[
    EnrollmentRequested | UpdateRequested | TerminationRequested | ReactivationRequested,
    Field(discriminator="type"),
]
partner_request_adapter: TypeAdapter[PartnerRequest] = TypeAdapter(PartnerRequest)
