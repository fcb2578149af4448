"""One budget's ledger: its allocation versions and reservations, changed exactly once per decision.

The ledger is one document per budget (region, year, source) and changes only as a whole, compared and swapped
on its `sequence` (the store's single-document atomicity; FerretDB v1 has no transactions). What makes a change
exactly-once without a transaction is the ledger's `pending` map: a decision's charge is entered there, under
its request key and the decision's id, before the decision is written to the request log, and settled (counted
for good, the entry removed) after the participation is written. Whoever settles a request, its own instance
or another after a crash or a rebalance, settles it to the charge of the decision the request log kept:

- an entry whose chain holds the kept decision is set to that decision's charge;
- an entry made only by decisions the log did not keep (an instance that lost the race, a partner's re-send
  decided again after the first was settled) is undone.

So a charge is counted once whichever instance crashes where, and the reservations never pass the allocation:
a decision is entered only if the whole ledger, as compared and swapped, still has room for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Self

from services.registration.domain.budget import Charge, token
from shared.events import BudgetKey, BudgetPosition
from shared.reasons import ReasonCode

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class Entry:
    """A charge counted in the ledger but not yet settled, and every decision that has entered it."""

    charge: Charge
    chain: tuple[str, ...]


@dataclass(frozen=True)
class Allocation:
    version: int
    amount: int
    worker_cap: int | None
    effective_date: date
    dprd_decision: str
    declared_by: str
    request_id: str


@dataclass(frozen=True)
class Shortfall:
    """Why a charge does not fit: the reason code, what it would need and what is left."""

    code: ReasonCode
    required: int
    available: int
    limit: str


@dataclass(frozen=True)
class Ledger:
    """One budget's allocations and reservations, as one document."""

    budget: BudgetKey
    sequence: int = 0
    allocations: tuple[Allocation, ...] = ()
    reserved: int = 0
    workers: int = 0
    by_month: Mapping[str, int] = field(default_factory=dict)
    holds: Mapping[str, int] = field(default_factory=dict)  # held request token -> what it would reserve
    pending: Mapping[str, Entry] = field(default_factory=dict)
    opened: bool = False  # the participations active when the year began are carried over (`carried_over`)

    def allocation(self, today: date) -> Allocation | None:
        """The latest version in force today (a revision may be declared ahead of its effective date)."""
        in_force = [a for a in self.allocations if a.effective_date <= today]
        return in_force[-1] if in_force else None

    def shortfall(self, charge: Charge, today: date) -> Shortfall | None:
        """None when the charge fits; only reservations are checked (a release or a hold always fits)."""
        allocation = self.allocation(today)
        if allocation is None or charge.amount <= 0:
            return None
        available = allocation.amount - self.reserved
        if charge.amount > available:
            limit = f"Rp{charge.amount:,} > sisa/left Rp{available:,}".replace(",", ".")
            return Shortfall(ReasonCode.BUDGET_EXHAUSTED, charge.amount, available, limit)
        cap = allocation.worker_cap
        if cap is not None and charge.workers > 0 and self.workers + charge.workers > cap:
            return Shortfall(ReasonCode.BUDGET_WORKER_CAP_REACHED, charge.amount, available, str(cap))
        return None

    def counted(self, change: Charge) -> Self:
        """The ledger with a change added (no pending entry: `enter` and `settle` keep those)."""
        months = dict(self.by_month)
        for month, value in change.by_month.items():
            months[month] = months.get(month, 0) + value
            if months[month] == 0:
                del months[month]
        holds = dict(self.holds)
        for held, required in change.holds.items():
            if required > 0:
                holds[held] = required
            else:
                holds.pop(held, None)
        return replace(
            self,
            reserved=self.reserved + change.amount,
            workers=self.workers + change.workers,
            by_month=dict(sorted(months.items())),
            holds=holds,
        )

    def holds_open(self, request_key: str) -> bool:
        return token(request_key) in self.holds

    def enter(self, key: str, charge: Charge, decision_id: str) -> Self:
        """Count a decision's charge before its request-log entry is written; a charge entered under the same
        request before (by an instance that crashed, or lost its partition) is replaced, not added to."""
        name = token(key)
        before = self.pending.get(name)
        counted = before.charge if before is not None else Charge(charge.budget)
        chain = (*before.chain, decision_id) if before is not None else (decision_id,)
        ledger = self.counted(counted.inverse())
        charge = ledger.changing(charge)
        return replace(ledger.counted(charge), pending={**ledger.pending, name: Entry(charge, chain)})

    def changing(self, charge: Charge) -> Charge:
        """The charge without the holds it would not change: a hold it opens that is open already, one it closes
        that is not open. A hold is a mark, not a sum: undoing an entry that opened a hold open before would
        close it. That happened when an instance settled a batch of holds and was killed before committing its
        offsets: the batch, decided again by the next instance, lost the request log to the first decisions and
        was undone, and 20 settled holds went from the ledger (the two-instance budget e2e test in CI)."""
        holds = {
            held: required
            for held, required in charge.holds.items()
            if (self.holds.get(held) != required if required > 0 else held in self.holds)
        }
        return charge if len(holds) == len(charge.holds) else replace(charge, holds=holds)

    def fits_replacing(self, key: str, charge: Charge, today: date) -> Shortfall | None:
        before = self.pending.get(token(key))
        counted = before.charge if before is not None else Charge(charge.budget)
        return self.shortfall(charge.minus(counted), today)

    def settle(self, key: str, kept_id: str, kept: Charge | None) -> Self:
        """Count a request for good as the decision the request log kept: see the module docstring."""
        name = token(key)
        entry = self.pending.get(name)
        if entry is None:
            return self
        target = kept if kept is not None and kept_id in entry.chain else Charge(self.budget)
        ledger = self.counted(entry.charge.inverse()).counted(target)
        return replace(ledger, pending={k: v for k, v in self.pending.items() if k != name})

    def declare(self, allocation: Allocation) -> Self:
        if self.declaration(allocation.declared_by, allocation.request_id) is not None:
            return self  # the same declaration again: a redelivery or a partner's re-send
        return replace(self, allocations=(*self.allocations, replace(allocation, version=len(self.allocations) + 1)))

    def declaration(self, declared_by: str, request_id: str) -> Allocation | None:
        return next((a for a in self.allocations if (a.declared_by, a.request_id) == (declared_by, request_id)), None)

    def carried_over(self, carried: Charge) -> Self:
        """The year opened: what the participations active when it began need for all twelve months."""
        return replace(self.counted(carried), opened=True)

    def position(self, as_of: datetime, today: date) -> BudgetPosition:
        allocation = self.allocation(today)
        return BudgetPosition(
            **self.budget.model_dump(),
            sequence=max(self.sequence, 1),
            as_of=as_of,
            allocation=allocation.amount if allocation else None,
            allocation_version=allocation.version if allocation else 0,
            worker_cap=allocation.worker_cap if allocation else None,
            dprd_decision=allocation.dprd_decision if allocation else None,
            reserved=self.reserved,
            workers=self.workers,
            by_month=dict(self.by_month),
            holds_waiting=len(self.holds),
            holds_waiting_amount=sum(self.holds.values()),
        )
