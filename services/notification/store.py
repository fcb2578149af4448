"""Notification's MongoDB database: the delivery ledger, subscriptions, partners' webhooks, digests, coverage.

Every write is a single-document operation or an insert-if-absent on a unique `_id`, so it is atomic on
FerretDB (no transactions) as on MongoDB, and a repeated write (a redelivered event, a second instance)
finds the document already there instead of doing the work twice.

Collections:
- `deliveries`: the ledger, one document per (source event, recipient, channel); `_id` = the delivery id.
  Its documents are in `ledger.py`, the other half of this store (the ledger alone is the bigger part).
- `subscriptions`, `partners`: who hears what; webhook signing secrets sealed (AES-GCM, `shared.crypto`).
- `digest_items`: events held back for a subscriber's daily digest, until the digest that carries them.
- `milestones`: one document per (region, threshold), so each threshold is announced once.
- `region_progress`: the last coverage seen per region and when it last went up (stagnation).
- `budget_positions`: per budget, the newest position seen and the thresholds announced under its allocation
  version, in one document (`_id` = the budget key), advanced only by a newer `sequence`.
- `budget_holds`: per held request (`partner|request`), when it was last held and last decided: the digest
  names those held after their last verdict.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from services.notification.channels import PermanentDeliveryError
from services.notification.domain.budget import BudgetState, HeldRequest
from services.notification.domain.coverage import CoverageSnapshot, RegionProgress, made_progress
from services.notification.domain.digest import DigestItem
from services.notification.domain.messages import Audience, Kind, PartnerWebhook, Stakeholder, Subscription
from services.notification.ledger import Document, MongoLedger
from services.notification.service import Threshold
from shared.events import BudgetPosition, DeliveryChannel, utc_now
from shared.mongo import insert_new

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date, datetime

    from shared.crypto import Sealer
    from shared.events import HoldDecidedEvent, RequestHeld


def _sealed_for(kind: str, key: str) -> bytes:
    # Bind a sealed secret to its owner: a secret copied onto another document does not open.
    return f"{kind}:{key}".encode()


class MongoNotificationStore(MongoLedger):
    """The ledger (`MongoLedger`) and the rest of the database: one store for the notifier and the dispatcher."""

    def __init__(
        self, client: AsyncMongoClient[Document], database: str, sealer: Sealer, *, secret_ttl: float = 0.0
    ) -> None:
        db = client[database]
        super().__init__(db)
        self._sealer = sealer
        self._secret_ttl = secret_ttl
        self._secrets: dict[tuple[str, str], tuple[float, str | None]] = {}  # (kind, id) -> (kept until, secret)
        self._secret_changes = 0  # a lookup that raced with a change keeps nothing
        self._opening: dict[tuple[str, str], asyncio.Future[str | None]] = {}  # reads in flight, shared
        self.subscriptions = db["subscriptions"]
        self.partners = db["partners"]
        self.digest_items = db["digest_items"]
        self.milestones = db["milestones"]
        self.region_progress = db["region_progress"]
        self.budget_positions = db["budget_positions"]
        self.budget_holds = db["budget_holds"]

    async def create_indexes(self) -> None:
        await super().create_indexes()
        await self.subscriptions.create_index([("scope", ASCENDING)])
        await self.subscriptions.create_index([("digest", ASCENDING)])
        await self.digest_items.create_index([("subscription_id", ASCENDING), ("digest_day", ASCENDING)])
        await self.milestones.create_index([("region_code", ASCENDING)])
        await self.region_progress.create_index([("last_progress_at", ASCENDING)])
        await self.subscriptions.create_index([("kinds", ASCENDING)])
        await self.budget_positions.create_index([("holds_waiting", ASCENDING)])
        await self.budget_holds.create_index([("budget_key", ASCENDING)])

    # --- signing secrets (dispatch.Ledger) ------------------------------------------------------------------

    async def signing_secret(self, audience: Audience, recipient_id: str | None) -> str | None:
        """The recipient's webhook secret, opened; kept `secret_ttl` seconds, since every webhook to a partner
        would otherwise read and open the same one. A change through this store (this instance's admin API)
        applies at once; one made through another instance within `secret_ttl` (docs/notification.md)."""
        if recipient_id is None:
            return None
        key = ("partner" if audience is Audience.PARTNER else "subscription", recipient_id)
        kept = self._secrets.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        # The deliveries claimed in one batch ask for the same few secrets at once: one read per secret,
        # the others wait for it (before this, 205 webhooks to 5 partners made 76 reads, 431 ms each).
        opening = self._opening.get(key)
        if opening is None:
            opening = self._opening[key] = asyncio.ensure_future(self._open_and_keep(key))
            opening.add_done_callback(lambda done: self._opened(key, done))
        return await asyncio.shield(opening)

    def _opened(self, key: tuple[str, str], done: asyncio.Future[str | None]) -> None:
        if self._opening.get(key) is done:  # not a read a change has since replaced
            del self._opening[key]
        if not done.cancelled():
            done.exception()  # every waiter got it; a waiter cancelled meanwhile leaves no "never retrieved"

    async def _open_and_keep(self, key: tuple[str, str]) -> str | None:
        changes = self._secret_changes
        secret = await self._open_secret(*key)
        if self._secret_ttl > 0 and changes == self._secret_changes:
            self._secrets[key] = (time.monotonic() + self._secret_ttl, secret)
        return secret

    async def _open_secret(self, kind: str, recipient_id: str) -> str | None:
        owners = self.partners if kind == "partner" else self.subscriptions
        doc = await owners.find_one({"_id": recipient_id}, {"secret_sealed": 1})
        if doc is None or not doc.get("secret_sealed"):
            return None
        try:
            return self._sealer.open(doc["secret_sealed"], _sealed_for(kind, recipient_id)).decode()
        except (InvalidTag, ValueError):
            raise PermanentDeliveryError(
                f"the {kind}'s signing secret cannot be opened (was LINDUNGI_SEAL_KEY changed?)"
            ) from None

    def _forget_secret(self, kind: str, recipient_id: str) -> None:
        self._secret_changes += 1
        self._secrets.pop((kind, recipient_id), None)
        self._opening.pop((kind, recipient_id), None)  # a read begun before the change is not shared after it

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
        self._forget_secret("subscription", subscription.subscription_id)

    async def delete_subscription(self, subscription_id: str) -> bool:
        result = await self.subscriptions.delete_one({"_id": subscription_id})
        self._forget_secret("subscription", subscription_id)
        return result.deleted_count > 0

    async def subscriptions_in(self, scopes: Iterable[str]) -> list[Subscription]:
        cursor = self.subscriptions.find({"scope": {"$in": sorted(set(scopes))}})
        return [_subscription(doc) async for doc in cursor]

    async def all_subscriptions(self, scope: str | None = None) -> list[Subscription]:
        cursor = self.subscriptions.find({} if scope is None else {"scope": scope}).sort("_id", ASCENDING)
        return [_subscription(doc) async for doc in cursor]

    async def subscriptions_hearing(self, kind: Kind) -> list[Subscription]:
        cursor = self.subscriptions.find({"kinds": kind.value})  # an array field matches any element
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
        self._forget_secret("partner", webhook.partner_id)

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
        await insert_new(self.digest_items, documents)

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

    # --- budgets --------------------------------------------------------------------------------------------

    async def budget_states(self, keys: Iterable[str]) -> dict[str, BudgetState]:
        cursor = self.budget_positions.find({"_id": {"$in": sorted(set(keys))}})
        return {
            doc["_id"]: BudgetState(
                BudgetPosition.model_validate(doc["position"]), frozenset(int(t) for t in doc["announced"])
            )
            async for doc in cursor
        }

    async def save_budget_state(self, state: BudgetState) -> None:
        """Compare-and-set on `sequence`: an older position never overwrites a newer one (another instance's)."""
        position = state.position
        try:
            await self.budget_positions.update_one(
                {"_id": position.key, "sequence": {"$lt": position.sequence}},
                {
                    "$set": {
                        "sequence": position.sequence,
                        "position": position.model_dump(mode="json"),
                        "announced": sorted(state.announced),
                        "holds_waiting": position.holds_waiting,
                        "updated_at": utc_now(),
                    }
                },
                upsert=True,
            )
        except DuplicateKeyError:
            return  # a newer position is already there: the filter missed it and the upsert collided

    async def budgets_with_holds(self) -> list[BudgetPosition]:
        cursor = self.budget_positions.find({"holds_waiting": {"$gt": 0}})
        return [BudgetPosition.model_validate(doc["position"]) async for doc in cursor]

    async def book_holds(self, held: Sequence[RequestHeld], decided: Sequence[HoldDecidedEvent]) -> None:
        """`$max` on the times: a hold and its verdict may arrive in any order (different keys, partitions)."""
        for event in held:
            data = event.data
            await self.budget_holds.update_one(
                {"_id": f"{data.partner_id}|{data.request_id}"},
                {
                    "$set": {"budget_key": data.budget.key, "required": data.required},
                    "$setOnInsert": {"partner_id": data.partner_id, "request_id": data.request_id},
                    "$max": {"held_at": event.time},
                },
                upsert=True,
            )
        for verdict in decided:
            decision = verdict.data
            await self.budget_holds.update_one(
                {"_id": f"{decision.held_partner_id}|{decision.held_request_id}"},
                {
                    "$setOnInsert": {
                        "partner_id": decision.held_partner_id,
                        "request_id": decision.held_request_id,
                        "budget_key": decision.budget.key,
                    },
                    "$max": {"decided_at": verdict.time},
                },
                upsert=True,
            )

    async def holds_waiting(self, budget_keys: Iterable[str]) -> list[HeldRequest]:
        cursor = self.budget_holds.find({"budget_key": {"$in": sorted(set(budget_keys))}})
        return [
            HeldRequest(doc["budget_key"], doc["partner_id"], doc["request_id"], int(doc["required"]), doc["held_at"])
            async for doc in cursor
            if doc.get("held_at") is not None and (doc.get("decided_at") is None or doc["decided_at"] < doc["held_at"])
        ]


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
