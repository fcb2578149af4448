"""Delivering what the ledger holds: one lane per channel, retries with backoff, a sweeper for the rest.

The ledger (`deliveries` in MongoDB) is the source of truth: the consumer records every notification there as
`pending` (the intent) and commits its Kafka offset; from then on the dispatcher owns it. A delivery is
claimed with a lease and a token (so two instances never send it at once; the claim also counts the first
attempt), attempted until it succeeds, fails for good or runs out of attempts, then settled as `sent` or
`failed` and reported on the deliveries topic. The ledger groups the claims, settlements and report marks
of concurrent deliveries into one write each (`ledger.GroupCommit`); the dispatcher still asks per delivery.

Why lanes and not one queue: each channel has its own concurrency limit and its own bound on deliveries in
flight, so a dead SMTP server or a partner whose webhook hangs uses up only its own lane. A delivery waiting
for its next retry holds no slot at all: the slot is taken for the attempt only. A lane that is full accepts
nothing more and the delivery simply stays `pending` in the ledger, where the sweeper finds it later; the
consumer never waits for a channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from services.notification.channels import Channel, DeliveryError, Outgoing, TransientDeliveryError
from services.notification.domain.addresses import redact
from services.notification.domain.deliveries import Settled, delivery_event
from services.notification.domain.messages import Audience
from shared.events import CloudEvent, DeliveryChannel, utc_now
from shared.logging import get_logger

if TYPE_CHECKING:
    from services.notification.settings import NotificationSettings

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A pending delivery this instance now holds the lease on."""

    outgoing: Outgoing
    source_event_id: str
    audience: Audience
    recipient_id: str | None
    recipient_display: str
    attempts: int  # made before this claim (by an earlier run of this or another instance)
    claim: str  # this claim's token: every later write about the delivery is conditional on it
    lease_until: datetime


class LeaseLostError(Exception):
    """The lease lapsed and another instance claimed the delivery: it is theirs to send now."""


class Ledger(Protocol):
    async def claim(self, delivery_id: str, owner: str, lease: timedelta) -> Claimed | None: ...

    async def start_attempt(self, claimed: Claimed, until: datetime, *, count: bool) -> bool: ...

    async def note_failure(self, delivery_id: str, error: str) -> None: ...

    async def settle(
        self, claimed: Claimed, status: Literal["sent", "failed"], error: str | None, attempts: int
    ) -> Settled | None: ...

    async def release(self, delivery_ids: Iterable[str], owner: str, unattempted: Iterable[Claimed] = ()) -> None: ...

    async def flush(self) -> None: ...

    async def due(self, now: datetime, limit: int) -> list[tuple[str, DeliveryChannel]]: ...

    async def unreported(self, settled_before: datetime, limit: int) -> list[Settled]: ...

    async def settled(self, delivery_ids: Iterable[str]) -> list[Settled]: ...

    async def mark_reported(self, delivery_id: str) -> None: ...

    async def signing_secret(self, audience: Audience, recipient_id: str | None) -> str | None: ...


@dataclass(slots=True)
class _Holding:
    """A claimed delivery in this instance's hands: how far its lease runs, how many attempts it started."""

    claimed: Claimed
    lease_until: datetime
    started: int = 0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    initial: float  # seconds before the first retry
    maximum: float  # longest wait between attempts
    jitter: float  # random seconds added to each wait, so failed deliveries do not retry in lockstep
    timeout: float  # one attempt
    lease: float  # how long a claim holds; renewed at every attempt

    @classmethod
    def of(cls, settings: NotificationSettings) -> RetryPolicy:
        return cls(
            max_attempts=settings.max_attempts,
            initial=settings.retry_initial,
            maximum=settings.retry_max,
            jitter=settings.retry_jitter,
            timeout=settings.send_timeout,
            lease=settings.lease,
        )


