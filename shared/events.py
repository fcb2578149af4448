"""Integration events: the contract between partners and Lindungi's services, version 1.

Every record on a Lindungi topic is a CloudEvents 1.0 event in structured mode (the whole envelope is the
JSON body) with the same attributes copied to `ce_*` Kafka headers (binary-mode routing: a consumer can route
or filter without parsing the body). `schemaversion` is a CloudEvents extension attribute: a consumer accepts
the versions it knows and dead-letters the rest.

Naming: partners' requests are `...Requested` (intake), the services' facts are past tense. The JSON Schema
of each event is exported to `shared/schemas/` (`python -m shared.schemas`) and partners code against those
files; a test fails when a model changes and the files were not regenerated.

A NIK in clear appears only in the request events of the intake topic. Every other event carries the masked
NIK (for people) and the keyed hash (for machines).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SPEC_VERSION: Literal["1.0"] = "1.0"
SCHEMA_VERSION: Literal[1] = 1
TYPE_PREFIX = "id.lindungi."


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_event_id() -> str:
    return str(uuid.uuid4())


class Frozen(BaseModel):
    """Base of every contract model: immutable, strict about unknown fields so a typo is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --- The vocabulary ----------------------------------------------------------------------------------------


class Segment(StrEnum):
    """Participant segment (kepesertaan)."""

    PU = "PU"  # Penerima Upah: wage earners, incl. non-ASN government staff
    BPU = "BPU"  # Bukan Penerima Upah: informal and self-employed; pekerja rentan are enrolled here
    JAKON = "JAKON"  # Jasa Konstruksi: construction project workers
    PMI = "PMI"  # Pekerja Migran Indonesia: migrant workers


class Category(StrEnum):
    """Who the worker is within a segment; drives funding rules and reporting."""

    FORMAL_EMPLOYEE = "FORMAL_EMPLOYEE"
    NON_ASN_STAFF = "NON_ASN_STAFF"  # pegawai pemerintah non-ASN
    INFORMAL = "INFORMAL"
    VULNERABLE = "VULNERABLE"  # pekerja rentan
    CONSTRUCTION = "CONSTRUCTION"
    MIGRANT = "MIGRANT"


class Program(StrEnum):
    JKK = "JKK"  # Jaminan Kecelakaan Kerja: work accident
    JKM = "JKM"  # Jaminan Kematian: death
    JHT = "JHT"  # Jaminan Hari Tua: old-age savings
    JP = "JP"  # Jaminan Pensiun: pension
    JKP = "JKP"  # Jaminan Kehilangan Pekerjaan: job-loss benefit


class FundingSource(StrEnum):
    """Who pays the worker's share (or the whole contribution for BPU)."""

    SELF = "SELF"
    EMPLOYER = "EMPLOYER"
    APBD = "APBD"  # regional government budget
    APBN = "APBN"  # national budget
    APBDES = "APBDES"  # village budget
    CSR = "CSR"
    ZAKAT = "ZAKAT"  # BAZNAS and other zakat bodies


class Payer(StrEnum):
    """Who actually transfers a contribution each month."""

    EMPLOYER = "EMPLOYER"
    WORKER = "WORKER"
    FUNDER = "FUNDER"  # the funding source named on the participant (APBD, CSR, ...)
    CENTRAL_GOVERNMENT = "CENTRAL_GOVERNMENT"  # the JKP share paid by the state


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"


class EmployerSize(StrEnum):
    MICRO = "MICRO"
    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"


class RiskLevel(StrEnum):
    """JKK risk class of the workplace (PP 44/2015 art. 16)."""

    VERY_LOW = "VERY_LOW"
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    VERY_HIGH = "VERY_HIGH"


class TerminationReason(StrEnum):
    RESIGNED = "RESIGNED"
    DISMISSED = "DISMISSED"
    CONTRACT_ENDED = "CONTRACT_ENDED"
    RETIRED = "RETIRED"
    DECEASED = "DECEASED"
    MOVED = "MOVED"
    STOPPED_PAYING = "STOPPED_PAYING"
    OTHER = "OTHER"


class AgeBand(StrEnum):
    UNDER_20 = "15-19"
    FROM_20 = "20-29"
    FROM_30 = "30-39"
    FROM_40 = "40-49"
    FROM_50 = "50-59"
    FROM_60 = "60+"


