"""The budget step of a batch: admit decisions against their ledgers before they are logged, settle after.

`admit` runs on each chunk of decisions before its request-log write: per budget, one read of the ledger, the
chunk's decisions checked in order against it (a reservation the ledger has no room for turns its decision into
a hold, `domain.holds.held`), entered, and the ledger swapped as a whole; a swap that lost to another instance
is done again on the ledger as it now is. `settle` runs after the participations are written: every request of
the batch is counted for good as the decision the request log kept (`domain.ledger`). Then each touched
budget's position goes out on the budget topic, and held requests with a verdict go back to intake.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from services.registration.channels import nik_of_payload
from services.registration.domain.budget import Charge, token
from services.registration.domain.holds import approved_stale, held
from services.registration.domain.ledger import Allocation, Ledger
from shared.events import AllocationRecordedEvent, BudgetPositionChanged, HoldResolution, RequestRejected
from shared.events.budget import FIRST_FISCAL_YEAR
from shared.messaging import Keyed
from shared.topics import VERDICT_HEADER

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from services.registration.budgets import MongoBudgets
    from services.registration.domain.participation import Context, Decision, Verdict
    from services.registration.service import Publish
    from shared.events import BudgetKey

# A ledger swap lost to another instance is tried again on the ledger as it now is; this many times at most,
# then the batch fails and is retried whole (nothing is logged yet, so nothing is lost).
SWAP_ATTEMPTS = 50
# Seconds a new year's first decision waits for the year before to settle (a crashed instance's batch is
# redelivered and settled within a session timeout).
YEAR_OPENING_WAITS = 60


def budget_of(decision: Decision) -> str | None:
    if isinstance(decision.outcome, AllocationRecordedEvent):
        return decision.outcome_key
    return decision.charge.budget.key if decision.charge is not None else None


def _admitted(decision: Decision, ledger: Ledger, ctx: Context) -> Decision:
    """The decision as its budget lets it stand: held where the ledger has no room for what it reserves."""
    charge, verdict = decision.charge, decision.verdict
    if charge is None:
        return decision
    if verdict is not None and verdict.budget == charge.budget:
        held_key = decision.key.split("#", 1)[0]
        if not ledger.holds_open(held_key) and ledger.pending.get(token(decision.key)) is None:
            return approved_stale(decision, ctx)  # decided already on another verdict
        if verdict.resolution is HoldResolution.REFUSED or isinstance(decision.outcome, RequestRejected):
            return decision
        # Approved: the hold's own reservation is not counted yet, so the whole charge must fit.
        short = ledger.fits_replacing(decision.key, replace(charge, holds={}), ctx.today)
        return decision if short is None else held(decision, short, charge.budget, reopen=False)
    short = ledger.fits_replacing(decision.key, charge, ctx.today)
    return decision if short is None or decision.participant is None else held(decision, short, charge.budget)


def _declared(decision: Decision, ledger: Ledger) -> tuple[Decision, Ledger]:
    """An allocation entered in its ledger, and its outcome with the version the ledger gave it."""
    outcome = decision.outcome
    if not isinstance(outcome, AllocationRecordedEvent):
        raise TypeError("only an allocation is declared")
    data = outcome.data
    ledger = ledger.declare(
        Allocation(
            1, data.amount, data.worker_cap, data.effective_date, data.dprd_decision, data.declared_by, data.request_id
        )
    )
    declared = ledger.declaration(data.declared_by, data.request_id)
    version = declared.version if declared is not None else 1
    recorded = outcome.model_copy(update={"data": data.model_copy(update={"version": version})})
    return replace(decision, outcome=recorded), ledger


def _entered(
    ledger: Ledger, indexes: list[int], decisions: Sequence[Decision], ctx: Context
) -> tuple[Ledger, dict[int, Decision]]:
    """One budget's decisions of a batch checked in order against its ledger and entered in it."""
    admitted: dict[int, Decision] = {}
    for index in indexes:
        decision = decisions[index]
        if isinstance(decision.outcome, AllocationRecordedEvent):
            admitted[index], ledger = _declared(decision, ledger)
            continue
        decision = _admitted(decision, ledger, ctx)
        if decision.charge is not None:
            ledger = ledger.enter(decision.key, decision.charge, decision.outcome.id)
        admitted[index] = decision
    return ledger, admitted


Settlement = tuple[str, str, Charge | None]  # request key, the kept outcome's id, its charge on this budget


