"""The delivery ledger's documents (`deliveries`): intents recorded, claimed under a lease, settled, reported.

One document per (source event, recipient, channel); `_id` = the delivery id, so recording the same intent
again (a redelivered event, a second instance) finds it already there. The notifier writes intents; the
dispatcher (`dispatch.Ledger`) claims, attempts, settles and reports them; operators list them.

The dispatcher asks for one delivery at a time, but the ledger answers in groups (`GroupCommit`): the claims,
settlements and report marks asked for within a few milliseconds go to the server as one write each, so a
delivery costs a share of four round trips instead of five or six of its own. Every write stays conditional
on the document's own state (a claim on a free lease, everything after it on the claim's token), so grouping
changes how many round trips there are, not what any instance may do.

Half of the store: `store.MongoNotificationStore` adds who hears what, digests and coverage to this class.
Only these two modules know the documents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar

from pymongo import ASCENDING, UpdateOne

from services.notification.channels import Outgoing
from services.notification.dispatch import Claimed
from services.notification.domain.deliveries import Settled
from services.notification.domain.messages import Audience
from services.notification.service import NewDelivery
from shared.events import DeliveryChannel, utc_now
from shared.mongo import bulk_update, insert_new

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime, timedelta

    from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
#: How long a group waits for company after its first member: short next to a round trip under load.
FLUSH_DELAY = 0.002
#: The most deliveries one grouped write names (an `$in` list, a bulk write).
GROUP_LIMIT = 500

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Callers hand in one item each and wait for its result; one writer sends what has gathered in one go.

    A group is what arrived during the short delay and during the previous write: under load the groups
    grow by themselves, idle a lone caller waits `delay` at most. A failed write fails every caller of its
    group. A caller that is cancelled stops waiting, but the write it joined still happens: the writer is
    not the caller's task, so a shutdown never leaves a write half-sent.
    """

    def __init__(
        self,
        write: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        delay: float = FLUSH_DELAY,
        limit: int = GROUP_LIMIT,
    ) -> None:
        self._write = write
        self._delay = delay
        self._limit = limit
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name="ledger-group-commit")
        return await future

    async def _write_groups(self) -> None:
        while self._waiting:
            await asyncio.sleep(self._delay)
            group, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
            try:
                results = await self._write([item for item, _ in group])
            except asyncio.CancelledError:  # the loop is closing: nobody waits forever
                for _, future in [*group, *self._waiting]:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the group, who decides
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def drain(self) -> None:
        """Wait for the writes already asked for (at shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])


class _Claim(NamedTuple):
    delivery_id: str
    owner: str
    lease: timedelta


class _Settlement(NamedTuple):
    claimed: Claimed
    status: Literal["sent", "failed"]
    error: str | None
    attempts: int


class MongoLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.deliveries = db["deliveries"]
        self._claims = GroupCommit(self._claim_group)
        self._settlements = GroupCommit(self._settle_group)
        self._reports = GroupCommit(self._mark_reported_group)

    async def create_indexes(self) -> None:
        await self.deliveries.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
        await self.deliveries.create_index([("status", ASCENDING), ("reported", ASCENDING)])
        await self.deliveries.create_index([("source_event_id", ASCENDING)])
        await self.deliveries.create_index([("created_at", ASCENDING)])

    # --- intents --------------------------------------------------------------------------------------------

    async def record_intents(self, entries: Sequence[NewDelivery]) -> list[tuple[str, DeliveryChannel]]:
        """Insert what is not recorded yet; return the deliveries still pending (new or left from before).

        Called before the consumer commits its offset: once this returns, nothing of the batch can be lost.
        Only intents that were there already (a redelivered event) are looked up: a new one is pending unless
        it was recorded as undeliverable.
        """
        if not entries:
            return []
        now = utc_now()
        known = await insert_new(self.deliveries, [_intent_document(entry, now) for entry in entries])
        pending = [
            (entry.delivery_id, entry.channel)
            for index, entry in enumerate(entries)
            if index not in known and entry.undeliverable is None
        ]
        if known:
            ids = [entries[index].delivery_id for index in sorted(known)]
            cursor = self.deliveries.find({"_id": {"$in": ids}, "status": "pending"}, {"channel": 1})
            pending += [(doc["_id"], DeliveryChannel(doc["channel"])) async for doc in cursor]
        return pending

    async def digest_items_of(self, delivery_id: str) -> list[str] | None:
        doc = await self.deliveries.find_one({"_id": delivery_id}, {"digest_items": 1})
        return None if doc is None else list(doc.get("digest_items", []))

    # --- the dispatcher's side (dispatch.Ledger) ------------------------------------------------------------

    async def claim(self, delivery_id: str, owner: str, lease: timedelta) -> Claimed | None:
        return await self._claims(_Claim(delivery_id, owner, lease))

    async def _claim_group(self, claims: list[_Claim]) -> list[Claimed | None]:
        """One `update_many` takes every free lease of the group under a fresh token and counts the attempt
        about to start; one `find` reads back what now carries the token. The filter is evaluated per document
        at write time (MongoDB; FerretDB with the local stack's write lock), so of two instances asking for
        the same delivery exactly one gets it."""
        found: dict[str, tuple[Document, str, datetime]] = {}
        for (owner, lease), ids in _by_holder(claims).items():
            now, token = utc_now(), uuid.uuid4().hex
            until = now + lease
            result = await self.deliveries.update_many(
                {
                    "_id": {"$in": ids},
                    "status": "pending",
                    "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}],
                },
                {
                    "$set": {"lease_until": until, "owner": owner, "claim": token, "last_attempt_at": now},
                    "$inc": {"attempts": 1},
                },
            )
            if result.matched_count or result.modified_count:
                async for doc in self.deliveries.find({"_id": {"$in": ids}, "claim": token}):
                    found[doc["_id"]] = (doc, token, until)
        answers: list[Claimed | None] = []
        for claim in claims:
            # One answer per delivery, however often it was asked for: a second holder would send it twice.
            hit = found.pop(claim.delivery_id, None)
            answers.append(None if hit is None else _claimed(*hit))
        return answers

    async def start_attempt(self, claimed: Claimed, until: datetime, *, count: bool) -> bool:
        """Renew the lease for an attempt about to start (and count it, unless the claim did); False when
        the claim no longer holds the delivery (its lease lapsed and another instance took it)."""
        change: Document = {"$set": {"lease_until": until, "last_attempt_at": utc_now()}}
        if count:
            change["$inc"] = {"attempts": 1}
        result = await self.deliveries.update_one(
            {"_id": claimed.outgoing.delivery_id, "claim": claimed.claim, "status": "pending"}, change
        )
        return result.matched_count == 1

    async def note_failure(self, delivery_id: str, error: str) -> None:
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": {"last_error": error}})

    async def settle(
        self, claimed: Claimed, status: Literal["sent", "failed"], error: str | None, attempts: int
    ) -> Settled | None:
        """Record the end of a delivery; None when its claim had been lost (the new holder settles it)."""
        return await self._settlements(_Settlement(claimed, status, error, attempts))

    async def _settle_group(self, settlements: list[_Settlement]) -> list[Settled | None]:
        now = utc_now()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as stored: BSON keeps milliseconds
        writes = [
            UpdateOne(
                {"_id": s.claimed.outgoing.delivery_id, "claim": s.claimed.claim, "status": "pending"},
                {
                    "$set": {
                        "status": s.status,
                        "settled_at": now,
                        "last_error": s.error,
                        "lease_until": None,
                        "attempts": s.attempts,
                    }
                },
            )
            for s in settlements
        ]
        matched = await bulk_update(self.deliveries, writes)
        mine = {s.claimed.outgoing.delivery_id for s in settlements}
        if matched != len(writes):
            # Rare: a lease lapsed mid-delivery. Ours are those settled under our claim token.
            cursor = self.deliveries.find({"_id": {"$in": list(mine)}}, {"claim": 1, "status": 1})
            tokens = {doc["_id"]: (doc.get("claim"), doc["status"]) async for doc in cursor}
            mine = {
                s.claimed.outgoing.delivery_id
                for s in settlements
                if tokens.get(s.claimed.outgoing.delivery_id) == (s.claimed.claim, s.status)
            }
        return [_settled_from(s, now) if s.claimed.outgoing.delivery_id in mine else None for s in settlements]

    async def release(self, delivery_ids: Iterable[str], owner: str, unattempted: Iterable[Claimed] = ()) -> None:
        """Hand leases back (a clean shutdown), uncounting the attempts claims counted but never started."""
        uncount = [
            UpdateOne(
                {"_id": c.outgoing.delivery_id, "claim": c.claim, "status": "pending"}, {"$inc": {"attempts": -1}}
            )
            for c in unattempted
        ]
        if uncount:
            await bulk_update(self.deliveries, uncount)
        await self.deliveries.update_many(
            {"_id": {"$in": list(delivery_ids)}, "owner": owner, "status": "pending"},
            {"$set": {"lease_until": None}},
        )

    async def flush(self) -> None:
        """Finish the grouped writes already asked for."""
        for group in (self._claims, self._settlements, self._reports):
            await group.drain()

    async def due(self, now: datetime, limit: int) -> list[tuple[str, DeliveryChannel]]:
        cursor = (
            self.deliveries.find(
                {"status": "pending", "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}]},
                {"channel": 1},
            )
            .sort("created_at", ASCENDING)
            .limit(limit)
        )
        return [(doc["_id"], DeliveryChannel(doc["channel"])) async for doc in cursor]

    async def unreported(self, settled_before: datetime, limit: int) -> list[Settled]:
        cursor = self.deliveries.find(
            {"status": {"$in": ["sent", "failed"]}, "reported": False, "settled_at": {"$lte": settled_before}}
        ).limit(limit)
        return [_settled(doc) async for doc in cursor]

    async def settled(self, delivery_ids: Iterable[str]) -> list[Settled]:
        """Those of these deliveries that are settled and not reported yet (a redelivery reports nothing)."""
        query = {"_id": {"$in": list(delivery_ids)}, "status": {"$in": ["sent", "failed"]}, "reported": False}
        cursor = self.deliveries.find(query)
        return [_settled(doc) async for doc in cursor]

    async def mark_reported(self, delivery_id: str) -> None:
        await self._reports(delivery_id)

    async def _mark_reported_group(self, delivery_ids: list[str]) -> list[None]:
        await self.deliveries.update_many({"_id": {"$in": delivery_ids}}, {"$set": {"reported": True}})
        return [None] * len(delivery_ids)

    # --- operators' view ------------------------------------------------------------------------------------

    async def list_deliveries(self, status: str | None, limit: int) -> list[Document]:
        query: Document = {} if status is None else {"status": status}
        # Never the address in clear, the text or the payload: operators see the masked recipient.
        projection = {
            "address": 0, "text": 0, "payload": 0, "subject": 0, "digest_items": 0, "owner": 0, "claim": 0,
        }  # fmt: skip
        cursor = self.deliveries.find(query, projection).sort("created_at", -1).limit(limit)
        return [doc async for doc in cursor]


def _by_holder(claims: list[_Claim]) -> dict[tuple[str, timedelta], list[str]]:
    groups: dict[tuple[str, timedelta], list[str]] = {}
    for claim in claims:
        ids = groups.setdefault((claim.owner, claim.lease), [])
        if claim.delivery_id not in ids:
            ids.append(claim.delivery_id)
    return groups


def _intent_document(entry: NewDelivery, now: datetime) -> Document:
    failed = entry.undeliverable is not None
    return {
        "_id": entry.delivery_id,
        "source_event_id": entry.source_event_id,
        "kind": entry.kind,
        "audience": entry.audience.value,
        "recipient_id": entry.recipient_id,
        "channel": entry.channel.value,
        "address": entry.address,
        "recipient": entry.recipient_display,
        "language": entry.language,
        "subject": entry.subject,
        "text": entry.text,
        "payload": entry.payload,
        "digest_items": list(entry.digest_items),
        "status": "failed" if failed else "pending",
        "attempts": 0,
        "last_error": entry.undeliverable,
        "lease_until": None,
        "owner": None,
        "claim": None,
        "reported": False,
        "created_at": now,
        "settled_at": now if failed else None,
    }


def _claimed(doc: Document, token: str, until: datetime) -> Claimed:
    return Claimed(
        outgoing=Outgoing(
            delivery_id=doc["_id"],
            kind=doc["kind"],
            channel=DeliveryChannel(doc["channel"]),
            address=doc["address"],
            language=doc["language"],
            subject=doc["subject"],
            text=doc["text"],
            payload=doc.get("payload"),
        ),
        source_event_id=doc["source_event_id"],
        audience=Audience(doc["audience"]),
        recipient_id=doc.get("recipient_id"),
        recipient_display=doc["recipient"],
        attempts=int(doc.get("attempts", 1)) - 1,  # the claim counted the attempt about to start
        claim=token,
        lease_until=until,
    )


def _settled_from(settlement: _Settlement, now: datetime) -> Settled:
    """What the ledger now says, built from the claim and the outcome rather than read back."""
    claimed = settlement.claimed
    return Settled(
        delivery_id=claimed.outgoing.delivery_id,
        source_event_id=claimed.source_event_id,
        kind=claimed.outgoing.kind,
        audience=claimed.audience,
        recipient_id=claimed.recipient_id,
        recipient_display=claimed.recipient_display,
        channel=claimed.outgoing.channel,
        status=settlement.status,
        attempts=settlement.attempts,
        error=settlement.error,
        settled_at=now,
    )


def _settled(doc: Document) -> Settled:
    return Settled(
        delivery_id=doc["_id"],
        source_event_id=doc["source_event_id"],
        kind=doc["kind"],
        audience=Audience(doc["audience"]),
        recipient_id=doc.get("recipient_id"),
        recipient_display=doc["recipient"],
        channel=DeliveryChannel(doc["channel"]),
        status=doc["status"],
        attempts=int(doc.get("attempts", 0)),
        error=doc.get("last_error"),
        settled_at=doc.get("settled_at") or utc_now(),
    )
