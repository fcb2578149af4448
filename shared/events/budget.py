"""The budget side: what a region's finance office declares, what registration reserves against it, and holds.

A regional government pays the contributions of the vulnerable workers and non-ASN staff it enrolls from its
budget (APBD; a village's from the APBDes). Its finance office, a partner with the `budget` right for its own
region, declares each fiscal year's allocation; a revision during the year (APBD-P) is a new version, never an
edit. Registration reserves, for every enrollment the budget pays, the contributions due from its coverage
start to the end of the fiscal year, and holds an enrollment that would push the reservations past the
allocation until a second principal of the region approves or refuses it (maker-checker).

Partners send `...Requested` commands on their own request topic like any other request; registration answers
on the outcomes topic (`HoldDecided`, and `RequestHeld` for an enrollment it holds, both in `outcomes`) and
publishes each budget's position after every change on the budget topic, keyed by the budget (`BudgetKey.key`).
Aggregates only: no event here names a worker.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from shared.events.envelope import CloudEvent, Frozen
from shared.events.vocabulary import RegionCode, RequestId, Rupiah

FIRST_FISCAL_YEAR = 2015  # no budget of an earlier year is accepted
FiscalYear = Annotated[
    int, Field(ge=FIRST_FISCAL_YEAR, le=2100, description="the fiscal year: 1 January to 31 December, WIB")
]
Month = Annotated[str, Field(pattern=r"^\d{4}-\d{2}$", examples=["2027-03"])]


class BudgetSource(StrEnum):
    """The public budgets registration reserves against (funding sources of the same names)."""

    APBD = "APBD"  # the province's or the regency/city's budget: the allocation's region says which
    APBDES = "APBDES"  # village budgets, declared together per kecamatan or regency/city


class BudgetKey(Frozen):
    """One budget: a region's allocation from one source for one fiscal year."""

    region_code: RegionCode = Field(description="province, regency/city or kecamatan whose budget it is")
    fiscal_year: FiscalYear
    funding_source: BudgetSource

    @property
    def key(self) -> str:
        """The Kafka key and document id of this budget, e.g. `32.71|2027|APBD`."""
        return f"{self.region_code}|{self.fiscal_year}|{self.funding_source.value}"


# --- commands a partner sends -----------------------------------------------------------------------------------


class AllocationRequest(BudgetKey):
    """An allocation declared by the region's finance office; a later one for the same budget revises it."""

    request_id: RequestId
    amount: Rupiah = Field(description="what the DPRD approved for contributions, in whole Rupiah")
    worker_cap: int | None = Field(default=None, ge=1, description="at most this many workers, if the decision says")
    effective_date: date = Field(description="from when this version applies")
    dprd_decision: str = Field(min_length=1, max_length=200, description="reference of the DPRD decision (Perda)")


class HoldVerdict(StrEnum):
    APPROVE = "APPROVE"
    REFUSE = "REFUSE"


class HoldDecisionRequest(Frozen):
    """A second principal's verdict on a held request: approval re-checks the budget, refusal ends the request."""

    request_id: RequestId = Field(description="the deciding partner's own id for this decision")
    held_partner_id: str = Field(min_length=1, max_length=128, description="the partner whose request is held")
    held_request_id: RequestId
    verdict: HoldVerdict
    note: str | None = Field(default=None, max_length=500)


class AllocationRequested(CloudEvent[AllocationRequest]):
    type: Literal["id.lindungi.budget.allocation.requested"] = "id.lindungi.budget.allocation.requested"


class HoldDecisionRequested(CloudEvent[HoldDecisionRequest]):
    type: Literal["id.lindungi.hold.decision.requested"] = "id.lindungi.hold.decision.requested"


BudgetCommand = Annotated[AllocationRequested | HoldDecisionRequested, Field(discriminator="type")]
budget_command_adapter: TypeAdapter[BudgetCommand] = TypeAdapter(BudgetCommand)


# --- what registration answers and publishes ------------------------------------------------------------------


class BudgetCharge(BudgetKey):
    """What one decision reserved (positive) or released (negative) on one budget, month by month."""

    amount: int = Field(description="Rupiah reserved (+) or released (-) in total")
    workers: int = Field(description="+1 for a worker reserved, -1 for one released, 0 for a change")
    by_month: dict[Month, int] = Field(description="the same amount split by the month it is due in")


class AllocationRecorded(BudgetKey):
    """An allocation version as registration holds it: what every later reservation is checked against."""

    version: int = Field(ge=1, description="1 for the first declaration of this budget, then each revision")
    amount: Rupiah
    worker_cap: int | None = None
    effective_date: date
    dprd_decision: str
    declared_by: str = Field(description="the finance office's partner id")
    request_id: RequestId


class BudgetPosition(BudgetKey):
    """Where one budget stands: published after every change, the latest `sequence` wins."""

    sequence: int = Field(ge=1, description="grows with every change of this budget")
    as_of: datetime
    allocation: Rupiah | None = Field(description="the latest version's amount; None before any declaration")
    allocation_version: int = Field(ge=0)
    worker_cap: int | None = None
    dprd_decision: str | None = None
    reserved: int = Field(description="Rupiah reserved to the end of the fiscal year by accepted decisions")
    workers: int = Field(description="workers whose contributions are reserved")
    by_month: dict[Month, int] = Field(description="the reservation by the month it is due in")
    holds_waiting: int = Field(ge=0, description="held requests waiting for a verdict")
    holds_waiting_amount: Rupiah = Field(description="what they would reserve together")


class AllocationRecordedEvent(CloudEvent[AllocationRecorded]):
    type: Literal["id.lindungi.budget.allocation.recorded"] = "id.lindungi.budget.allocation.recorded"


class BudgetPositionChanged(CloudEvent[BudgetPosition]):
    type: Literal["id.lindungi.budget.position.changed"] = "id.lindungi.budget.position.changed"


BudgetEvent = Annotated[AllocationRecordedEvent | BudgetPositionChanged, Field(discriminator="type")]
budget_event_adapter: TypeAdapter[BudgetEvent] = TypeAdapter(BudgetEvent)