def _settlements(kept: Iterable[Decision], entered: Mapping[str, str]) -> dict[str, list[Settlement]]:
    """Per budget touched by the batch, what to settle in it."""
    work: dict[str, list[Settlement]] = {}
    for decision in kept:
        charge = decision.charge
        touched = {entered.get(decision.key), charge.budget.key if charge is not None else None} - {None}
        if isinstance(decision.outcome, AllocationRecordedEvent):
            touched.add(decision.outcome_key)
        for budget in touched:
            mine = charge if charge is not None and charge.budget.key == budget else None
            work.setdefault(str(budget), []).append((decision.key, decision.outcome.id, mine))
    return work


def _settled(ledger: Ledger, items: Iterable[Settlement]) -> Ledger:
    for request, kept_id, charge in items:
        ledger = ledger.settle(request, kept_id, charge)
    return ledger


@dataclass
class Entries:
    """What a batch's budget step entered: the budget each request was entered in (to settle it there), and
    each ledger as the batch last wrote it. The next chunk and the settle step start from that instead of
    reading the ledger again: if another instance has changed it since, their swap loses and reads it then."""

    budgets: dict[str, str] = field(default_factory=dict)  # request key -> budget key
    ledgers: dict[str, Ledger] = field(default_factory=dict)  # budget key -> the version this batch wrote last

    def wrote(self, before: Ledger, after: Ledger) -> None:
        self.ledgers[after.budget.key] = replace(after, sequence=before.sequence + 1)