@dataclass
class Lane:
    """One channel's share of the work: `concurrency` attempts at once, `capacity` deliveries in flight, and
    at most `per_address` attempts at once to one address (a webhook endpoint), when set.

    Why a limit per address: the lane's slots are shared by every recipient, so an endpoint that takes
    seconds to answer would otherwise hold most of them and every other partner's deliveries would wait
    behind it. With the limit it holds `per_address` slots at most; the rest of the lane keeps moving.
    """

    channel: Channel
    concurrency: int
    capacity: int
    per_address: int | None = None
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    slots: asyncio.Semaphore = field(init=False)
    _addresses: dict[str, tuple[asyncio.Semaphore, int]] = field(default_factory=dict)  # slot, users

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.concurrency)

    @contextlib.asynccontextmanager
    async def address_slot(self, address: str) -> AsyncIterator[None]:
        """Wait for a turn at this address (no wait without a per-address limit)."""
        if self.per_address is None:
            yield
            return
        slot, users = self._addresses.get(address, (asyncio.Semaphore(self.per_address), 0))
        self._addresses[address] = (slot, users + 1)
        try:
            async with slot:
                yield
        finally:
            # Forget an address nobody is sending to, so the table holds only the endpoints in use.
            slot, users = self._addresses[address]
            if users == 1:
                del self._addresses[address]
            else:
                self._addresses[address] = (slot, users - 1)


def lanes_for(
    settings: NotificationSettings, channels: Mapping[DeliveryChannel, Channel]
) -> dict[DeliveryChannel, Lane]:
    """A lane per channel with the settings' limits; only webhooks are limited per address (per endpoint)."""
    concurrency = {
        DeliveryChannel.EMAIL: settings.email_concurrency,
        DeliveryChannel.WEBHOOK: settings.webhook_concurrency,
        DeliveryChannel.SMS: settings.sms_concurrency,
    }
    return {
        channel: Lane(
            implementation,
            concurrency[channel],
            settings.channel_capacity,
            per_address=settings.webhook_endpoint_concurrency if channel is DeliveryChannel.WEBHOOK else None,
        )
        for channel, implementation in channels.items()
    }


Publish = Callable[[CloudEvent[Any], str], Awaitable[None]]


