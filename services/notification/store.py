"""Notification's MongoDB database: the delivery ledger, subscriptions, partners' webhooks, digests, coverage.

Every write is a single-document operation or an insert-if-absent on a unique `_id`, so it is atomic on
FerretDB (no transactions) as on MongoDB, and a repeated write (a redelivered event, a second instance)
finds the document already there instead of doing the work twice.

Collections:
- `deliveries`: the ledger, one document per (source event, recipient, channel); `_id` = the delivery id.
- `subscriptions`, `partners`: who hears what; webhook signing secrets sealed (AES-GCM, `shared.crypto`).
- `digest_items`: events held back for a subscriber's daily digest, until the digest that carries them.
- `milestones`: one document per (region, threshold), so each threshold is announced once.
- `region_progress`: the last coverage seen per region and when it last went up (stagnation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidTag
from pymongo import ASCENDING, AsyncMongoClient, ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.notification.channels import Outgoing, PermanentDeliveryError
from services.notification.dispatch import Claimed, Settled
from services.notification.domain import (
    Audience,
    CoverageSnapshot,
    DigestItem,
    Kind,
    PartnerWebhook,
    RegionProgress,
    Stakeholder,
    Subscription,
    made_progress,
)
from shared.events import DeliveryChannel, utc_now

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date, datetime

    from pymongo.asynchronous.database import AsyncDatabase

    from shared.crypto import Sealer

Document = dict[str, Any]
_DUPLICATE_KEY = 11000


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
    threshold: int
    event_id: str
    announced: bool


def _sealed_for(kind: str, key: str) -> bytes:
    # Bind a sealed secret to its owner: a secret copied onto another document does not open.
    return f"{kind}:{key}".encode()


class MongoNotificationStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str, sealer: Sealer) -> None:
        self._db: AsyncDatabase[Document] = client[database]
        self._sealer = sealer
        self.deliveries = self._db["deliveries"]
        self.subscriptions = self._db["subscriptions"]
        self.partners = self._db["partners"]
        self.digest_items = self._db["digest_items"]
        self.milestones = self._db["milestones"]
        self.region_progress = self._db["region_progress"]

    async def create_indexes(self) -> None:
        await self.deliveries.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
        await self.deliveries.create_index([("status", ASCENDING), ("reported", ASCENDING)])
        await self.deliveries.create_index([("source_event_id", ASCENDING)])
        await self.deliveries.create_index([("created_at", ASCENDING)])
        await self.subscriptions.create_index([("scope", ASCENDING)])
        await self.subscriptions.create_index([("digest", ASCENDING)])
        await self.digest_items.create_index([("subscription_id", ASCENDING), ("digest_day", ASCENDING)])
        await self.milestones.create_index([("region_code", ASCENDING)])
        await self.region_progress.create_index([("last_progress_at", ASCENDING)])

    # --- the ledger: intents --------------------------------------------------------------------------------

    async def record_intents(self, entries: Sequence[NewDelivery]) -> list[tuple[str, DeliveryChannel]]:
        """Insert what is not recorded yet; return the deliveries still pending (new or left from before).

        Called before the consumer commits its offset: once this returns, nothing of the batch can be lost.
        """
        if not entries:
            return []
        now = utc_now()
        documents = [_intent_document(entry, now) for entry in entries]
        try:
            await self.deliveries.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            # Duplicates are the point (a redelivered event); anything else is a real failure.
            if any(error.get("code") != _DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise
        ids = [entry.delivery_id for entry in entries]
        cursor = self.deliveries.find({"_id": {"$in": ids}, "status": "pending"}, {"channel": 1})
        return [(doc["_id"], DeliveryChannel(doc["channel"])) async for doc in cursor]

    async def digest_items_of(self, delivery_id: str) -> list[str] | None:
        doc = await self.deliveries.find_one({"_id": delivery_id}, {"digest_items": 1})
        return None if doc is None else list(doc.get("digest_items", []))

    # --- the ledger: the dispatcher's side (dispatch.Ledger) ------------------------------------------------

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

    async def signing_secret(self, audience: Audience, recipient_id: str | None) -> str | None:
        if recipient_id is None:
            return None
        if audience is Audience.PARTNER:
            doc = await self.partners.find_one({"_id": recipient_id}, {"secret_sealed": 1})
            kind = "partner"
        else:
            doc = await self.subscriptions.find_one({"_id": recipient_id}, {"secret_sealed": 1})
            kind = "subscription"
        if doc is None or not doc.get("secret_sealed"):
            return None
        try:
            return self._sealer.open(doc["secret_sealed"], _sealed_for(kind, recipient_id)).decode()
        except (InvalidTag, ValueError):
            raise PermanentDeliveryError(
                f"the {kind}'s signing secret cannot be opened (was LINDUNGI_SEAL_KEY changed?)"
            ) from None

    # --- operators' view ------------------------------------------------------------------------------------

    async def list_deliveries(self, status: str | None, limit: int) -> list[Document]:
        query: Document = {} if status is None else {"status": status}
        # Never the address in clear, the text or the payload: operators see the masked recipient.
        projection = {"address": 0, "text": 0, "payload": 0, "subject": 0, "digest_items": 0, "owner": 0}
        cursor = self.deliveries.find(query, projection).sort("created_at", -1).limit(limit)
        return [doc async for doc in cursor]

    # --- subscriptions and partners -------------------------------------------------------------------------

    async def save_subscription(self, subscription: Subscription, secret: str | None) -> None:
        doc: Document = {
            "name": subscription.name,
            "stakeholder": subscription.stakeholder.value,
            "scope": subscription.scope,
            "kinds": sorted(k.value for k in subscription.kinds),
            "channel": subscription.channel.value,
            "address": subscription.address,
            "language": subscription.language,
            "digest": subscription.digest,
            "secret_sealed": None
            if secret is None
            else self._sealer.seal(secret.encode(), _sealed_for("subscription", subscription.subscription_id)),
            "updated_at": utc_now(),
        }
        await self.subscriptions.update_one(
            {"_id": subscription.subscription_id},
            {"$set": doc, "$setOnInsert": {"created_at": utc_now()}},
            upsert=True,
        )

    async def delete_subscription(self, subscription_id: str) -> bool:
        result = await self.subscriptions.delete_one({"_id": subscription_id})
        return result.deleted_count > 0

    async def subscriptions_in(self, scopes: Iterable[str]) -> list[Subscription]:
        cursor = self.subscriptions.find({"scope": {"$in": sorted(set(scopes))}})
        return [_subscription(doc) async for doc in cursor]

    async def all_subscriptions(self, scope: str | None = None) -> list[Subscription]:
        cursor = self.subscriptions.find({} if scope is None else {"scope": scope}).sort("_id", ASCENDING)
        return [_subscription(doc) async for doc in cursor]

    async def digest_subscriptions(self) -> list[Subscription]:
        cursor = self.subscriptions.find({"digest": "daily"})
        return [_subscription(doc) async for doc in cursor]

    async def save_partner(self, webhook: PartnerWebhook, secret: str) -> None:
        sealed = self._sealer.seal(secret.encode(), _sealed_for("partner", webhook.partner_id))
        await self.partners.update_one(
            {"_id": webhook.partner_id},
            {"$set": {"webhook_url": webhook.url, "secret_sealed": sealed, "updated_at": utc_now()}},
            upsert=True,
        )

    async def partner_webhooks(self, partner_ids: Iterable[str] | None = None) -> dict[str, PartnerWebhook]:
        query: Document = {} if partner_ids is None else {"_id": {"$in": sorted(set(partner_ids))}}
        cursor = self.partners.find(query, {"webhook_url": 1}).sort("_id", ASCENDING)
        return {doc["_id"]: PartnerWebhook(doc["_id"], doc["webhook_url"]) async for doc in cursor}

    # --- digests --------------------------------------------------------------------------------------------

    async def hold_for_digest(self, items: Sequence[DigestItem]) -> None:
        if not items:
            return
        documents = [
            {
                "_id": item.item_id,
                "subscription_id": item.subscription_id,
                "kind": item.kind.value,
                "source_event_id": item.source_event_id,
                "summary": item.summary,
                "occurred_at": item.occurred_at,
                "digest_day": None,
                "created_at": utc_now(),
            }
            for item in items
        ]
        try:
            await self.digest_items.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") != _DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise

    async def digest_backlog(self, subscription_id: str, held_before: datetime) -> list[DigestItem]:
        cursor = self.digest_items.find(
            {"subscription_id": subscription_id, "digest_day": None, "created_at": {"$lte": held_before}}
        )
        return [
            DigestItem(
                item_id=doc["_id"],
                subscription_id=doc["subscription_id"],
                kind=Kind(doc["kind"]),
                source_event_id=doc["source_event_id"],
                summary=doc["summary"],
                occurred_at=doc["occurred_at"],
            )
            async for doc in cursor
        ]

    async def mark_digested(self, item_ids: Sequence[str], day: date) -> None:
        if item_ids:
            await self.digest_items.update_many(
                {"_id": {"$in": list(item_ids)}}, {"$set": {"digest_day": day.isoformat()}}
            )

    # --- milestones and progress ----------------------------------------------------------------------------

    async def thresholds_reached(self, region_code: str) -> list[Threshold]:
        cursor = self.milestones.find({"region_code": region_code})
        return [Threshold(int(doc["threshold"]), doc["event_id"], bool(doc["announced"])) async for doc in cursor]

    async def claim_thresholds(self, snapshot: CoverageSnapshot, thresholds: Sequence[int]) -> list[int]:
        """Record thresholds as reached by this snapshot; returns those no other snapshot had claimed."""
        claimed: list[int] = []
        for threshold in thresholds:
            try:
                await self.milestones.insert_one(
                    {
                        "_id": f"{snapshot.region_code}:{threshold}",
                        "region_code": snapshot.region_code,
                        "threshold": threshold,
                        "event_id": snapshot.event_id,
                        "reached_at": snapshot.as_of,
                        "announced": False,
                    }
                )
            except DuplicateKeyError:
                continue
            claimed.append(threshold)
        return claimed

    async def mark_announced(self, region_code: str, thresholds: Sequence[int]) -> None:
        await self.milestones.update_many(
            {"_id": {"$in": [f"{region_code}:{t}" for t in thresholds]}}, {"$set": {"announced": True}}
        )

    async def record_progress(self, snapshot: CoverageSnapshot, progress: float) -> None:
        """Keep the region's latest progress; move `last_progress_at` only when it went up.

        Compare-and-set on the snapshot time: an older snapshot (a replay) never overwrites a newer one.
        """
        current = await self.region_progress.find_one({"_id": snapshot.region_code})
        fields: Document = {
            "region_name": snapshot.region_name,
            "level": snapshot.level,
            "progress": progress,
            "as_of": snapshot.as_of,
        }
        if current is None:
            try:
                await self.region_progress.insert_one(
                    {"_id": snapshot.region_code, **fields, "last_progress_at": snapshot.as_of}
                )
            except DuplicateKeyError:
                return  # another instance saw the region first; the next snapshot updates it
            return
        if current["as_of"] >= snapshot.as_of:
            return
        if made_progress(current.get("progress"), progress):
            fields["last_progress_at"] = snapshot.as_of
        await self.region_progress.update_one(
            {"_id": snapshot.region_code, "as_of": current["as_of"]}, {"$set": fields}
        )

    async def stalled_regions(self, progress_before: datetime, levels: Sequence[str]) -> list[RegionProgress]:
        cursor = self.region_progress.find(
            {
                "last_progress_at": {"$lte": progress_before},
                "progress": {"$lt": 1.0},
                "level": {"$in": list(levels)},
            }
        )
        return [
            RegionProgress(
                region_code=doc["_id"],
                region_name=doc.get("region_name") or doc["_id"],
                level=doc.get("level"),
                progress=float(doc["progress"]),
                last_progress_at=doc["last_progress_at"],
            )
            async for doc in cursor
        ]


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


def _subscription(doc: Document) -> Subscription:
    return Subscription(
        subscription_id=doc["_id"],
        name=doc["name"],
        stakeholder=Stakeholder(doc["stakeholder"]),
        scope=doc["scope"],
        kinds=frozenset(Kind(k) for k in doc["kinds"]),
        channel=DeliveryChannel(doc["channel"]),
        address=doc["address"],
        language=doc.get("language", "id"),
        digest=doc.get("digest", "none"),
    )
