"""The delivery ledger's documents (`deliveries`): intents recorded, claimed under a lease, settled, reported.

One document per (source event, recipient, channel); `_id` = the delivery id, so recording the same intent
again (a redelivered event, a second instance) finds it already there. The notifier writes intents; the
dispatcher (`dispatch.Ledger`) claims, attempts, settles and reports them; operators list them.

Half of the store: `store.MongoNotificationStore` adds who hears what, digests and coverage to this class.
Only these two modules know the documents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import BulkWriteError

from services.notification.channels import Outgoing
from services.notification.dispatch import Claimed
from services.notification.domain.deliveries import Settled
from services.notification.domain.messages import Audience
from services.notification.service import NewDelivery
from shared.events import DeliveryChannel, utc_now

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from pymongo.asynchronous.collection import AsyncCollection
    from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]
_DUPLICATE_KEY = 11000


async def insert_new(collection: AsyncCollection[Document], documents: list[Document]) -> None:
    """Insert the documents whose `_id` is not there yet; the others are left as they are."""
    try:
        await collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        # Duplicates are the point (a redelivered event); anything else is a real failure.
        if any(error.get("code") != _DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise


class MongoLedger:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.deliveries = db["deliveries"]

    async def create_indexes(self) -> None:
        await self.deliveries.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
        await self.deliveries.create_index([("status", ASCENDING), ("reported", ASCENDING)])
        await self.deliveries.create_index([("source_event_id", ASCENDING)])
        await self.deliveries.create_index([("created_at", ASCENDING)])

    # --- intents --------------------------------------------------------------------------------------------

    async def record_intents(self, entries: Sequence[NewDelivery]) -> list[tuple[str, DeliveryChannel]]:
        """Insert what is not recorded yet; return the deliveries still pending (new or left from before).

        Called before the consumer commits its offset: once this returns, nothing of the batch can be lost.
        """
        if not entries:
            return []
        now = utc_now()
        await insert_new(self.deliveries, [_intent_document(entry, now) for entry in entries])
        ids = [entry.delivery_id for entry in entries]
        cursor = self.deliveries.find({"_id": {"$in": ids}, "status": "pending"}, {"channel": 1})
        return [(doc["_id"], DeliveryChannel(doc["channel"])) async for doc in cursor]

    async def digest_items_of(self, delivery_id: str) -> list[str] | None:
        doc = await self.deliveries.find_one({"_id": delivery_id}, {"digest_items": 1})
        return None if doc is None else list(doc.get("digest_items", []))

    # --- the dispatcher's side (dispatch.Ledger) ------------------------------------------------------------

    async def claim(self, delivery_id: str, owner: str, now: datetime, until: datetime) -> Claimed | None:
        doc = await self.deliveries.find_one_and_update(
            {
                "_id": delivery_id,
                "status": "pending",
                "$or": [{"lease_until": None}, {"lease_until": {"$lte": now}}],
            },
            {"$set": {"lease_until": until, "owner": owner}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
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
            attempts=int(doc.get("attempts", 0)),
        )

    async def start_attempt(self, delivery_id: str, until: datetime) -> int:
        doc = await self.deliveries.find_one_and_update(
            {"_id": delivery_id},
            {"$inc": {"attempts": 1}, "$set": {"lease_until": until, "last_attempt_at": utc_now()}},
            return_document=ReturnDocument.AFTER,
        )
        return int(doc["attempts"]) if doc else 0

    async def note_failure(self, delivery_id: str, error: str) -> None:
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": {"last_error": error}})

    async def settle(self, delivery_id: str, status: Literal["sent", "failed"], error: str | None) -> Settled:
        now = utc_now()
        doc = await self.deliveries.find_one_and_update(
            {"_id": delivery_id},
            {"$set": {"status": status, "settled_at": now, "last_error": error, "lease_until": None}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise LookupError(f"delivery {delivery_id} vanished from the ledger")
        return _settled(doc)

    async def release(self, delivery_ids: Iterable[str], owner: str) -> None:
        await self.deliveries.update_many(
            {"_id": {"$in": list(delivery_ids)}, "owner": owner, "status": "pending"},
            {"$set": {"lease_until": None}},
        )

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
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": {"reported": True}})

    # --- operators' view ------------------------------------------------------------------------------------

    async def list_deliveries(self, status: str | None, limit: int) -> list[Document]:
        query: Document = {} if status is None else {"status": status}
        # Never the address in clear, the text or the payload: operators see the masked recipient.
        projection = {"address": 0, "text": 0, "payload": 0, "subject": 0, "digest_items": 0, "owner": 0}
        cursor = self.deliveries.find(query, projection).sort("created_at", -1).limit(limit)
        return [doc async for doc in cursor]


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
        "reported": False,
        "created_at": now,
        "settled_at": now if failed else None,
    }


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
