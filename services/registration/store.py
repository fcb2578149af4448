"""Registration's MongoDB: partners, participants (NIK sealed), an append-only history, and the request log.

The request log is both the idempotency record (one document per partner and request id) and the outbox:
it holds the decided outcome event and the participant state it leads to. It is written first; the
participant and history writes that follow are idempotent replays of it (a participant write applies only
when it moves the stored version forward; a history entry's id is its request). After a crash anywhere
between the log write and the offset commit, redelivery finds the log entry, replays the writes and
re-publishes the very same outcome event (same id). No multi-document transaction is needed, which
FerretDB and a standalone MongoDB do not have.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, AsyncMongoClient, InsertOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.registration.domain.decisions import Decision, Partner, ParticipantRecord
from shared.crypto import Sealer

DUPLICATE_KEY = 11000

Document = dict[str, Any]


def _ignore_duplicates(error: BulkWriteError) -> None:
    """A duplicate key in an idempotent replay means "already written": anything else is a real failure."""
    others = [e for e in error.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
    if others or error.details.get("writeConcernErrors"):
        raise error


class MongoRegistrationStore:
    def __init__(self, client: AsyncMongoClient[Document], database: str, sealer: Sealer) -> None:
        self._db: AsyncDatabase[Document] = client[database]
        self._sealer = sealer
        self.partners = self._db["partners"]
        self.participants = self._db["participants"]
        self.history = self._db["history"]
        self.requests = self._db["requests"]

    async def create_indexes(self) -> None:
        await self.participants.create_index([("nik_hash", ASCENDING)])
        await self.history.create_index([("participant_id", ASCENDING), ("version", ASCENDING)])
        await self.requests.create_index([("published", ASCENDING)])

    # --- partners ----------------------------------------------------------------------------------------

    async def load_partners(self) -> dict[str, Partner]:
        return {doc["_id"]: Partner.from_document(doc) async for doc in self.partners.find({})}

    async def upsert_partner(self, partner: Partner) -> None:
        await self.partners.replace_one({"_id": partner.partner_id}, partner.to_document(), upsert=True)

    async def delete_partner(self, partner_id: str) -> bool:
        result = await self.partners.delete_one({"_id": partner_id})
        return result.deleted_count == 1

    # --- reads for a batch -------------------------------------------------------------------------------

    async def recorded(self, keys: Iterable[str]) -> dict[str, Decision]:
        """Decisions already taken for these request keys (the idempotency record)."""
        return {
            doc["_id"]: Decision.from_document(doc)
            async for doc in self.requests.find({"_id": {"$in": list(set(keys))}})
        }

    async def participations(self, participant_ids: Iterable[str]) -> dict[str, ParticipantRecord]:
        return {
            doc["_id"]: ParticipantRecord.from_document(doc)
            async for doc in self.participants.find({"_id": {"$in": list(set(participant_ids))}})
        }

    # --- writes for a batch ------------------------------------------------------------------------------

    async def record(self, decisions: Sequence[Decision]) -> None:
        """Write the request log (outbox) for new decisions. A duplicate means another instance already did."""
        if not decisions:
            return
        now = datetime.now(UTC)
        try:
            await self.requests.bulk_write(
                [InsertOne({**d.to_document(), "published": False, "recorded_at": now}) for d in decisions],
                ordered=False,
            )
        except BulkWriteError as error:
            _ignore_duplicates(error)

    async def apply(self, decisions: Sequence[Decision]) -> None:
        """Replay decisions onto participants and history; safe to repeat."""
        # One write per participant: its last state in the batch, with the NIK from any state that has it
        # (an enrollment followed by an update in one batch must not lose the sealed NIK).
        latest: dict[str, ParticipantRecord] = {}
        niks: dict[str, str] = {}
        history: list[InsertOne[Document]] = []
        for decision in decisions:
            if decision.participant is None:
                continue
            after = decision.participant
            latest[after.participant_id] = after
            if after.nik is not None:
                niks[after.participant_id] = after.nik
            if decision.history is not None:
                history.append(InsertOne(decision.history))
        participant_writes: list[UpdateOne] = []
        for participant_id, after in latest.items():
            document = after.to_document()
            if participant_id in niks:
                # The NIK is kept only sealed; the participant id binds the ciphertext to its document.
                document["nik_sealed"] = self._sealer.seal(
                    niks[participant_id].encode(), participant_id.encode()
                )
            # Moves the stored version forward only. A stored equal or newer version makes the upsert collide
            # on _id, which means "already applied" in a replay.
            participant_writes.append(
                UpdateOne(
                    {"_id": participant_id, "version": {"$lt": after.version}},
                    {"$set": document},
                    upsert=True,
                )
            )
        for collection, writes in ((self.participants, participant_writes), (self.history, history)):
            if writes:
                try:
                    await collection.bulk_write(writes, ordered=False)  # type: ignore[arg-type]
                except BulkWriteError as error:
                    _ignore_duplicates(error)

    async def mark_published(self, keys: Sequence[str]) -> None:
        if keys:
            await self.requests.update_many({"_id": {"$in": list(keys)}}, {"$set": {"published": True}})

    async def unpublished(self, limit: int = 10_000) -> list[Decision]:
        """Outcomes recorded but not known to be published: a crash happened in between."""
        return [
            Decision.from_document(doc) async for doc in self.requests.find({"published": False}).limit(limit)
        ]

    async def open_nik(self, participant_id: str) -> str | None:
        """The NIK in clear, for an operator's authorised export only; never logged."""
        doc = await self.participants.find_one({"_id": participant_id}, {"nik_sealed": 1})
        if doc is None or "nik_sealed" not in doc:
            return None
        return self._sealer.open(doc["nik_sealed"], participant_id.encode()).decode()
