"""Integration events: the contract between partners and Lindungi's services, version 1.

Every record on a Lindungi topic is a CloudEvents 1.0 event in structured mode (the whole envelope is the
JSON body) with the same attributes copied to `ce_*` Kafka headers (binary-mode routing: a consumer can route
or filter without parsing the body). `schemaversion` is a CloudEvents extension attribute: a consumer accepts
the versions it knows and dead-letters the rest.

Naming: partners' requests are `...Requested` (intake), the services' facts are past tense. The JSON Schema
of each event is exported to `docs/schemas/` (`python -m shared.schema_export`) and partners code against those
files; a test fails when a model changes and the files were not regenerated.

A NIK in clear appears only in the request events of the intake topic. Every other event carries the masked
NIK (for people) and the keyed hash (for machines).

One module per part of the contract: `envelope` (the CloudEvents envelope and the base model), `vocabulary`
(the domain's closed sets), `intake` (partners' requests), `outcomes` (registration's decisions),
`aggregates` (reporting's per-region figures), `deliveries` (notification) and `dead_letters`. Import the names
from `shared.events`: the modules are how the contract is kept readable, not part of it.
"""

from __future__ import annotations

from typing import Any

from shared.events.aggregates import Coverage, Figure, RegionAggregate, RegionAggregateUpdated
from shared.events.dead_letters import DeadLetter, DeadLetterRecorded
from shared.events.deliveries import (
    Delivery,
    DeliveryChannel,
    DeliveryEvent,
    NotificationDelivered,
    NotificationFailed,
    delivery_adapter,
)
from shared.events.envelope import (
    SCHEMA_VERSION,
    SPEC_VERSION,
    TYPE_PREFIX,
    CloudEvent,
    DataT,
    Frozen,
    event_type,
    new_event_id,
    utc_now,
)
from shared.events.intake import (
    Employer,
    EnrollmentRequest,
    EnrollmentRequested,
    PartnerRequest,
    ReactivationRequest,
    ReactivationRequested,
    TerminationRequest,
    TerminationRequested,
    UpdateRequest,
    UpdateRequested,
    Worker,
    partner_request_adapter,
)
from shared.events.outcomes import (
    Contact,
    ContributionPeriod,
    Contributions,
    Outcome,
    OutcomeBase,
    Participant,
    ParticipantReactivated,
    ParticipantRegistered,
    ParticipantTerminated,
    ParticipantUpdated,
    Reactivated,
    Registered,
    Rejected,
    RejectionReason,
    RequestRejected,
    Terminated,
    Updated,
    outcome_adapter,
)
from shared.events.vocabulary import (
    AgeBand,
    Category,
    EmployerSize,
    FundingSource,
    ParticipantStatus,
    Payer,
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

__all__ = [
    "ALL_EVENTS",
    "SCHEMA_VERSION",
    "SPEC_VERSION",
    "TYPE_PREFIX",
    "AgeBand",
    "Category",
    "CloudEvent",
    "Contact",
    "ContributionPeriod",
    "Contributions",
    "Coverage",
    "DataT",
    "DeadLetter",
    "DeadLetterRecorded",
    "Delivery",
    "DeliveryChannel",
    "DeliveryEvent",
    "Employer",
    "EmployerSize",
    "EnrollmentRequest",
    "EnrollmentRequested",
    "Figure",
    "Frozen",
    "FundingSource",
    "NotificationDelivered",
    "NotificationFailed",
    "Outcome",
    "OutcomeBase",
    "Participant",
    "ParticipantReactivated",
    "ParticipantRegistered",
    "ParticipantStatus",
    "ParticipantTerminated",
    "ParticipantUpdated",
    "PartnerRequest",
    "Payer",
    "Program",
    "Reactivated",
    "ReactivationRequest",
    "ReactivationRequested",
    "RegionAggregate",
    "RegionAggregateUpdated",
    "RegionCode",
    "Registered",
    "Rejected",
    "RejectionReason",
    "RequestAction",
    "RequestId",
    "RequestRejected",
    "RiskLevel",
    "Rupiah",
    "Segment",
    "Sex",
    "Terminated",
    "TerminationReason",
    "TerminationRequest",
    "TerminationRequested",
    "UpdateRequest",
    "UpdateRequested",
    "Updated",
    "Worker",
    "delivery_adapter",
    "event_type",
    "new_event_id",
    "outcome_adapter",
    "partner_request_adapter",
    "utc_now",
]