class RequestAction(StrEnum):
    ENROLL = "ENROLL"
    UPDATE = "UPDATE"
    TERMINATE = "TERMINATE"
    REACTIVATE = "REACTIVATE"


class ParticipantStatus(StrEnum):
    ACTIVE = "ACTIVE"
    TERMINATED = "TERMINATED"


Rupiah = Annotated[int, Field(ge=0, description="Indonesian Rupiah, whole units")]
RegionCode = Annotated[str, Field(pattern=r"^\d{2}(\.\d{2}(\.\d{2})?)?$", examples=["32.71"])]
RequestId = Annotated[str, Field(min_length=1, max_length=128, description="The partner's own id, unique per partner")]


# --- The envelope ------------------------------------------------------------------------------------------

DataT = TypeVar("DataT", bound=BaseModel)


class CloudEvent(Frozen, Generic[DataT]):
    """CloudEvents 1.0 envelope (structured mode). Subclasses fix `type` and `data`."""

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(default_factory=new_event_id, min_length=1, max_length=128)
    type: str
    source: str = Field(min_length=1, max_length=256, description="partner id (`partner/<id>`) or service")
    subject: str | None = Field(default=None, max_length=256, description="never a NIK")
    time: datetime = Field(default_factory=utc_now)
    datacontenttype: Literal["application/json"] = "application/json"
    schemaversion: Literal[1] = SCHEMA_VERSION
    data: DataT


# --- Intake: partners' requests (the only events that carry a NIK in clear) ---------------------------------


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


# --- Outcomes: what registration decided (no NIK in clear) --------------------------------------------------


class Contributions(Frozen):
    """Monthly contribution in Rupiah, split by program and by payer; both splits add up to `total`."""

    as_of: date
    by_program: dict[Program, Rupiah]
    by_payer: dict[Payer, Rupiah]
    total: Rupiah


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


class RejectionReason(Frozen):
    code: str = Field(description="stable reason code; see shared/reasons.py and docs")
    field: str | None = Field(default=None, description="the request field at fault, dotted")
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


class Registered(OutcomeBase):
    participant: Participant


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


Outcome = Annotated[
    ParticipantRegistered | ParticipantUpdated | ParticipantTerminated | ParticipantReactivated | RequestRejected,
    Field(discriminator="type"),
]
outcome_adapter: TypeAdapter[Outcome] = TypeAdapter(Outcome)


# --- Reporting: per-region aggregates (compacted topic, one record per region) -------------------------------


class Coverage(Frozen):
    denominator: int = Field(ge=0, description="workforce estimate or the official figure loaded by an operator")
    denominator_source: Literal["estimate", "official"]
    ratio: float = Field(ge=0, description="active participants / denominator, rounded to 6 decimals")
    target_ratio: float | None = None
    distance_to_target: int | None = Field(default=None, description="participants still needed to reach the target")


Figure = int | str  # a count, or `<k` when small-cell suppression hides a count below k


class RegionAggregate(Frozen):
    """Aggregates only: counts may be suppressed to strings like `<5` when small-cell suppression is on.

    A region's figures are the sum of its children's plus what is counted at its own level only (participants
    without a known kecamatan, rejections without a region): see docs/reporting.md.
    """

    region_code: str = Field(description="`ID` for the nation, else a Kemendagri code")
    region_name: str
    level: Literal["national", "province", "regency/city", "kecamatan"]
    parent_code: str | None = Field(default=None, description="`ID` for a province, none for the nation")
    as_of: datetime = Field(description="when the figures were computed")
    business_date: date | None = Field(
        default=None, description="the WIB (Asia/Jakarta) date that `today` and `this_month` refer to"
    )
    source_offsets: dict[str, int] = Field(description="`topic:partition` -> next offset reflected")
    suppressed_below: int | None = Field(default=None, description="k when counts 1..k-1 are shown as `<k`")
    active: Figure
    enrollments: dict[str, Figure] = Field(description="today, this_month, total")
    terminations: dict[str, Figure]
    reactivations: dict[str, Figure]
    by_segment: dict[str, Figure] = Field(description="active participants")
    by_category: dict[str, Figure]
    by_program: dict[str, Figure] = Field(description="active participants enrolled in each program")
    by_funding_source: dict[str, Figure]
    by_sex: dict[str, Figure]
    by_age_band: dict[str, Figure]
    monthly_contributions_by_payer: dict[str, Figure] = Field(description="Rupiah per month, active participants")
    monthly_contributions_by_funding_source: dict[str, Figure]
    monthly_contributions_by_funding_source_and_payer: dict[str, dict[str, Figure]] = Field(
        default_factory=dict,
        description="funding source -> payer -> Rupiah per month (what an APBD itself pays)",
    )
    annual_contributions_by_funding_source: dict[str, Figure] = Field(
        default_factory=dict, description="12 x the monthly figure: the yearly budget at today's enrollment"
    )
    rejections: Figure = 0
    rejections_by_reason: dict[str, Figure] = Field(description="a rejection counts once under each of its codes")
    rejections_by_partner: dict[str, Figure]
    coverage: Coverage | None = None
    rank_in_province: int | None = Field(default=None, description="regencies/cities only: 1 = highest coverage")
    rank_national: int | None = None