class Dispatcher:
    def __init__(  # noqa: PLR0913 - the dispatcher's collaborators, each injected
        self,
        ledger: Ledger,
        lanes: Mapping[DeliveryChannel, Lane],
        policy: RetryPolicy,
        publish: Publish,
        *,
        source: str,
        sweep_interval: float,
        observe: Callable[[Settled], None] = lambda _: None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._ledger = ledger
        self._lanes = lanes
        self._policy = policy
        self._publish = publish
        self._source = source
        self._sweep_interval = sweep_interval
        self._observe = observe
        self._clock = clock
        # A lease names its holder, so a restarted process (new owner) waits for the old lease to lapse
        # unless the old one released it on a clean shutdown.
        self.owner = f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._closing = False
        self._background: set[asyncio.Task[None]] = set()
        self._settling: set[asyncio.Future[None]] = set()
        self._holding: dict[str, _Holding] = {}
        self._sweeper: asyncio.Task[None] | None = None

    # --- taking work ----------------------------------------------------------------------------------------

    def submit(self, delivery_id: str, channel: DeliveryChannel) -> bool:
        """Start delivering now if the lane has room; False leaves it to the sweeper. Never waits."""
        lane = self._lanes[channel]
        if delivery_id in lane.tasks:
            return True
        if self._closing or len(lane.tasks) >= lane.capacity:
            return False
        task = asyncio.create_task(self._deliver(lane, delivery_id), name=f"deliver:{delivery_id}")
        lane.tasks[delivery_id] = task
        task.add_done_callback(lambda _: lane.tasks.pop(delivery_id, None))
        return True

    def report(self, delivery_ids: Iterable[str]) -> None:
        """Publish the outcome of deliveries settled outside a lane (e.g. a partner without a webhook)."""
        ids = list(delivery_ids)
        if ids and not self._closing:
            self._spawn(self._report_ids(ids))

    def wake(self) -> None:
        self._wake.set()

    # --- one delivery ---------------------------------------------------------------------------------------

    async def _deliver(self, lane: Lane, delivery_id: str) -> None:
        try:
            await self._attempt_until_settled(lane, delivery_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery interrupted; it stays pending for the sweeper", delivery_id=delivery_id)

    async def _attempt_until_settled(self, lane: Lane, delivery_id: str) -> None:
        claimed = await self._ledger.claim(delivery_id, self.owner, self._lease())
        if claimed is None:  # already settled, or another instance holds it
            return
        holding = self._holding[delivery_id] = _Holding(claimed, claimed.lease_until)
        try:
            error = await self._attempt_all(lane, holding)
        except LeaseLostError:
            log.warning("lease lost to another instance, which delivers it now", delivery_id=delivery_id)
            return
        finally:
            self._holding.pop(delivery_id, None)
        # The claim counted an attempt before it started; the settlement says how many were made.
        attempts = min(claimed.attempts, self._policy.max_attempts) + holding.started
        # Once the channel has accepted the message, finish recording even if shutdown cancels us now:
        # a cancelled write here would reopen the sent-but-not-recorded window for no reason.
        settling = asyncio.ensure_future(self._settle(claimed, error, attempts))
        self._settling.add(settling)
        settling.add_done_callback(self._settling.discard)
        await asyncio.shield(settling)

    async def _attempt_all(self, lane: Lane, holding: _Holding) -> str | None:
        """Attempt until sent, failed for good or out of attempts; returns the error, None when sent."""
        claimed = holding.claimed
        outgoing = claimed.outgoing
        remaining = self._policy.max_attempts - claimed.attempts
        if remaining <= 0:
            # Resumed after every attempt was used: the last one's result was never recorded (a crash mid-send).
            return "attempts exhausted; the last one has no recorded result"
        try:
            secret = None
            if outgoing.channel is DeliveryChannel.WEBHOOK:  # cached briefly; a rotation here applies at once
                secret = await self._ledger.signing_secret(claimed.audience, claimed.recipient_id)
            async for attempt in self._retrying(remaining, claimed.attempts):
                with attempt:
                    await self._attempt(lane, holding, secret)
        except DeliveryError as exc:
            return redact(str(exc), [outgoing.address])
        return None

    def _retrying(self, remaining: int, attempts_before: int) -> AsyncRetrying:
        policy = self._policy
        # A delivery resumed after a restart keeps backing off from where it was, not from the start.
        initial = min(policy.maximum, policy.initial * 2**attempts_before)
        return AsyncRetrying(
            stop=stop_after_attempt(remaining),
            wait=wait_exponential_jitter(multiplier=initial, max=policy.maximum, jitter=policy.jitter),
            retry=retry_if_exception_type(TransientDeliveryError),
            reraise=True,
        )

    async def _attempt(self, lane: Lane, holding: _Holding, secret: str | None) -> None:
        outgoing = holding.claimed.outgoing
        # The turns at the address and in the lane are awaited before the lease is checked, so the lease
        # runs from the moment the attempt starts; the slot is held for the attempt only, never while waiting
        # to retry.
        async with lane.address_slot(outgoing.address):
            try:
                async with lane.slots:
                    await self._hold_lease(holding)
                    await self._send(lane, outgoing, secret)
            except DeliveryError as exc:
                error = redact(str(exc), [outgoing.address])
                await self._ledger.note_failure(outgoing.delivery_id, error)
                log.warning(
                    "delivery attempt failed",
                    delivery_id=outgoing.delivery_id,
                    kind=outgoing.kind,
                    channel=outgoing.channel.value,
                    recipient=holding.claimed.recipient_display,
                    attempt=holding.claimed.attempts + holding.started,
                    error=error,
                    retryable=isinstance(exc, TransientDeliveryError),
                )
                raise

    async def _hold_lease(self, holding: _Holding) -> None:
        """Before an attempt: the lease must outlast it, and the attempt must be counted (the claim counted
        the first). No write when the claim is fresh; otherwise the renewal is conditional on the claim's
        token, so a delivery whose lease lapsed and was taken by another instance is not sent here too."""
        now = self._clock()
        first = holding.started == 0
        margin = max(self._lease() / 2, timedelta(seconds=2 * self._policy.timeout))
        if not first or holding.lease_until - now < margin:
            until = now + self._lease()
            if not await self._ledger.start_attempt(holding.claimed, until, count=not first):
                raise LeaseLostError(holding.claimed.outgoing.delivery_id)
            holding.lease_until = until
        holding.started += 1

    async def _send(self, lane: Lane, outgoing: Outgoing, secret: str | None) -> None:
        try:
            async with asyncio.timeout(self._policy.timeout):
                await lane.channel.send(outgoing, secret)
        except TimeoutError:
            raise TransientDeliveryError(f"no answer within {self._policy.timeout:g}s") from None
        except DeliveryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a channel's surprise is retried, then reported, never lost
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from None

    async def _settle(self, claimed: Claimed, error: str | None, attempts: int) -> None:
        status: Literal["sent", "failed"] = "sent" if error is None else "failed"
        settled = await self._ledger.settle(claimed, status, error, attempts)
        if settled is None:  # our lease had lapsed and another instance took the delivery over
            log.warning("delivery settled by the instance that took it over", delivery_id=claimed.outgoing.delivery_id)
            return
        self._observe(settled)
        fields = {
            "delivery_id": settled.delivery_id,
            "kind": settled.kind,
            "channel": settled.channel.value,
            "recipient": settled.recipient_display,
            "attempts": settled.attempts,
        }
        if settled.status == "sent":
            log.info("notification delivered", **fields)
        else:
            log.error("notification failed", error=settled.error, **fields)
        await self._report_one(settled)

    # --- reporting ------------------------------------------------------------------------------------------

    async def _report_one(self, settled: Settled) -> None:
        try:
            await self._publish(delivery_event(settled, self._source), settled.source_event_id)
            await self._ledger.mark_reported(settled.delivery_id)
        except Exception:  # noqa: BLE001 - Kafka unavailable: the sweeper reports it later
            log.warning("delivery not reported yet; the sweeper will retry", delivery_id=settled.delivery_id)

    async def _report_ids(self, delivery_ids: list[str]) -> None:
        for settled in await self._ledger.settled(delivery_ids):
            self._observe(settled)
            log.error(
                "notification undeliverable",
                delivery_id=settled.delivery_id,
                kind=settled.kind,
                channel=settled.channel.value,
                recipient=settled.recipient_display,
                error=settled.error,
            )
            await self._report_one(settled)

    # --- the sweeper ----------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Resume pending deliveries nobody holds and report settled ones not yet on the topic."""
        now = self._clock()
        room = sum(max(0, lane.capacity - len(lane.tasks)) for lane in self._lanes.values())
        resumed = 0
        if room:
            for delivery_id, channel in await self._ledger.due(now, room):
                resumed += self.submit(delivery_id, channel)
        # A delivery settled a moment ago is still being reported by its own task: leave it a grace period.
        grace = timedelta(seconds=self._policy.timeout + 5)
        for settled in await self._ledger.unreported(now - grace, 500):
            await self._report_one(settled)
        return resumed

    async def _sweep_forever(self) -> None:
        while not self._closing:
            try:
                resumed = await self.sweep()
                if resumed:
                    log.info("sweeper resumed pending deliveries", count=resumed)
            except Exception:
                log.exception("ledger sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._sweep_interval)
            self._wake.clear()

    def start(self) -> None:
        self._closing = False
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="notification-sweeper")

    async def stop(self) -> None:
        """Stop taking work, cancel what is in flight, hand its leases back so a restart resumes at once."""
        self._closing = True
        tasks = [t for lane in self._lanes.values() for t in lane.tasks.values()]
        held = [d for lane in self._lanes.values() for d in lane.tasks]
        # Claimed, its first attempt counted by the claim but not started: uncounted when handed back.
        unattempted = [holding.claimed for holding in self._holding.values() if holding.started == 0]
        for task in [*tasks, *self._background, *([self._sweeper] if self._sweeper else [])]:
            task.cancel()
        await asyncio.gather(
            *tasks, *self._background, *([self._sweeper] if self._sweeper else []), return_exceptions=True
        )
        if self._settling:  # shielded from the cancellation above: let them finish recording
            await asyncio.wait(set(self._settling), timeout=self._policy.timeout)
        with contextlib.suppress(Exception):
            await self._ledger.flush()  # claims still being written get released below, not left leased
            if held:
                await self._ledger.release(held, self.owner, unattempted)

    # --- helpers --------------------------------------------------------------------------------------------

    def _lease(self) -> timedelta:
        return timedelta(seconds=self._policy.lease)

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
