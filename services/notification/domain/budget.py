"""Budget alerts: a region's APBD/APBDes budget filling up, and the holds waiting on it.

Registration publishes each budget's position after every reservation, release, hold and revision (latest
`sequence` wins). Notification tells the region's finance and planning subscribers:
- `budget.threshold`: when the reservations first reach 80% and 100% of the allocation (settings), once per
  threshold and allocation version: a threshold is announced when a position crosses it (the one before was
  below it, or is the first one seen) and not already announced under this version. A revision upward that
  brings the reservations back below a threshold re-arms it; a revision downward past it announces it under
  the new version (the budget is fuller than before); a redelivered or older position changes nothing;
- `budget.holds.digest`: once a day, per budget in their scope, the holds waiting for a verdict.

Scope as everywhere else: a budget belongs to its region (a province, a regency/city, or a kecamatan for
APBDes), and every subscription at or above that region hears of it. Amounts only: no message names a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any

from services.notification.domain.messages import Audience, Kind, Message
from services.notification.domain.scope import ancestry, region_name, subscriber_messages

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date

    from services.notification.domain.messages import Subscription
    from shared.events import BudgetKey, BudgetPosition
    from shared.regions import Regions

#: Held requests named one by one in a digest, per budget; the rest are counted ("and 12 more").
DIGEST_LISTED_HOLDS = 20


def reached(position: BudgetPosition | None, threshold: int) -> bool:
    """Whether the reservations are at or past `threshold` percent of the allocation, in exact Rupiah.

    No allocation (none declared yet, or zero) reaches nothing: every enrollment it would pay is held, and
    the holds are what the finance office hears about.
    """
    if position is None or not position.allocation:
        return False
    return position.reserved * 100 >= threshold * position.allocation


def reserved_percent(position: BudgetPosition) -> float | None:
    """The share reserved, rounded down to a tenth of a percent: 79.99% never reads as 80%."""
    if not position.allocation:
        return None
    return (position.reserved * 1000 // position.allocation) / 10


@dataclass(frozen=True, slots=True)
class BudgetState:
    """The newest position seen of one budget and the thresholds announced under its allocation version."""

    position: BudgetPosition
    announced: frozenset[int] = frozenset()


def advance(
    state: BudgetState | None, position: BudgetPosition, thresholds: Iterable[int]
) -> tuple[BudgetState, list[int]]:
    """The state after `position` (newer than the state's), and the thresholds it crosses, ascending."""
    previous = state.position if state else None
    same_version = previous is not None and previous.allocation_version == position.allocation_version
    announced = state.announced if state is not None and same_version else frozenset()
    crossed = sorted(
        t for t in set(thresholds) if reached(position, t) and not reached(previous, t) and t not in announced
    )
    return BudgetState(position, announced | frozenset(crossed)), crossed


def walk(
    state: BudgetState | None, positions: Iterable[BudgetPosition], thresholds: Iterable[int]
) -> tuple[BudgetState | None, list[tuple[BudgetPosition, list[int]]]]:
    """One budget's positions in `sequence` order from `state`: the new state and every crossing on the way.

    A position no newer than the state's (a redelivery, an older one arriving late) is skipped.
    """
    limits = tuple(thresholds)
    crossings: list[tuple[BudgetPosition, list[int]]] = []
    for position in sorted(positions, key=lambda p: p.sequence):
        if state is not None and position.sequence <= state.position.sequence:
            continue
        state, crossed = advance(state, position, limits)
        if crossed:
            crossings.append((position, crossed))
    return state, crossings


def by_budget(positions: Iterable[BudgetPosition]) -> dict[str, list[BudgetPosition]]:
    ordered = sorted(positions, key=lambda p: (p.key, p.sequence))
    return {key: list(group) for key, group in groupby(ordered, key=lambda p: p.key)}


def budget_names(budget: BudgetKey, regions: Regions) -> dict[str, Any]:
    """Which budget, as every budget message names it."""
    return {
        "budget_key": budget.key,
        "region_code": budget.region_code,
        "region_name": region_name(budget.region_code, regions),
        "fiscal_year": budget.fiscal_year,
        "funding_source": budget.funding_source.value,
    }


def budget_facts(position: BudgetPosition, regions: Regions) -> dict[str, Any]:
    """Where a budget stands, as a finance office reads it: amounts and counts, never a person."""
    allocation = position.allocation
    return {
        **budget_names(position, regions),
        "allocation": allocation,
        "allocation_version": position.allocation_version,
        "dprd_decision": position.dprd_decision,
        "reserved": position.reserved,
        "remaining": None if allocation is None else allocation - position.reserved,
        "reserved_percent": reserved_percent(position),
        "workers": position.workers,
        "worker_cap": position.worker_cap,
        "holds_waiting": position.holds_waiting,
        "holds_waiting_amount": position.holds_waiting_amount,
        "as_of": position.as_of.isoformat(),
    }


def threshold_source_id(position: BudgetPosition, threshold: int) -> str:
    return f"budget-threshold:{position.key}:v{position.allocation_version}:{threshold}"


def threshold_messages(
    position: BudgetPosition, crossed: Sequence[int], subscriptions: Iterable[Subscription], regions: Regions
) -> list[Message]:
    """One alert for the highest threshold this position crossed, naming the lower ones it crossed too."""
    if not crossed:
        return []
    top = max(crossed)
    facts = {
        **budget_facts(position, regions),
        "threshold": top,
        "also_crossed": sorted(t for t in crossed if t != top),
        "occurred_at": position.as_of.isoformat(),
    }
    return subscriber_messages(
        source_event_id=threshold_source_id(position, top),
        kind=Kind.BUDGET_THRESHOLD,
        region_codes=[position.region_code],
        facts=facts,
        subscriptions=subscriptions,
        regions=regions,
        template=Kind.BUDGET_THRESHOLD.value,
    )


# --- the daily digest of holds waiting --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeldRequest:
    """A request held over a budget with no verdict seen yet: what a checker needs to find and decide it."""

    budget_key: str
    partner_id: str
    request_id: str
    required: int
    held_at: datetime


def holds_digest_source_id(subscription_id: str, day: date) -> str:
    return f"budget-holds:{subscription_id}:{day.isoformat()}"


def _in_scope(subscription: Subscription, position: BudgetPosition, regions: Regions) -> bool:
    return subscription.scope in ancestry(position.region_code, regions)


def holds_digest_message(
    subscription: Subscription,
    day: date,
    budgets: Iterable[BudgetPosition],
    waiting: Iterable[HeldRequest],
    regions: Regions,
) -> Message | None:
    """The day's holds waiting on the budgets in the subscriber's scope; None when nothing waits there.

    The counts are registration's (the budget's position); the requests listed are those notification saw
    held and saw no verdict for, oldest first, at most `DIGEST_LISTED_HOLDS` per budget.
    """
    if Kind.BUDGET_HOLDS_DIGEST not in subscription.kinds:
        return None
    mine = sorted(
        (b for b in budgets if b.holds_waiting > 0 and _in_scope(subscription, b, regions)),
        key=lambda b: (b.region_code, b.fiscal_year, b.funding_source.value),
    )
    if not mine:
        return None
    requests: dict[str, list[HeldRequest]] = {}
    for held in sorted(waiting, key=lambda h: (h.held_at, h.partner_id, h.request_id)):
        requests.setdefault(held.budget_key, []).append(held)
    entries = []
    for budget in mine:
        listed = requests.get(budget.key, [])[: min(DIGEST_LISTED_HOLDS, budget.holds_waiting)]
        entries.append(
            {
                **budget_facts(budget, regions),
                "requests": [
                    {
                        "partner_id": h.partner_id,
                        "request_id": h.request_id,
                        "required": h.required,
                        "held_at": h.held_at.isoformat(),
                    }
                    for h in listed
                ],
                "unlisted": budget.holds_waiting - len(listed),
            }
        )
    facts = {
        "day": day.isoformat(),
        "subscription_name": subscription.name,
        "scope": subscription.scope,
        "holds_waiting": sum(b.holds_waiting for b in mine),
        "holds_waiting_amount": sum(b.holds_waiting_amount for b in mine),
        "budgets": entries,
    }
    return Message(
        source_event_id=holds_digest_source_id(subscription.subscription_id, day),
        kind=Kind.BUDGET_HOLDS_DIGEST,
        audience=Audience.SUBSCRIBER,
        recipient_id=subscription.subscription_id,
        channel=subscription.channel,
        address=subscription.address,
        language=subscription.language,
        facts=facts,
        template=Kind.BUDGET_HOLDS_DIGEST.value,
    )