class RegionAggregateUpdated(CloudEvent[RegionAggregate]):
    type: Literal["id.lindungi.region.aggregate.updated"] = "id.lindungi.region.aggregate.updated"


# --- Notification deliveries ------------------------------------------------------------------------------


class DeliveryChannel(StrEnum):
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"
    SMS = "SMS"


class Delivery(Frozen):
    """One notification to one recipient through one channel, once it was sent or finally failed."""

    delivery_id: str = Field(description="the ledger key; also the `Idempotency-Key` receivers saw")
    source_event_id: str = Field(
        description="the outcome event id, or `milestone:...`, `stagnant:...`, `digest:...` for notices"
    )
    kind: str = Field(description="what the notification is about, e.g. `participant.registered`")
    recipient_kind: Literal["worker", "partner", "subscriber"]
    recipient_id: str | None = Field(default=None, description="partner id or subscription id; none for workers")
    recipient: str = Field(
        description="the address, masked: `s***@example.org`, `+62********890`, a URL without its query"
    )
    channel: DeliveryChannel
    attempts: int = Field(ge=0, description="0 when it could not be attempted at all (e.g. no webhook configured)")
    error: str | None = Field(default=None, description="the last error, personal data masked")


class NotificationDelivered(CloudEvent[Delivery]):
    type: Literal["id.lindungi.notification.delivered"] = "id.lindungi.notification.delivered"


class NotificationFailed(CloudEvent[Delivery]):
    type: Literal["id.lindungi.notification.failed"] = "id.lindungi.notification.failed"


DeliveryEvent = Annotated[NotificationDelivered | NotificationFailed, Field(discriminator="type")]
delivery_adapter: TypeAdapter[DeliveryEvent] = TypeAdapter(DeliveryEvent)


# --- Dead letters -----------------------------------------------------------------------------------------


class DeadLetter(Frozen):
    """A record no handler could turn into an event, kept so an operator can inspect and replay it.

    The original key and value are sealed (AES-GCM, `shared.crypto`) because a dead letter from the intake
    topic may hold a NIK, and no topic but intake may carry one in clear. The error text is NIK-masked.
    """

    service: str
    source_topic: str
    partition: int
    offset: int
    key_sealed: str | None = Field(description="sealed original key, base64")
    value_sealed: str = Field(description="sealed original value, base64")
    value_size: int = Field(ge=0, description="size of the original value in bytes")
    headers: dict[str, str] = Field(default_factory=dict)
    error_type: str
    error: str = Field(max_length=2000)


class DeadLetterRecorded(CloudEvent[DeadLetter]):
    type: Literal["id.lindungi.deadletter.recorded"] = "id.lindungi.deadletter.recorded"


#: Every event model of this schema version, for schema export and documentation.
ALL_EVENTS: tuple[type[CloudEvent[Any]], ...] = (
    EnrollmentRequested,
    UpdateRequested,
    TerminationRequested,
    ReactivationRequested,
    ParticipantRegistered,
    ParticipantUpdated,
    ParticipantTerminated,
    ParticipantReactivated,
    RequestRejected,
    RegionAggregateUpdated,
    NotificationDelivered,
    NotificationFailed,
    DeadLetterRecorded,
)


def event_type(model: type[CloudEvent[Any]]) -> str:
    default = model.model_fields["type"].default
    if not isinstance(default, str):
        raise TypeError(f"{model.__name__} has no fixed type")
    return default
