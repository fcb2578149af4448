"""Budget alerts: positions in, threshold alerts recorded; holds booked; the daily digest of holds waiting.

The budget side of the notifier, kept in its own module: it reads its own topic (`lindungi.budget.v1`) and
keeps its own documents (`budget_positions`, `budget_holds`), and shares with the notifier only the way a
message becomes a delivery (`Notifier.record`: the ledger, so nothing is sent twice).

Crash safety follows the ledger's rule: the intents of a batch are recorded first, then each budget's newest
position and the thresholds announced under it are written in one document. A crash in between redoes the
same crossings on redelivery, which make the same delivery ids, which the ledger already holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from services.notification.domain.budget import (
    BudgetState,
    HeldRequest,
    by_budget,
    holds_digest_message,
    threshold_messages,
    walk,
)
from services.notification.domain.digest import digest_day_due, jakarta_date
from services.notification.domain.messages import Kind
from services.notification.domain.scope import scopes_covering
from shared.events import HoldDecidedEvent, RequestHeld, utc_now
from shared.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from datetime import date, datetime

    from services.notification.domain.messages import Message, Subscription
    from services.notification.settings import NotificationSettings
    from shared.events import BudgetPosition, Outcome
    from shared.regions import Regions

log = get_logger(__name__)


class BudgetStore(Protocol):
    async def subscriptions_in(self, scopes: Iterable[str]) -> list[Subscription]: ...

    async def subscriptions_hearing(self, kind: Kind) -> list[Subscription]: ...

    async def budget_states(self, keys: Iterable[str]) -> dict[str, BudgetState]: ...

    async def save_budget_state(self, state: BudgetState) -> None: ...

    async def budgets_with_holds(self) -> list[BudgetPosition]: ...

    async def book_holds(self, held: Sequence[RequestHeld], decided: Sequence[HoldDecidedEvent]) -> None: ...

    async def holds_waiting(self, budget_keys: Iterable[str]) -> list[HeldRequest]: ...

    async def digest_items_of(self, delivery_id: str) -> list[str] | None: ...


class Recorder(Protocol):
    async def record(self, messages: Sequence[Message]) -> None: ...


@dataclass(frozen=True, slots=True)
class BudgetRules:
    thresholds: tuple[int, ...]
    digest_hour: int

    @classmethod
    def of(cls, settings: NotificationSettings) -> BudgetRules:
        return cls(thresholds=tuple(settings.budget_thresholds), digest_hour=settings.budget_digest_hour)


class BudgetAlerts:
    def __init__(
        self,
        store: BudgetStore,
        recorder: Recorder,
        regions: Regions,
        rules: BudgetRules,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._regions = regions
        self._rules = rules
        self._clock = clock

    async def on_positions(self, positions: Sequence[BudgetPosition]) -> int:
        """Thresholds crossed by these positions, announced; returns how many notifications that made."""
        grouped = by_budget(positions)
        if not grouped:
            return 0
        states = await self._store.budget_states(grouped)
        newest: list[BudgetState] = []
        crossings: list[tuple[BudgetPosition, list[int]]] = []
        for key, sequence in grouped.items():
            before = states.get(key)
            after, crossed_here = walk(before, sequence, self._rules.thresholds)
            crossings += crossed_here
            if after is not None and after is not before:
                newest.append(after)
        messages: list[Message] = []
        if crossings:
            scopes = scopes_covering((p.region_code for p, _ in crossings), self._regions)
            subscriptions = await self._store.subscriptions_in(scopes)
            for position, crossed in crossings:
                messages += threshold_messages(position, crossed, subscriptions, self._regions)
                log.info(
                    "budget threshold", budget=position.key, thresholds=crossed, version=position.allocation_version
                )
        await self._recorder.record(messages)  # before the state: a crash between redoes the same deliveries
        for state in newest:
            await self._store.save_budget_state(state)
        return len(messages)

    async def on_outcomes(self, events: Sequence[Outcome]) -> None:
        """Book holds and verdicts, so that the digest can name the requests still waiting."""
        held = [e for e in events if isinstance(e, RequestHeld)]
        decided = [e for e in events if isinstance(e, HoldDecidedEvent)]
        if held or decided:
            await self._store.book_holds(held, decided)

    async def flush_holds_digests(self, now: datetime | None = None, day: date | None = None) -> int:
        """Each `budget.holds.digest` subscriber's digest of the day; returns how many were recorded.

        Safe to call again for the same day: a subscriber's digest of a day is one delivery id.
        """
        now = now or self._clock()
        day = day or jakarta_date(now)
        subscriptions = await self._store.subscriptions_hearing(Kind.BUDGET_HOLDS_DIGEST)
        if not subscriptions:
            return 0
        budgets = await self._store.budgets_with_holds()
        if not budgets:
            return 0
        waiting = await self._store.holds_waiting(b.key for b in budgets)
        messages = [
            message
            for subscription in subscriptions
            if (message := holds_digest_message(subscription, day, budgets, waiting, self._regions))
            # Already in the ledger (an earlier tick, another instance, an operator): that one is the day's.
            and await self._store.digest_items_of(message.delivery_id) is None
        ]
        await self._recorder.record(messages)
        return len(messages)

    async def holds_digest_if_due(self, last_day: date | None, now: datetime | None = None) -> date | None:
        """The scheduler's tick: the holds digest once a day after its hour (Asia/Jakarta)."""
        now = now or self._clock()
        due = digest_day_due(now, self._rules.digest_hour)
        if due is None or due == last_day:
            return last_day
        count = await self.flush_holds_digests(now, due)
        log.info("budget holds digests flushed", day=due.isoformat(), digests=count)
        return due
