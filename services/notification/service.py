"""The notifier: facts in (outcomes, coverage snapshots, the clock), intents recorded, deliveries started.

Each entry point reads what the rules need from the store, asks the domain who hears what, renders the
messages, records them in the ledger (or in a digest), and hands the pending ones to the dispatcher without
waiting for any channel. When an entry point returns, everything it decided is durable: the caller may
commit its Kafka offset.

The store is whatever implements `NotificationStore` (`store.MongoNotificationStore`); the records it takes
and gives (`NewDelivery`, `Threshold`) are defined here, with it. `Schedule` runs the notifier's periodic
work. Operators' requests (subscriptions, partners) have their own application module, `admin.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter

from services.notification.domain.coverage import (
    CoverageSnapshot,
    RegionProgress,
    milestone_messages,
    newly_crossed,
    stagnation_messages,
)
from services.notification.domain.digest import DigestItem, digest_day_due, digest_message, jakarta_date
from services.notification.domain.messages import Audience, Message, PartnerWebhook, Subscription
from services.notification.domain.outcomes import messages_for_outcome, outcome_regions
from services.notification.domain.scope import escalation_scope, scopes_covering
from shared.events import DeliveryChannel, Outcome, RequestHeld, RequestRejected, utc_now
from shared.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Sequence

    from prometheus_client import CollectorRegistry

    from services.notification.budget_alerts import BudgetAlerts
    from services.notification.dispatch import Dispatcher
    from services.notification.domain.deliveries import Settled
    from services.notification.settings import NotificationSettings
    from services.notification.templates import Renderer
    from shared.regions import Regions

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """A rendered notification about to be recorded as an intent (or, if undeliverable, as failed)."""

    delivery_id: str
    source_event_id: str
    kind: str
    audience: Audience
    recipient_id: str | None
    channel: DeliveryChannel
    address: str | None
    recipient_display: str
    language: str
    subject: str
    text: str
    payload: str | None
    undeliverable: str | None = None
    digest_items: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Threshold:
    """A coverage threshold a region has reached, the snapshot that claimed it, and whether it was announced."""

    threshold: int
    event_id: str
    announced: bool


@dataclass(frozen=True)
class Metrics:
    """Notification's own counters, next to the per-message ones FastStream's middleware keeps."""

    deliveries: Counter
    batch_failures: Counter
    stagnation_checks: Counter

    @classmethod
    def register(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            Counter("notification_deliveries", "settled deliveries", ["channel", "status", "kind"], registry=registry),
            Counter("notification_batch_failures", "batches rewound after a failure", registry=registry),
            Counter("notification_stagnation_checks", "stagnation checks completed", registry=registry),
        )

    def settled(self, delivery: Settled) -> None:
        self.deliveries.labels(delivery.channel.value, delivery.status, delivery.kind).inc()


class NotificationStore(Protocol):
    async def subscriptions_in(self, scopes: Iterable[str]) -> list[Subscription]: ...

    async def digest_subscriptions(self) -> list[Subscription]: ...

    async def partner_webhooks(self, partner_ids: Iterable[str] | None = None) -> dict[str, PartnerWebhook]: ...

    async def record_intents(self, entries: Sequence[NewDelivery]) -> list[tuple[str, DeliveryChannel]]: ...

    async def digest_items_of(self, delivery_id: str) -> list[str] | None: ...

    async def hold_for_digest(self, items: Sequence[DigestItem]) -> None: ...

    async def digest_backlog(self, subscription_id: str, held_before: datetime) -> list[DigestItem]: ...

    async def mark_digested(self, item_ids: Sequence[str], day: date) -> None: ...

    async def thresholds_reached(self, region_code: str) -> list[Threshold]: ...

    async def claim_thresholds(self, snapshot: CoverageSnapshot, thresholds: Sequence[int]) -> list[int]: ...

    async def mark_announced(self, region_code: str, thresholds: Sequence[int]) -> None: ...

    async def record_progress(self, snapshot: CoverageSnapshot, progress: float) -> None: ...

    async def stalled_regions(self, progress_before: datetime, levels: Sequence[str]) -> list[RegionProgress]: ...


@dataclass(frozen=True, slots=True)
class CoverageRules:
    thresholds: tuple[int, ...]
    stagnation_period: timedelta
    stagnation_levels: tuple[str, ...]
    digest_hour: int

    @classmethod
    def of(cls, settings: NotificationSettings) -> CoverageRules:
        return cls(
            thresholds=tuple(settings.milestone_thresholds),
            stagnation_period=settings.stagnation_period,
            stagnation_levels=tuple(settings.stagnation_levels),
            digest_hour=settings.digest_hour,
        )


class Notifier:
    def __init__(  # noqa: PLR0913 - the notifier's collaborators, each injected
        self,
        store: NotificationStore,
        renderer: Renderer,
        dispatcher: Dispatcher,
        regions: Regions,
        rules: CoverageRules,
        *,
        channels: frozenset[DeliveryChannel],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._renderer = renderer
        self._dispatcher = dispatcher
        self._regions = regions
        self._rules = rules
        self._channels = channels
        self._clock = clock

    # --- outcomes -------------------------------------------------------------------------------------------

    async def on_outcomes(self, events: Sequence[Outcome]) -> int:
        """Everyone who hears about these outcomes, recorded; returns how many notifications that made."""
        if not events:
            return 0
        scopes = {scope for event in events for scope in scopes_covering(outcome_regions(event), self._regions)}
        subscriptions = await self._store.subscriptions_in(scopes)
        partner_ids = {e.data.partner_id for e in events if isinstance(e, RequestRejected | RequestHeld)}
        partners = await self._store.partner_webhooks(partner_ids) if partner_ids else {}
        messages = [
            message
            for event in events
            for message in messages_for_outcome(event, subscriptions, partners, self._regions)
            if self._worker_reachable(message)
        ]
        await self.record(messages)
        return len(messages)

    def _worker_reachable(self, message: Message) -> bool:
        # Without an SMS gateway a worker is told by e-mail only; that is a deployment choice, not a failure.
        return message.audience is not Audience.WORKER or message.channel in self._channels

    # --- coverage -------------------------------------------------------------------------------------------

    async def on_coverage(self, snapshots: Sequence[CoverageSnapshot]) -> int:
        """Milestones crossed by these snapshots, announced once per (region, threshold)."""
        announced = 0
        for snapshot in snapshots:
            progress = snapshot.progress
            if progress is None:
                continue
            await self._store.record_progress(snapshot, progress)
            reached = await self._store.thresholds_reached(snapshot.region_code)
            # Thresholds this very snapshot claimed earlier but did not get to announce (a crash, a rewind).
            unfinished = [t.threshold for t in reached if t.event_id == snapshot.event_id and not t.announced]
            crossed = newly_crossed(progress, self._rules.thresholds, [t.threshold for t in reached])
            claimed = await self._store.claim_thresholds(snapshot, crossed) if crossed else []
            to_announce = sorted({*unfinished, *claimed})
            if not to_announce:
                continue
            subscriptions = await self._store.subscriptions_in(scopes_covering([snapshot.region_code], self._regions))
            messages = milestone_messages(snapshot, to_announce, subscriptions, self._regions)
            await self.record(messages)
            await self._store.mark_announced(snapshot.region_code, to_announce)
            log.info(
                "coverage milestone",
                region_code=snapshot.region_code,
                thresholds=to_announce,
                recipients=len(messages),
            )
            announced += len(messages)
        return announced

    async def check_stagnation(self, now: datetime | None = None) -> int:
        """Escalate regions without progress for a whole period to their province, once per period."""
        now = now or self._clock()
        period = self._rules.stagnation_period
        stalled = await self._store.stalled_regions(now - period, self._rules.stagnation_levels)
        if not stalled:
            return 0
        scopes = {scope for region in stalled if (scope := escalation_scope(region.region_code))}
        subscriptions = await self._store.subscriptions_in(scopes)
        messages = [
            message
            for region in stalled
            for message in stagnation_messages(region, now, period, subscriptions, self._regions)
        ]
        await self.record(messages)
        return len(messages)

    # --- digests --------------------------------------------------------------------------------------------

    async def flush_digests(self, now: datetime | None = None, day: date | None = None) -> int:
        """Send each daily-digest subscriber what was held for them; returns the number of digests recorded.

        Safe to call again for the same day (a second instance, a restart, an operator): the digest of a
        subscriber and day is one ledger entry, and it carries exactly the items recorded with it.
        """
        now = now or self._clock()
        day = day or jakarta_date(now)
        flushed = 0
        for subscription in await self._store.digest_subscriptions():
            items = await self._store.digest_backlog(subscription.subscription_id, now)
            message = digest_message(subscription, day, items)
            if message is None:
                continue
            recorded = await self._store.digest_items_of(message.delivery_id)
            if recorded is None:
                entry = self._entry(message, digest_items=tuple(i.item_id for i in items))
                self._submit_pending(await self._store.record_intents([entry]))
                # Another instance may have recorded this digest first: trust the ledger, not our list.
                recorded = await self._store.digest_items_of(message.delivery_id) or []
                flushed += 1
            await self._store.mark_digested(recorded, day)
        return flushed

    async def digest_if_due(self, last_day: date | None, now: datetime | None = None) -> date | None:
        """The scheduler's tick: flush once a day after the digest hour (Asia/Jakarta)."""
        now = now or self._clock()
        due = digest_day_due(now, self._rules.digest_hour)
        if due is None or due == last_day:
            return last_day
        count = await self.flush_digests(now, due)
        log.info("daily digests flushed", day=due.isoformat(), digests=count)
        return due

    # --- recording ------------------------------------------------------------------------------------------

    async def record(self, messages: Sequence[Message]) -> None:
        """Record messages as intents (or hold them for a digest) and start delivering the pending ones."""
        immediate = [m for m in messages if not m.digest]
        held = [self._digest_item(m) for m in messages if m.digest]
        entries = [self._entry(m) for m in immediate]
        pending = await self._store.record_intents(entries)
        await self._store.hold_for_digest(held)
        self._submit_pending(pending)
        self._dispatcher.report(e.delivery_id for e in entries if e.undeliverable is not None)

    def _submit_pending(self, pending: list[tuple[str, DeliveryChannel]]) -> None:
        overflow = sum(not self._dispatcher.submit(delivery_id, channel) for delivery_id, channel in pending)
        if overflow:
            # The lanes are full: these stay pending in the ledger and the sweeper brings them back.
            log.info("channel lanes full; deliveries left to the sweeper", count=overflow)

    def _entry(self, message: Message, digest_items: tuple[str, ...] = ()) -> NewDelivery:
        rendered = self._renderer.render(message)
        return NewDelivery(
            delivery_id=message.delivery_id,
            source_event_id=message.source_event_id,
            kind=message.kind.value,
            audience=message.audience,
            recipient_id=message.recipient_id,
            channel=message.channel,
            address=message.address,
            recipient_display=message.recipient_display,
            language=message.language,
            subject=rendered.subject,
            text=rendered.text,
            payload=rendered.payload,
            undeliverable=message.undeliverable,
            digest_items=digest_items,
        )

    def _digest_item(self, message: Message) -> DigestItem:
        subject, _ = self._renderer.text(message.template or message.kind.value, message.language, dict(message.facts))
        occurred = message.facts.get("occurred_at") or message.facts.get("as_of") or message.facts.get("rejected_at")
        return DigestItem(
            item_id=message.delivery_id,
            subscription_id=message.recipient_id or "",
            kind=message.kind,
            source_event_id=message.source_event_id,
            summary=subject,
            occurred_at=datetime.fromisoformat(occurred) if isinstance(occurred, str) else self._clock(),
        )


