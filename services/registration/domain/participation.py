"""What a lifecycle decision is taken on and what it produces: the partner, the participation, its history.

A participation is one NIK in one segment (a worker can be PU with an employer and BPU on the side).
Its id is derived from the keyed NIK hash and the segment, so the same worker always maps to the same
document without the NIK in clear. A request is identified by its partner and the partner's request id
(`request_key`): that pair makes a decision idempotent.

How these are stored is the store's business (`services.registration.store`); here they are plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events import (
    BudgetCharge,
    BudgetKey,
    CloudEvent,
    EnrollmentRequest,
    EnrollmentRequested,
    FundingSource,
    HoldResolution,
    Participant,
    ParticipantStatus,
    ReactivationRequested,
    RequestAction,
    Segment,
    TerminationRequested,
    UpdateRequested,
)
from shared.privacy import nik_hash

if TYPE_CHECKING:
    from services.registration.domain.budget import Charge
    from shared.regions import Regions

SOURCE = "lindungi/registration"
PARTNER_SOURCE_PREFIX = "partner/"

RequestEvent = EnrollmentRequested | UpdateRequested | TerminationRequested | ReactivationRequested


class PartnerRight(StrEnum):
    """What a partner may do beyond enrolling and changing participations."""

    #: Send existing participations from another system with their historical coverage start.
    MIGRATION = "migration"
    #: Declare the budget of its regions (a finance office) and decide requests held over it (maker-checker).
    BUDGET = "budget"


class Partner(BaseModel):
    """A partner system and what it may submit: regions (a regency/city, a province, or `ID` for national),
    segments, funding sources, and rights beyond ordinary requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partner_id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    regions: frozenset[str] = Field(min_length=1)
    segments: frozenset[Segment] = Field(min_length=1)
    funding_sources: frozenset[FundingSource] = Field(min_length=1)
    rights: frozenset[PartnerRight] = frozenset()
    active: bool = True

    def covers(self, region_code: str, regions: Regions) -> bool:
        return any(r.code in self.regions for r in regions.ancestors(region_code))


class ParticipantRecord(BaseModel):
    """The stored participation: the snapshot other services see, plus what registration needs to
    recompute it (the enrollment basis, with the NIK masked)."""

    model_config = ConfigDict(frozen=True)

    participant_id: str
    nik_hash: str
    version: int
    status: ParticipantStatus
    snapshot: Participant
    basis: EnrollmentRequest
    full_name: str
    nik: str | None = Field(default=None, exclude=True, description="in memory only, to be sealed")
    nik_sealed: str | None = None
    reserved: BudgetCharge | None = Field(
        default=None, description="what the budget paying for it holds for it in the fiscal year, by month"
    )


@dataclass(frozen=True)
class HistoryEntry:
    """One change of a participation: who changed what, when, from which request. No NIK: the participant
    id is the link."""

    request_key: str
    participant_id: str
    version: int
    action: RequestAction
    status: ParticipantStatus
    partner_id: str
    request_id: str
    request_event_id: str
    requested_at: datetime
    decided_at: datetime
    snapshot: Participant
    decided_by: str | None = None  # the second principal, for a request decided on a held one's verdict
    hold: str | None = None  # HELD, APPROVED or REFUSED: what the budget did to the request

    @cached_property
    def snapshot_json(self) -> str:
        """The snapshot serialised once, for the request log and the history both."""
        return self.snapshot.model_dump_json()


@dataclass(frozen=True)
class Decision:
    """What one request led to. `key` (partner id : request id) makes the decision idempotent."""

    key: str
    outcome: CloudEvent[Any]
    outcome_key: str
    partner_id: str
    participant: ParticipantRecord | None = None
    history: HistoryEntry | None = None
    warnings: tuple[str, ...] = field(default=())
    charge: Charge | None = None  # what the decision does to a public budget (`domain.budget`)
    forward: Forward | None = None  # a held request sent back to intake on a second principal's verdict
    verdict: Verdict | None = None  # set on a held request decided again on a verdict

    @cached_property
    def outcome_json(self) -> str:
        """The outcome event as published and as logged: serialised once for both."""
        return self.outcome.model_dump_json()


@dataclass(frozen=True)
class Verdict:
    """A second principal's verdict on a held request, as it comes back to intake with the request."""

    resolution: HoldResolution
    decided_by: str
    decision_key: str  # the verdict's own request key: with the held one's, the key of the decision it leads to
    budget: BudgetKey
    required: int


@dataclass(frozen=True)
class Reconsidered:
    """A held request decided again on a verdict: its own request log key, so a second verdict is possible."""

    event: EnrollmentRequested | ReactivationRequested | UpdateRequested
    verdict: Verdict

    @property
    def held_key(self) -> str:
        return request_key(partner_id_of(self.event.source), self.event.data.request_id)

    @property
    def key(self) -> str:
        return f"{self.held_key}#{self.verdict.decision_key}"


@dataclass(frozen=True)
class Forward:
    """The held request (its NIK sealed, bound to the key) to send back to intake with the verdict."""

    held_key: str
    verdict: Verdict


@dataclass(frozen=True)
class Context:
    """The facts every decision needs that do not come with the request."""

    today: date
    regions: Regions
    nik_secret: bytes
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    budgets: frozenset[str] = frozenset()  # the budgets declared (`BudgetKey.key`): where enrollments draw


def partner_id_of(source: str) -> str:
    return source.removeprefix(PARTNER_SOURCE_PREFIX)


def request_key(partner_id: str, request_id: str) -> str:
    return f"{partner_id}:{request_id}"


def participant_id(nik: str, segment: Segment, secret: bytes) -> str:
    return f"{nik_hash(nik, secret)}:{segment.value}"


def nik_of(event: RequestEvent) -> str:
    data = event.data
    return data.worker.nik if isinstance(data, EnrollmentRequest) else data.nik