@dataclass(frozen=True)
class Budgeting:
    """Everything the budget step needs, created once in the app's lifespan."""

    store: MongoBudgets
    publish: Publish
    budget_topic: str
    intake_topic: str

    async def admit(
        self, decisions: Sequence[Decision], ctx: Context, entered: Entries | None = None
    ) -> tuple[list[Decision], Entries]:
        """The decisions as their budgets let them stand, entered in their ledgers; and what was entered (added
        to `entered`, the batch's so far), to settle after the batch is applied.

        Every budget of the batch is read, opened and swapped together (`MongoBudgets.swap_many`): a batch
        touches a budget per region and source, and a round trip per budget was most of a batch's time. Only
        the budgets whose swap lost to another instance go round again."""
        result = list(decisions)
        groups: dict[str, list[int]] = {}
        for index, decision in enumerate(decisions):
            key = budget_of(decision)
            if key is not None:
                groups.setdefault(key, []).append(index)
        entered = entered if entered is not None else Entries()
        todo = dict(groups)
        for _ in range(SWAP_ATTEMPTS):
            if not todo:
                break
            befores = await self._current(todo, entered)
            ledgers = await self._opened(befores, ctx)
            admitted: dict[str, dict[int, Decision]] = {}
            for key, indexes in todo.items():
                ledgers[key], admitted[key] = _entered(ledgers[key], indexes, decisions, ctx)
            # The summaries wait for `settle`, which writes the next version of the same budgets anyway.
            lost = await self.store.swap_many([(befores[key], ledgers[key]) for key in todo], summarise=False)
            for key in set(todo) - lost:
                entered.wrote(befores[key], ledgers[key])
                for index, decision in admitted[key].items():
                    result[index] = decision
            todo = {key: todo[key] for key in lost}
            for key in lost:
                entered.ledgers.pop(key, None)
        if todo:
            raise RuntimeError(f"budgets {sorted(todo)}: ledgers kept changing under {SWAP_ATTEMPTS} attempts; retried")
        entered.budgets.update({result[i].key: key for key, indexes in groups.items() for i in indexes})
        return result, entered

    async def _current(self, keys: Iterable[str], entered: Entries) -> dict[str, Ledger]:
        """The ledgers as this batch last wrote them, read from the store where it has not written them yet."""
        wanted = list(keys)
        loaded = await self.store.load([key for key in wanted if key not in entered.ledgers])
        return {key: entered.ledgers[key] if key in entered.ledgers else loaded[key] for key in wanted}

    async def settle(self, kept: Sequence[Decision], entered: Entries, ctx: Context) -> list[Keyed]:
        """Count every request of the batch for good as the decision the log kept; the touched budgets'
        positions to publish."""
        work = _settlements(kept, entered.budgets)
        settled: dict[str, Ledger] = {}
        todo = dict(work)
        for _ in range(SWAP_ATTEMPTS):
            if not todo:
                break
            befores = await self._current(todo, entered)
            changes: dict[str, tuple[Ledger, Ledger]] = {}
            for key, items in todo.items():
                before = befores[key]
                # Not opened and never written: nothing of this year was entered here (a replay), nothing to settle.
                ledger = before if not before.opened and before.sequence == 0 else _settled(before, items)
                if ledger == before:
                    settled[key] = before
                else:
                    changes[key] = (before, ledger)
            lost = await self.store.swap_many(list(changes.values()))
            for key, (before, ledger) in changes.items():
                if key not in lost:
                    settled[key] = replace(ledger, sequence=before.sequence + 1)
            todo = {key: todo[key] for key in lost}
            for key in lost:
                entered.ledgers.pop(key, None)
        if todo:
            raise RuntimeError(f"budgets {sorted(todo)}: ledgers kept changing under {SWAP_ATTEMPTS} attempts; retried")
        # After the ledgers: a budget is drawn on once its allocation is settled (a replay declares it again).
        await self.store.declare(d.outcome_key for d in kept if isinstance(d.outcome, AllocationRecordedEvent))
        return [self.position(settled[key], ctx) for key in work]

    async def _opened(self, ledgers: Mapping[str, Ledger], ctx: Context) -> dict[str, Ledger]:
        """The ledgers as their first decision of the year finds them: with the participations active when the
        year began carried over. Only once the year has begun, and only once the year before has settled every
        entry (settled means the participation is written), so the carry-over reads every participation the
        year before reserved for."""
        opening = {
            key: ledger
            for key, ledger in ledgers.items()
            if not ledger.opened and ctx.today.year >= ledger.budget.fiscal_year
        }
        if not opening:
            return dict(ledgers)
        earlier = {key: _earlier_years(ledger.budget) for key, ledger in opening.items()}
        previous = {keys[-1] for keys in earlier.values() if keys}
        for _ in range(YEAR_OPENING_WAITS):
            loaded = await self.store.load({key for keys in earlier.values() for key in keys})
            unsettled = sorted(key for key in previous if loaded[key].pending)
            if not unsettled:
                break
            await asyncio.sleep(1)
        else:
            raise RuntimeError(f"budgets {unsettled} still have pending entries; the batch is retried")
        # A participation carried over reserved in an earlier year of the same region and source, and that
        # year's ledger holds the reservation: where no earlier ledger was ever written there is nothing to
        # carry, and the read of the participants (a scan on FerretDB) is spared. On a year's first day, or a
        # new database, that is nearly every budget.
        carrying = [ledger.budget for key, ledger in opening.items() if any(loaded[k].sequence for k in earlier[key])]
        carried = await self.store.carried_many(carrying) if carrying else {}
        return {
            **ledgers,
            **{key: ledger.carried_over(carried.get(key) or Charge(ledger.budget)) for key, ledger in opening.items()},
        }

    def position(self, ledger: Ledger, ctx: Context) -> Keyed:
        event = BudgetPositionChanged(
            source="lindungi/registration",
            subject=ledger.budget.key,
            time=ctx.now,
            data=ledger.position(ctx.now, ctx.today),
        )
        return Keyed.of(self.budget_topic, ledger.budget.key, event)

    async def forwards(self, decisions: Iterable[Decision]) -> list[Keyed]:
        """Held requests with a verdict, back to intake keyed by their NIK, the verdict in a header that only
        registration writes (a partner's forwarded record carries its channel header and is never trusted)."""
        records: list[Keyed] = []
        for decision in decisions:
            if decision.forward is None:
                continue
            raw = await self.store.held_request(decision.forward.held_key)
            if raw is None:
                continue  # held before its event was kept (cannot happen in this version); nothing to send
            verdict = verdict_header(decision.forward.verdict)
            key = nik_of_payload(raw) or decision.forward.held_key
            records.append(Keyed(self.intake_topic, key, raw, {VERDICT_HEADER: verdict}))
        return records


def _earlier_years(budget: BudgetKey) -> list[str]:
    """The keys of the budget's region and source in every fiscal year before its own (the year before last)."""
    return [
        budget.model_copy(update={"fiscal_year": year}).key for year in range(FIRST_FISCAL_YEAR, budget.fiscal_year)
    ]


def verdict_header(verdict: Verdict) -> str:
    return json.dumps(
        {
            "resolution": verdict.resolution.value,
            "decided_by": verdict.decided_by,
            "decision_key": verdict.decision_key,
            "budget": verdict.budget.key,
            "required": verdict.required,
        }
    )
