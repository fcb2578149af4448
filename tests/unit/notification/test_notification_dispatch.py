"""The dispatcher's rules with an in-memory ledger and scripted channels: retries, their limits, and lanes.

Real SMTP, HTTP, Kafka and MongoDB are in tests/integration/notification; here only the decisions: what is
retried, how often, and that a delivery waiting to retry holds no slot of its lane.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from services.notification.channels import Outgoing, PermanentDeliveryError, TransientDeliveryError
from services.notification.dispatch import Claimed, Dispatcher, Lane, RetryPolicy
from services.notification.domain.deliveries import Settled
from services.notification.domain.messages import Audience
from shared.events import CloudEvent, DeliveryChannel, NotificationFailed, utc_now

POLICY = RetryPolicy(max_attempts=3, initial=0.01, maximum=0.02, jitter=0.0, timeout=0.5, lease=5)


@dataclass
class Entry:
    claimed: Claimed
    status: str = "pending"
    attempts: int = 0
    error: str | None = None
    claim: str | None = None


@dataclass
class MemoryLedger:
    """The ledger's rules without its grouping: a claim counts the attempt about to start and gets a token;
    every later write is conditional on that token."""

    entries: dict[str, Entry] = field(default_factory=dict)
    lease: timedelta = timedelta(seconds=5)
    renewals: list[tuple[str, bool]] = field(default_factory=list)  # (delivery, counted) per start_attempt
    released: list[str] = field(default_factory=list)
    claims: int = 0

    def add(
        self, delivery_id: str, channel: DeliveryChannel = DeliveryChannel.EMAIL, address: str = "siti@example.org"
    ) -> None:
        outgoing = Outgoing(delivery_id, "participant.registered", channel, address, "id", "s", "t", "{}")
        claimed = Claimed(outgoing, "ev-1", Audience.WORKER, None, "s***@example.org", 0, "", utc_now())
        self.entries[delivery_id] = Entry(claimed)

    async def claim(self, delivery_id: str, owner: str, lease: timedelta) -> Claimed | None:  # noqa: ARG002
        entry = self.entries[delivery_id]
        if entry.status != "pending":
            return None
        self.claims += 1
        entry.attempts += 1
        entry.claim = f"claim-{self.claims}"
        return replace(
            entry.claimed, attempts=entry.attempts - 1, claim=entry.claim, lease_until=utc_now() + self.lease
        )

    async def start_attempt(self, claimed: Claimed, until: datetime, *, count: bool) -> bool:  # noqa: ARG002
        entry = self.entries[claimed.outgoing.delivery_id]
        self.renewals.append((claimed.outgoing.delivery_id, count))
        if entry.claim != claimed.claim:
            return False
        entry.attempts += count
        return True

    async def note_failure(self, delivery_id: str, error: str) -> None:
        self.entries[delivery_id].error = error

    async def settle(
        self, claimed: Claimed, status: Literal["sent", "failed"], error: str | None, attempts: int
    ) -> Settled | None:
        entry = self.entries[claimed.outgoing.delivery_id]
        if entry.claim != claimed.claim:
            return None
        entry.status, entry.error, entry.attempts = status, error, attempts
        c = entry.claimed
        return Settled(
            c.outgoing.delivery_id, c.source_event_id, c.outgoing.kind, c.audience, None, c.recipient_display,
            c.outgoing.channel, status, attempts, error, utc_now(),
        )  # fmt: skip

    async def release(self, delivery_ids: Iterable[str], owner: str, unattempted: Iterable[Claimed] = ()) -> None:  # noqa: ARG002
        for claimed in unattempted:
            self.entries[claimed.outgoing.delivery_id].attempts -= 1
        self.released += list(delivery_ids)

    async def flush(self) -> None:
        pass

    async def due(self, now: datetime, limit: int) -> list[tuple[str, DeliveryChannel]]:  # noqa: ARG002
        return []

    async def unreported(self, settled_before: datetime, limit: int) -> list[Settled]:  # noqa: ARG002
        return []

    async def settled(self, delivery_ids: Iterable[str]) -> list[Settled]:  # noqa: ARG002
        return []

    async def mark_reported(self, delivery_id: str) -> None:
        pass

    async def signing_secret(self, audience: Audience, recipient_id: str | None) -> str | None:  # noqa: ARG002
        return "secret"


class Scripted:
    """A channel that answers from a script: an exception to raise, `hang`, or None for success."""

    def __init__(self, *script: BaseException | str | None) -> None:
        self.script = list(script)
        self.calls = 0

    async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if step == "hang":
            await asyncio.Event().wait()
        if isinstance(step, BaseException):
            raise step


async def run(ledger: MemoryLedger, lanes: dict[DeliveryChannel, Lane], *ids: tuple[str, DeliveryChannel]) -> list[Any]:
    published: list[CloudEvent[Any]] = []

    async def publish(event: CloudEvent[Any], _key: str) -> None:
        published.append(event)

    dispatcher = Dispatcher(ledger, lanes, POLICY, publish, source="test", sweep_interval=60)
    for delivery_id, channel in ids:
        assert dispatcher.submit(delivery_id, channel)
    async with asyncio.timeout(5):
        await asyncio.gather(*(task for lane in lanes.values() for task in list(lane.tasks.values())))
    return published


def lane(channel: Scripted, concurrency: int = 1, capacity: int = 10, per_address: int | None = None) -> Lane:
    return Lane(channel, concurrency, capacity, per_address)


async def test_a_transient_failure_is_retried_and_then_succeeds() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    channel = Scripted(TransientDeliveryError("SMTP 451"), None)
    [report] = await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert ledger.entries["d1"].status == "sent"
    assert report.data.attempts == 2
    assert channel.calls == 2


async def test_retries_stop_at_the_maximum_and_the_failure_is_reported_masked() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    channel = Scripted(*[TransientDeliveryError("refused <siti@example.org>")] * 5)
    [report] = await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert isinstance(report, NotificationFailed)
    assert report.data.attempts == 3
    assert report.data.error == "refused <s***@example.org>"
    assert channel.calls == 3


async def test_a_permanent_failure_is_not_retried() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    channel = Scripted(PermanentDeliveryError("HTTP 404"))
    await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert (ledger.entries["d1"].status, ledger.entries["d1"].attempts) == ("failed", 1)


async def test_a_surprising_error_is_retried_like_a_transient_one_never_lost() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    channel = Scripted(UnicodeEncodeError("ascii", "é", 0, 1, "no"), None)
    await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert (ledger.entries["d1"].status, ledger.entries["d1"].attempts) == ("sent", 2)


async def test_an_attempt_that_hangs_times_out_and_is_retried() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    channel = Scripted("hang", None)
    await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert (ledger.entries["d1"].status, ledger.entries["d1"].attempts) == ("sent", 2)


async def test_a_delivery_waiting_to_retry_holds_no_slot() -> None:
    # One slot. d1 fails once and waits to retry; d2 must get the slot meanwhile.
    ledger = MemoryLedger()
    ledger.add("d1")
    ledger.add("d2")
    order: list[str] = []

    class Recording(Scripted):
        async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002
            order.append(outgoing.delivery_id)
            if outgoing.delivery_id == "d1" and order.count("d1") == 1:
                raise TransientDeliveryError("later")

    await run(
        ledger, {DeliveryChannel.EMAIL: lane(Recording())}, ("d1", DeliveryChannel.EMAIL), ("d2", DeliveryChannel.EMAIL)
    )
    assert order == ["d1", "d2", "d1"]


async def test_a_full_lane_refuses_work_instead_of_waiting() -> None:
    ledger = MemoryLedger()
    for n in range(3):
        ledger.add(f"d{n}")
    hanging = lane(Scripted("hang", "hang", "hang"), capacity=2)
    dispatcher = Dispatcher(ledger, {DeliveryChannel.EMAIL: hanging}, POLICY, _ignore, source="t", sweep_interval=60)
    assert dispatcher.submit("d0", DeliveryChannel.EMAIL)
    assert dispatcher.submit("d1", DeliveryChannel.EMAIL)
    assert not dispatcher.submit("d2", DeliveryChannel.EMAIL)  # stays pending in the ledger for the sweeper
    await dispatcher.stop()


async def _ignore(_event: CloudEvent[Any], _key: str) -> None:
    return


async def test_a_slow_endpoint_holds_no_more_than_its_share_of_the_lane() -> None:
    # Four slots, one attempt at a time per endpoint. Four deliveries to an endpoint that takes a long time
    # and two to a fast one: the fast ones are done while the slow endpoint still has work queued, and the
    # slow endpoint never has two attempts in flight.
    ledger = MemoryLedger()
    slow, fast = "https://slow.example/hook", "https://fast.example/hook"
    for n in range(4):
        ledger.add(f"s{n}", DeliveryChannel.WEBHOOK, slow)
    for n in range(2):
        ledger.add(f"f{n}", DeliveryChannel.WEBHOOK, fast)
    in_flight: dict[str, int] = {slow: 0, fast: 0}
    most: dict[str, int] = {slow: 0, fast: 0}
    done: list[str] = []

    class Endpoints(Scripted):
        async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002
            in_flight[outgoing.address] += 1
            most[outgoing.address] = max(most[outgoing.address], in_flight[outgoing.address])
            await asyncio.sleep(0.05 if outgoing.address == slow else 0.001)
            in_flight[outgoing.address] -= 1
            done.append(outgoing.delivery_id)

    webhooks = lane(Endpoints(), concurrency=4, per_address=1)
    ids = [(f"s{n}", DeliveryChannel.WEBHOOK) for n in range(4)] + [
        (f"f{n}", DeliveryChannel.WEBHOOK) for n in range(2)
    ]
    await run(ledger, {DeliveryChannel.WEBHOOK: webhooks}, *ids)
    assert most == {slow: 1, fast: 1}
    assert set(done[:3]) >= {"f0", "f1"}  # not queued behind the slow endpoint's four
    assert all(ledger.entries[d].status == "sent" for d, _ in ids)
    assert not webhooks._addresses


# --- the claim counts the first attempt; later writes hold only while the claim does ------------------------


async def test_the_claim_counts_the_first_attempt_and_only_a_retry_writes_before_sending() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    channel = Scripted(TransientDeliveryError("SMTP 451"), None)
    [report] = await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert ledger.renewals == [("d1", True)]  # the retry counted itself; the first attempt wrote nothing
    assert (ledger.entries["d1"].attempts, report.data.attempts) == (2, 2)


async def test_a_delivery_resumed_with_every_attempt_used_fails_unsent_with_its_attempts_as_they_were() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")
    ledger.entries["d1"].attempts = POLICY.max_attempts  # the last attempt's result was never recorded
    channel = Scripted(None)
    [report] = await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL))
    assert channel.calls == 0
    assert isinstance(report, NotificationFailed)
    assert report.data.attempts == POLICY.max_attempts  # not one more for the claim
    assert ledger.entries["d1"].attempts == POLICY.max_attempts


async def test_a_lease_lost_to_another_instance_stops_the_delivery_here_unsent_and_unsettled() -> None:
    ledger = MemoryLedger()
    ledger.add("d1")

    class TakenOverAfterOneFailure(Scripted):
        async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002
            self.calls += 1
            ledger.entries["d1"].claim = "another instance's claim"  # our lease lapsed while we retried
            raise TransientDeliveryError("SMTP 451")

    channel = TakenOverAfterOneFailure()
    assert await run(ledger, {DeliveryChannel.EMAIL: lane(channel)}, ("d1", DeliveryChannel.EMAIL)) == []
    assert channel.calls == 1
    assert ledger.entries["d1"].status == "pending"  # the new holder sends and settles it


async def test_a_claim_whose_lease_ran_short_is_renewed_before_its_first_attempt() -> None:
    ledger = MemoryLedger(lease=timedelta(seconds=0.2))  # less than half the policy's lease left
    ledger.add("d1")
    await run(ledger, {DeliveryChannel.EMAIL: lane(Scripted(None))}, ("d1", DeliveryChannel.EMAIL))
    assert ledger.renewals == [("d1", False)]  # renewed, not counted twice
    assert (ledger.entries["d1"].status, ledger.entries["d1"].attempts) == ("sent", 1)


async def test_stopping_hands_leases_back_and_uncounts_attempts_that_never_started() -> None:
    ledger = MemoryLedger()
    ledger.add("d0")
    ledger.add("d1")
    sending = asyncio.Event()

    class Hanging(Scripted):
        async def send(self, outgoing: Outgoing, secret: str | None) -> None:  # noqa: ARG002
            sending.set()
            await asyncio.Event().wait()

    one_slot = lane(Hanging(), concurrency=1)
    dispatcher = Dispatcher(ledger, {DeliveryChannel.EMAIL: one_slot}, POLICY, _ignore, source="t", sweep_interval=60)
    assert dispatcher.submit("d0", DeliveryChannel.EMAIL)
    assert dispatcher.submit("d1", DeliveryChannel.EMAIL)
    async with asyncio.timeout(5):
        await sending.wait()  # d0 is sending; d1, claimed in the same round, waits for the slot
    assert ledger.claims == 2
    await dispatcher.stop()
    assert sorted(ledger.released) == ["d0", "d1"]
    assert (ledger.entries["d0"].attempts, ledger.entries["d1"].attempts) == (1, 0)