class Schedule:
    """The notifier's clockwork: the dispatcher's sweeper, the daily digests (the budget holds' too) and the
    stagnation check.

    Started once the consumers run; stopped before they stop, the dispatcher handing its leases back.
    """

    def __init__(  # noqa: PLR0913 - the jobs and their intervals, each named
        self,
        notifier: Notifier,
        dispatcher: Dispatcher,
        *,
        digest_every: float,
        stagnation_every: float,
        checked: Callable[[], None] = lambda: None,
        budget_alerts: BudgetAlerts | None = None,
    ) -> None:
        self._notifier = notifier
        self._budget_alerts = budget_alerts
        self._budget_digest_day: date | None = None
        self._dispatcher = dispatcher
        self._digest_every = digest_every
        self._stagnation_every = stagnation_every
        self._checked = checked  # counts the stagnation checks completed
        self._digest_day: date | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._dispatcher.start()  # its first sweep resumes whatever a previous run left pending
        self._tasks += [
            asyncio.create_task(_every(self._digest_every, self._digest, "digest")),
            asyncio.create_task(_every(self._stagnation_every, self._stagnation, "stagnation")),
        ]
        if self._budget_alerts is not None:
            self._tasks.append(asyncio.create_task(_every(self._digest_every, self._budget_digest, "budget digest")))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._dispatcher.stop()

    async def _digest(self) -> None:
        self._digest_day = await self._notifier.digest_if_due(self._digest_day)

    async def _budget_digest(self) -> None:
        if self._budget_alerts is not None:
            self._budget_digest_day = await self._budget_alerts.holds_digest_if_due(self._budget_digest_day)

    async def _stagnation(self) -> None:
        await self._notifier.check_stagnation()
        self._checked()


async def _every(seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
    """Run a periodic job forever; one failed round is logged and the next one tries again."""
    while True:
        try:
            await job()
        except Exception:
            log.exception("periodic job failed", job=name)
        await asyncio.sleep(seconds)
